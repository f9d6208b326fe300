"""``cfgateway rollout status|report|advance|rollback``: read and move a staged rollout kept in a ledger.

The rollout's definition, stage and history live in the ledger's state (written by the app's
``Rollout(..., stages=, ledger=)``), so these commands need only the ledger URL and, when the ledger
holds several rollouts, ``--name``. A move is announced to the profile's alert sinks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

ACTIONS = ("status", "report", "advance", "rollback")


def _pick(store: Any, name: str | None) -> str:
    from cfgateway.errors import ConfigError
    from cfgateway.routing.stages import list_rollouts

    names = list_rollouts(store)
    if name is not None:
        if name not in names:
            there = ", ".join(names) or "none"
            raise ConfigError(f"no rollout named {name!r} in this ledger (rollouts there: {there})")
        return name
    if len(names) != 1:
        raise ConfigError("this ledger holds no rollout yet (an app creates it with Rollout(..., stages=, ledger=))"
                          if not names else f"this ledger holds several rollouts: pass --name ({', '.join(names)})")
    return names[0]


def _status_text(state: Any) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(state.since))
    stages = ", ".join(f"{s:g}" for s in state.stages)
    who = state.candidate if state.name == state.candidate else f"{state.name} ({state.candidate})"
    return (f"rollout of {who}: {state.percent:g} % of users on it "
            f"(stages {stages}; status {state.status}; since {when} UTC; version {state.version})")


def _run(args: argparse.Namespace) -> int:
    from cfgateway.config import load_settings
    from cfgateway.costs.alerts import alerts_from_settings
    from cfgateway.costs.ledger import open_ledger
    from cfgateway.routing.controller import move, rollout_event
    from cfgateway.routing.stages import StageStore, build_report

    settings = load_settings()
    url = args.ledger or settings.ledger
    if not url:
        print("no ledger: pass --ledger sqlite:///path.db (or redis://…) or set CFGATEWAY_LEDGER", file=sys.stderr)
        return 2
    ledger = open_ledger(url)
    try:
        stages = StageStore(ledger, _pick(ledger, args.name))
        state = stages.read()
        assert state is not None  # listed in the index
        if args.action in ("advance", "rollback"):
            before, after = move(stages, args.action, by="cli", reason=args.reason or "")
            assert before is not None and after is not None  # strict: refusals raise
            alerts = alerts_from_settings(settings, store=ledger)
            alerts.emit(rollout_event(before, after))
            if not alerts.flush():
                print("warning: the alert webhook did not answer in time", file=sys.stderr)
            state = after
        if args.action == "report":
            start = state.history[0]["ts"] if state.history else state.since
            report = build_report(state, ledger.records(since=start), time.time())
            print(json.dumps(report.to_dict(), indent=2) if args.json else report.render())
        elif args.json:
            print(state.to_json())
        else:
            print(_status_text(state))
    finally:
        ledger.close()
    return 0


def register(sub: Any) -> None:
    c = sub.add_parser("rollout", help="show, report on, advance or roll back a staged rollout")
    c.add_argument("action", choices=ACTIONS)
    c.add_argument("--ledger", help="sqlite:///path.db or redis://host:port/db (default: CFGATEWAY_LEDGER)")
    c.add_argument("--name", help="the rollout (default: the only one in the ledger)")
    c.add_argument("--reason", help="why (kept in the history and the alert)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=_run)
