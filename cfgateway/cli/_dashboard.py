"""``cfgateway dashboard``: the monitoring page for a ledger (spend against budgets, calls, latency,
rollouts, recent alerts), served on loopback by default."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from typing import Any


def budgets_from_args(limit: str | None, alerts: str | None, window: str) -> list[Any]:
    """A global budget from ``--budget-limit`` / ``--budget-alerts 100,300,500`` (none when neither is given)."""
    from cfgateway.costs.budget import Budget

    if limit is None and not alerts:
        return []
    try:
        thresholds = [Decimal(a.strip()) for a in (alerts or "").split(",") if a.strip()]
        cap = Decimal(limit) if limit is not None else None
    except InvalidOperation:
        raise SystemExit("--budget-limit and --budget-alerts take USD amounts: --budget-alerts 100,300,500") from None
    return [Budget(limit=cap, alerts=thresholds, window=window)]


def add_budget_args(p: Any) -> None:
    p.add_argument("--budget-limit", help="a global budget's hard limit in USD, drawn as a red line")
    p.add_argument("--budget-alerts", help="its alert thresholds in USD, comma-separated: 100,300,500")
    p.add_argument("--budget-window", choices=["daily", "monthly"], default="daily")


def _run(args: argparse.Namespace) -> int:
    from cfgateway.config import load_settings
    from cfgateway.costs.ledger import open_ledger
    from cfgateway.dashboard import serve_dashboard

    url = args.ledger or load_settings().ledger
    if not url:
        print("no ledger: pass --ledger sqlite:///path.db (or redis://…) or set CFGATEWAY_LEDGER", file=sys.stderr)
        return 2
    budgets = budgets_from_args(args.budget_limit, args.budget_alerts, args.budget_window)
    ledger = open_ledger(url)
    print(f"cfgateway dashboard on http://{args.host}:{args.port}/")
    try:
        serve_dashboard(ledger, args.host, args.port, budgets=budgets, days=args.days, refresh=args.refresh,
                        api_keys=args.api_key)
    finally:
        ledger.close()
    return 0


def register(sub: Any) -> None:
    d = sub.add_parser("dashboard", help="serve a monitoring page for a cost ledger")
    d.add_argument("--ledger", help="sqlite:///path.db or redis://host:port/db (default: CFGATEWAY_LEDGER)")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8050)
    d.add_argument("--days", type=int, default=30, help="UTC days shown (default 30)")
    d.add_argument("--refresh", type=int, default=30, help="seconds between page refreshes (0 = never)")
    d.add_argument("--api-key", action="append", help="require this key (Basic auth password or Bearer)")
    add_budget_args(d)
    d.set_defaults(func=_run)
