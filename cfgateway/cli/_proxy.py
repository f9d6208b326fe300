"""``cfgateway proxy``: the OpenAI-compatible proxy (AutoGen, the openai SDK, LangChain, LlamaIndex, any client)."""

from __future__ import annotations

import argparse
import hashlib
from typing import Any

_LIMITS = ("max_body_bytes", "max_messages", "max_embedding_inputs", "max_n", "read_timeout_s", "max_cached_clients")


def _run(args: argparse.Namespace) -> int:
    from cfgateway.proxy.config import load_proxy_config
    from cfgateway.proxy.serve import check_bind, serve_proxy

    if args.hash_key:
        print(hashlib.sha256(args.hash_key.encode()).hexdigest())
        return 0
    config = load_proxy_config(
        config_path=args.config, aliases=args.alias or (), api_keys=args.api_key or (),
        default_provider=args.default_provider, allowed_hosts=args.allowed_host or (),
        cors_origins=args.cors_origin or (), limits={k: getattr(args, k) for k in _LIMITS}, endpoint=args.endpoint,
        shadows=args.shadow or (), dashboard_keys=args.dashboard_key or (),
    )
    check_bind(args.host, config)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    keys = f"{len(config.keys)} API key(s)" if config.keys else "no API key (loopback only)"
    print(f"cfgateway proxy on http://{shown}:{args.port}/v1 (OpenAI-compatible; {keys}, "
          f"{len(config.aliases)} alias(es), {args.workers} worker(s))", flush=True)
    serve_proxy(args.host, args.port, config, workers=args.workers, graceful_timeout=args.graceful_timeout,
                log_level=args.log_level, access_log=args.access_log)
    return 0


def register(sub: Any) -> None:
    px = sub.add_parser("proxy", help="an OpenAI-compatible proxy (base_url http://HOST:PORT/v1)")
    px.add_argument("--host", default="127.0.0.1", help="bind address (a non-loopback one needs --api-key)")
    px.add_argument("--port", type=int, default=8080)
    px.add_argument("--config", help="proxy config file (TOML: aliases, [[keys]], limits, hosts, origins)")
    px.add_argument("--alias", action="append", help="NAME=MODEL[,FALLBACK...] (repeatable)")
    px.add_argument("--shadow", action="append", help="NAME=CANDIDATE[@SAMPLE]: also send a sampled share (default "
                    "0.1) of NAME's calls to CANDIDATE in the background and book the comparisons in the ledger "
                    "(repeatable; [shadows.NAME] in --config for max_cost etc.)")
    px.add_argument("--api-key", action="append", help="accept this bearer key, KEY or USER:KEY (repeatable; "
                    "also CFGATEWAY_PROXY_API_KEYS)")
    px.add_argument("--dashboard-key", action="append", help="a key that opens /dashboard and calls no model, KEY "
                    "or USER:KEY (repeatable; also CFGATEWAY_PROXY_DASHBOARD_KEYS)")
    px.add_argument("--default-provider", help="provider for bare model names (e.g. openai: gpt-4o-mini -> "
                    "openai/gpt-4o-mini)")
    px.add_argument("--allowed-host", action="append", help="a Host name to accept besides the loopback names "
                    "(repeatable; '*' accepts any)")
    px.add_argument("--cors-origin", action="append", help="a browser origin allowed to call (repeatable)")
    px.add_argument("--endpoint", choices=["auto", "openai"], help="Workers AI endpoint: auto (native /ai/run) or "
                    "openai (/ai/v1)")
    px.add_argument("--workers", type=int, default=1, help="worker processes (uvicorn)")
    px.add_argument("--graceful-timeout", type=int, default=30, help="seconds in-flight streams get at shutdown")
    px.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    px.add_argument("--access-log", action="store_true", help="one JSON line per request (no bodies, no secrets)")
    px.add_argument("--hash-key", metavar="KEY", help="print the sha256 of KEY for a [[keys]] table, then exit")
    for name in _LIMITS:
        kind = float if name.endswith("_s") else int
        px.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, dest=name)
    px.set_defaults(func=_run)
