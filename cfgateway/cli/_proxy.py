"""``cfgateway proxy``: the OpenAI-compatible proxy (AutoGen, the openai SDK, any OpenAI client)."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from cfgateway.proxy import serve_proxy

    aliases: dict[str, list[str]] = {}
    for item in args.alias or []:
        name, sep, models = item.partition("=")
        if not sep or not models:
            raise SystemExit(f"--alias takes NAME=MODEL[,FALLBACK...], got {item!r}")
        aliases[name] = [m.strip() for m in models.split(",") if m.strip()]
    print(f"cfgateway proxy on http://{args.host}:{args.port}/v1 (OpenAI-compatible)")
    serve_proxy(args.host, args.port, aliases, args.api_key)
    return 0


def register(sub: Any) -> None:
    px = sub.add_parser("proxy", help="an OpenAI-compatible proxy (base_url http://HOST:PORT/v1)")
    px.add_argument("--host", default="127.0.0.1")
    px.add_argument("--port", type=int, default=8080)
    px.add_argument("--alias", action="append", help="NAME=MODEL[,FALLBACK...] (repeatable)")
    px.add_argument("--api-key", action="append", help="accept only these bearer keys (repeatable)")
    px.set_defaults(func=_run)
