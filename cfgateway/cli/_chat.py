"""``cfgateway chat [MODEL] PROMPT``: one streamed chat call (model, fallbacks and settings from the options,
the environment or a cfgateway.toml profile, like an app's)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cfgateway.cli._config import add_config_options


def _run(args: argparse.Namespace) -> int:
    from cfgateway.fallback import connect
    from cfgateway.types import ChatRequest, Message

    model, prompt = (args.words[0], args.words[1]) if len(args.words) == 2 else (None, args.words[0])
    client = connect(
        "chat", model, fallbacks=args.fallback, profile=args.profile, config_path=args.config,
        endpoint=args.endpoint, gateway_id=args.gateway_id, byok=args.byok,
    )
    defaults = client.settings.chat_defaults  # type: ignore[attr-defined]
    max_tokens = args.max_tokens or defaults.get("max_tokens") or 256
    start = time.perf_counter()
    request = ChatRequest([Message("user", prompt)], max_tokens=max_tokens, temperature=defaults.get("temperature"))
    for chunk in client.stream(request):
        print(chunk.text, end="", flush=True)
        if chunk.final:
            u = chunk.usage
            cost = "unknown price" if chunk.cost is None else f"${chunk.cost:.6f}"
            tokens = f"{u.input_tokens} in / {u.output_tokens} out" if u else "no usage"
            took = time.perf_counter() - start
            print(f"\n[{chunk.model} · {tokens} · {cost} · {took:.2f}s]", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    ch = sub.add_parser("chat", help="one streamed chat call", usage="cfgateway chat [MODEL] PROMPT [options]")
    ch.add_argument("words", nargs="+", metavar="[MODEL] PROMPT",
                    help="the model (default: CFGATEWAY_CHAT_MODEL / chat_model) and the prompt")
    ch.add_argument("--max-tokens", type=int, help="default: chat_defaults.max_tokens, else 256")
    ch.add_argument("--fallback", action="append", default=None, metavar="MODEL",
                    help="a fallback model (repeatable; default: CFGATEWAY_FALLBACKS / fallbacks)")
    ch.add_argument("--endpoint", choices=["auto", "native", "openai", "compat", "direct", "gateway"])
    ch.add_argument("--gateway-id", help="route through this AI Gateway (env CLOUDFLARE_AI_GATEWAY_ID)")
    byok = ch.add_mutually_exclusive_group()
    byok.add_argument("--byok", dest="byok", action="store_true", default=None,
                      help="provider keys stored in the gateway (the default; env CFGATEWAY_BYOK=1)")
    byok.add_argument("--no-byok", dest="byok", action="store_false",
                      help="send your own provider key from its env var (OPENAI_API_KEY, ...; CFGATEWAY_BYOK=0)")
    add_config_options(ch)
    ch.set_defaults(func=_run)
