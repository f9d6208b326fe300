"""``cfgateway chat MODEL PROMPT``: one streamed chat call."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from cfgateway.client import Client
    from cfgateway.types import ChatRequest, Message

    client = Client(args.model)
    start = time.perf_counter()
    for chunk in client.stream(ChatRequest([Message("user", args.prompt)], max_tokens=args.max_tokens)):
        print(chunk.text, end="", flush=True)
        if chunk.final:
            u = chunk.usage
            cost = "unknown price" if chunk.cost is None else f"${chunk.cost:.6f}"
            tokens = f"{u.input_tokens} in / {u.output_tokens} out" if u else "no usage"
            took = time.perf_counter() - start
            print(f"\n[{chunk.model} · {tokens} · {cost} · {took:.2f}s]", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    ch = sub.add_parser("chat", help="one streamed chat call")
    ch.add_argument("model")
    ch.add_argument("prompt")
    ch.add_argument("--max-tokens", type=int, default=256)
    ch.set_defaults(func=_run)
