"""``cfgateway emulate``: the offline Cloudflare emulator on loopback, as a stand-in for your real setup.

    cfgateway emulate                                     any account, any token, gateways made on first use
    cfgateway emulate --gateway gw --gateway-token T --stored-keys
                                                          an authenticated gateway holding provider keys
    cfgateway emulate --from-config [--profile P] [--config PATH]
                                                          the account, tokens and gateway of your own profile

It prints the environment lines that point an app at it; tokens are never printed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cfgateway.emulator.config import EmulatorConfig, GatewayConfig


def _dynamic(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, model = item.partition("=")
        if not sep or not name or not model:
            raise SystemExit(f"--dynamic-route takes NAME=MODEL (e.g. support=openai/gpt-4o-mini), got {item!r}")
        out[name] = model
    return out


def _from_config(args: argparse.Namespace) -> EmulatorConfig:
    from cfgateway.config import load_settings

    s = load_settings(profile=args.profile, config_path=args.config)
    gateways: dict[str, GatewayConfig] = {}
    if s.gateway_id:
        token = s.gateway_token.get_secret_value() if s.gateway_token else None
        gateways[s.gateway_id] = GatewayConfig(token, stored_keys=s.byok, dynamic_routes=_dynamic(args.dynamic_route))
    return EmulatorConfig(
        api_token=s.api_token.get_secret_value() if s.api_token else None, account_id=s.account_id,
        gateways=gateways, auto_create_gateways=not gateways,
    )


def emulator_config(args: argparse.Namespace) -> EmulatorConfig:
    """The emulated account the flags describe."""
    if args.from_config:
        return _from_config(args)
    if (args.gateway_token or args.stored_keys or args.dynamic_route) and not args.gateway:
        raise SystemExit("--gateway-token, --stored-keys and --dynamic-route describe a gateway: add --gateway ID")
    gateways: dict[str, GatewayConfig] = {}
    if args.gateway:
        gateways[args.gateway] = GatewayConfig(
            args.gateway_token, stored_keys=True if args.stored_keys else None,
            dynamic_routes=_dynamic(args.dynamic_route),
        )
    return EmulatorConfig(api_token=args.api_token, account_id=args.account_id, gateways=gateways,
                          auto_create_gateways=not gateways)


def env_lines(config: EmulatorConfig, url: str) -> list[str]:
    """``export`` lines that point an app at the emulator (secrets: a comment saying which value to use)."""
    lines = [f"export CLOUDFLARE_API_BASE_URL={url}/client/v4", f"export CLOUDFLARE_AI_GATEWAY_BASE_URL={url}/v1",
             f"export CLOUDFLARE_ACCOUNT_ID={config.account_id or 'acct'}"]
    if config.api_token is None:
        lines.append("export CLOUDFLARE_API_TOKEN=emulator-token   # any non-empty token is accepted")
    else:
        lines.append("# CLOUDFLARE_API_TOKEN: the API token you configured (only that one is accepted)")
    for gw_id, gw in config.gateways.items():
        lines.append(f"export CLOUDFLARE_AI_GATEWAY_ID={gw_id}")
        if gw.auth_token is not None:
            lines.append("# CLOUDFLARE_AI_GATEWAY_TOKEN: the gateway token you configured (required by this gateway)")
        keys = "stored in the gateway: no provider key needed" if gw.has_stored_keys else "not stored: send your own"
        lines.append(f"# provider keys {keys}")
    if not config.gateways:
        lines.append("# any gateway id works (made on first use, unauthenticated, no stored provider keys)")
    return lines


def _run(args: argparse.Namespace) -> int:
    from cfgateway.emulator._extra import EmulatorExtraMissing

    try:
        from cfgateway.emulator.server import serve
    except EmulatorExtraMissing as exc:  # a plain install: name the extra instead of a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1

    config = emulator_config(args)
    url = f"http://{args.host}:{args.port}"
    print(f"cfgateway emulator on {url}", flush=True)
    for line in env_lines(config, url):
        print(f"  {line}", flush=True)
    serve(args.host, args.port, config)
    return 0


def register(sub: Any) -> None:
    e = sub.add_parser("emulate", help="run the offline Cloudflare emulator (loopback only)")
    e.add_argument("--host", default="127.0.0.1")
    e.add_argument("--port", type=int, default=8787)
    e.add_argument("--account-id", help="accept only this account id (default: any)")
    e.add_argument("--api-token", help="accept only this Cloudflare API token (default: any non-empty one)")
    e.add_argument("--gateway", metavar="ID", help="the one gateway that exists (default: any id, made on first use)")
    e.add_argument("--gateway-token", metavar="TOKEN", help="make --gateway authenticated (cf-aig-authorization)")
    e.add_argument("--stored-keys", action="store_true",
                   help="--gateway holds provider keys (BYOK): provider calls need no key of their own")
    e.add_argument("--dynamic-route", action="append", metavar="NAME=MODEL",
                   help="a dynamic route of --gateway: model 'dynamic/NAME' goes to MODEL (repeatable)")
    e.add_argument("--from-config", action="store_true",
                   help="emulate the account, tokens and gateway of your configuration (env / cfgateway.toml)")
    e.add_argument("--profile", help="with --from-config: the cfgateway.toml profile (default: CFGATEWAY_PROFILE)")
    e.add_argument("--config", help="with --from-config: the config file (default: CFGATEWAY_CONFIG)")
    e.set_defaults(func=_run)
