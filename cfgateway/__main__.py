"""The ``cfgateway`` command line.

    cfgateway emulate [--host 127.0.0.1] [--port 8787]   run the offline Cloudflare emulator
    cfgateway models [--kind chat|embed] [--json]        list the price/model catalog
    cfgateway costs [--ledger URL] [--since DATE] [--format table|json|csv] [--plot costs.png]
    cfgateway chat MODEL "prompt"                         one chat call (settings from env / cfgateway.toml)
    cfgateway proxy [--port 8080] [--alias NAME=MODEL[,FALLBACK…]] [--api-key KEY]
                                                          an OpenAI-compatible proxy (AutoGen, openai SDK)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from cfgateway.errors import CloudflareError


def _cmd_emulate(args: argparse.Namespace) -> int:
    from cfgateway.emulator.server import serve

    print(f"cfgateway emulator on http://{args.host}:{args.port}")
    print(f"  CLOUDFLARE_API_BASE_URL=http://{args.host}:{args.port}/client/v4")
    print(f"  CLOUDFLARE_AI_GATEWAY_BASE_URL=http://{args.host}:{args.port}/v1")
    serve(args.host, args.port)
    return 0


def _price(v: object) -> str:
    return "-" if v is None else f"{v}"


def _cmd_models(args: argparse.Namespace) -> int:
    from cfgateway.catalog import load_catalog
    from cfgateway.config import load_settings

    catalog = load_catalog(load_settings().catalog)
    rows = [m for m in catalog.models.values() if args.kind in (None, m.kind)]
    if args.json:
        out = [
            {
                "model": m.model, "kind": m.kind, "provider": m.provider,
                "input_per_m": _price(m.input_price), "output_per_m": _price(m.output_price),
                "cached_input_per_m": _price(m.cached_input_price), "context_window": m.context_window,
                "dims": m.dims, "max_batch": m.max_batch, "as_of": m.as_of, "source": m.source,
            }
            for m in rows
        ]
        print(json.dumps(out, indent=1))
        return 0
    print(f"price catalog as of {catalog.as_of}; USD per million tokens; '-' = no published price")
    print(f"{'model':<50} {'kind':<5} {'in':>8} {'out':>8} {'ctx/dims':>9}")
    for m in sorted(rows, key=lambda r: (r.kind, r.model)):
        size = m.context_window if m.kind == "chat" else m.dims
        print(f"{m.model:<50} {m.kind:<5} {_price(m.input_price):>8} {_price(m.output_price):>8} {size or '-':>9}")
    return 0


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise SystemExit(f"--since takes a date like 2026-11-01, got {text!r}") from None


def _cmd_costs(args: argparse.Namespace) -> int:
    from cfgateway.config import load_settings
    from cfgateway.ledger import open_ledger
    from cfgateway.reports import build_report, plot_daily_costs, render

    url = args.ledger or load_settings().ledger
    if not url:
        print("no ledger: pass --ledger sqlite:///path.db (or redis://…) or set CFGATEWAY_LEDGER", file=sys.stderr)
        return 2
    ledger = open_ledger(url)
    try:
        records = ledger.records(since=_since(args.since))
    finally:
        ledger.close()
    print(render(build_report(records), fmt=args.format))
    if args.plot:
        plot_daily_costs(records, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
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


def _cmd_proxy(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cfgateway", description=__doc__.split("\n")[0] if __doc__ else None)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("emulate", help="run the offline Cloudflare emulator (loopback only)")
    e.add_argument("--host", default="127.0.0.1")
    e.add_argument("--port", type=int, default=8787)
    e.set_defaults(func=_cmd_emulate)
    m = sub.add_parser("models", help="list the price and model catalog")
    m.add_argument("--kind", choices=["chat", "embed"])
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_cmd_models)
    c = sub.add_parser("costs", help="report spend from a cost ledger")
    c.add_argument("--ledger", help="sqlite:///path.db or redis://host:port/db (default: CFGATEWAY_LEDGER)")
    c.add_argument("--since", help="only records from this UTC date on (YYYY-MM-DD)")
    c.add_argument("--format", choices=["table", "json", "csv"], default="table")
    c.add_argument("--plot", help="draw daily cost per provider to this PNG (needs cfgateway[plot])")
    c.set_defaults(func=_cmd_costs)
    ch = sub.add_parser("chat", help="one streamed chat call")
    ch.add_argument("model")
    ch.add_argument("prompt")
    ch.add_argument("--max-tokens", type=int, default=256)
    ch.set_defaults(func=_cmd_chat)
    px = sub.add_parser("proxy", help="an OpenAI-compatible proxy (base_url http://HOST:PORT/v1)")
    px.add_argument("--host", default="127.0.0.1")
    px.add_argument("--port", type=int, default=8080)
    px.add_argument("--alias", action="append", help="NAME=MODEL[,FALLBACK...] (repeatable)")
    px.add_argument("--api-key", action="append", help="accept only these bearer keys (repeatable)")
    px.set_defaults(func=_cmd_proxy)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CloudflareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
