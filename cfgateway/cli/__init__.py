"""The ``cfgateway`` command line. One module per command group; each has ``register(sub)``.

    cfgateway emulate [--port 8787] [--gateway ID --gateway-token T --stored-keys] [--from-config]
                                                          run the offline Cloudflare emulator
    cfgateway models [--kind chat|embed] [--json]        list the price/model catalog
    cfgateway costs [--ledger URL] [--since DATE] [--format table|json|csv] [--plot costs.png] [--budget-…]
    cfgateway chat [MODEL] "prompt" [--profile P] [--no-byok] ...  one chat call (settings from env / cfgateway.toml)
    cfgateway config show [--profile P] [--config PATH]   the resolved settings and their sources, secrets masked
    cfgateway check [--profile P] [--no-calls]            check the configuration against the service
    cfgateway proxy [--port 8080] [--alias NAME=MODEL[,FALLBACK…]] [--api-key KEY] [--config proxy.toml]
                                                          an OpenAI-compatible proxy (AutoGen, openai SDK)
    cfgateway rollout status|report|advance|rollback [--ledger URL] [--name NAME] [--reason TEXT] [--json]
    cfgateway dashboard [--ledger URL] [--port 8050] [--budget-limit USD] [--budget-alerts 100,300,500]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cfgateway.cli import _chat, _check, _config, _costs, _dashboard, _emulate, _models, _proxy, _rollout
from cfgateway.errors import CloudflareError

COMMANDS = (_emulate, _models, _costs, _chat, _proxy, _config, _check, _rollout, _dashboard)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cfgateway", description="Cloudflare Workers AI and AI Gateway from Python.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
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


__all__ = ["build_parser", "main"]
