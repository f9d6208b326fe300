"""``cfgateway emulate``: the offline Cloudflare emulator on loopback."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from cfgateway.emulator._extra import EmulatorExtraMissing

    try:
        from cfgateway.emulator.server import serve
    except EmulatorExtraMissing as exc:  # a plain install: name the extra instead of a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print(f"cfgateway emulator on http://{args.host}:{args.port}")
    print(f"  CLOUDFLARE_API_BASE_URL=http://{args.host}:{args.port}/client/v4")
    print(f"  CLOUDFLARE_AI_GATEWAY_BASE_URL=http://{args.host}:{args.port}/v1")
    serve(args.host, args.port)
    return 0


def register(sub: Any) -> None:
    e = sub.add_parser("emulate", help="run the offline Cloudflare emulator (loopback only)")
    e.add_argument("--host", default="127.0.0.1")
    e.add_argument("--port", type=int, default=8787)
    e.set_defaults(func=_run)
