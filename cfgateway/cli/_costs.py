"""``cfgateway costs``: spend from a cost ledger (table, JSON, CSV, or a plot)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise SystemExit(f"--since takes a date like 2026-11-01, got {text!r}") from None


def _run(args: argparse.Namespace) -> int:
    from cfgateway.cli._dashboard import budgets_from_args
    from cfgateway.config import load_settings
    from cfgateway.costs.ledger import open_ledger
    from cfgateway.costs.reports import build_report, plot_daily_costs, render
    from cfgateway.dashboard.figures import budget_lines

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
        budgets = budgets_from_args(args.budget_limit, args.budget_alerts, "daily")
        lines = [(b.value, b.label, b.kind) for b in budget_lines(budgets, "daily")]
        try:
            plot_daily_costs(records, args.plot, lines)
        except ImportError as exc:  # matplotlib is an optional extra: say which, no traceback
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    c = sub.add_parser("costs", help="report spend from a cost ledger")
    c.add_argument("--ledger", help="sqlite:///path.db or redis://host:port/db (default: CFGATEWAY_LEDGER)")
    c.add_argument("--since", help="only records from this UTC date on (YYYY-MM-DD)")
    c.add_argument("--format", choices=["table", "json", "csv"], default="table")
    c.add_argument("--plot", help="draw daily cost per provider to this PNG (needs cfgateway[plot])")
    c.add_argument("--budget-limit", help="with --plot: a daily budget limit in USD, drawn as a red line")
    c.add_argument("--budget-alerts", help="with --plot: its alert thresholds in USD, comma-separated: 100,300,500")
    c.set_defaults(func=_run)
