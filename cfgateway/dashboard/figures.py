"""The monitoring page's figures, from a ledger's records and state (pure: no HTTP, no HTML).

Spend counts every priced record, shadow comparisons included (they cost money). Calls, tokens,
latency and the error / fallback / cache-hit rates are about the answers callers got, so shadow
records are left out of them and shown in the rollout section instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cfgateway.costs.alerts import recent_alerts
from cfgateway.costs.budget import Budget
from cfgateway.costs.ledger.record import DAY_S, UsageRecord, day_of, month_start
from cfgateway.costs.reports import GroupStats, build_report, money
from cfgateway.routing.gates import StageStats, stage_stats
from cfgateway.routing.stages import RolloutState, StageStore, list_rollouts, verdict_of

ZERO = Decimal(0)


def day_text(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * DAY_S))


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """A horizontal line on a spend chart: a hard limit or an alert threshold of a global budget."""

    value: Decimal
    label: str
    kind: str  # "limit" | "alert"


@dataclass(slots=True)
class RolloutFigures:
    state: RolloutState
    current: StageStats
    action: str
    reason: str


@dataclass(slots=True)
class Figures:
    since: float
    until: float
    days: list[str]
    spend_by_provider: dict[str, list[Decimal]]  # provider -> spend per day (aligned with ``days``)
    total_spend: Decimal
    unpriced: int
    daily_lines: list[BudgetLine]
    month_days: list[str]
    month_cumulative: list[Decimal]
    monthly_lines: list[BudgetLine]
    total: GroupStats
    by_model: list[GroupStats]
    by_user: list[GroupStats]
    shadow_records: int
    rollouts: list[RolloutFigures] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (money as exact decimal strings), for ``/data.json``."""
        return {
            "since": self.since, "until": self.until, "days": self.days,
            "spend_by_provider": {p: [money(v) for v in vs] for p, vs in self.spend_by_provider.items()},
            "total_spend": money(self.total_spend), "unpriced": self.unpriced,
            "daily_lines": [{"value": money(b.value), "label": b.label, "kind": b.kind} for b in self.daily_lines],
            "monthly_lines": [{"value": money(b.value), "label": b.label, "kind": b.kind}
                              for b in self.monthly_lines],
            "total": self.total.to_dict(()),
            "by_model": [g.to_dict(("model",)) for g in self.by_model],
            "by_user": [g.to_dict(("user",)) for g in self.by_user],
            "shadow_records": self.shadow_records,
            "rollouts": [{"name": r.state.name, "candidate": r.state.candidate, "percent": r.state.percent,
                          "status": r.state.status, "verdict": r.action, "reason": r.reason,
                          **r.current.to_dict()} for r in self.rollouts],
            "alerts": self.alerts,
        }  # fmt: skip


def budget_lines(budgets: Sequence[Budget], window: str) -> list[BudgetLine]:
    """Lines of the global budgets of one window (scoped budgets have no single line to draw)."""
    out: list[BudgetLine] = []
    for b in budgets:
        if b.window != window or b.scope != "global":
            continue
        if b.limit is not None:
            out.append(BudgetLine(b.limit, f"{b.name} limit ${money(b.limit)}", "limit"))
        out.extend(BudgetLine(a, f"{b.name} alert ${money(a)}", "alert") for a in b.alerts)
    return out


def _spend(records: Sequence[UsageRecord], first: int, last: int) -> tuple[dict[str, list[Decimal]], int]:
    n = last - first + 1
    per: dict[str, list[Decimal]] = {}
    unpriced = 0
    for r in records:
        if r.cost is None:
            unpriced += r.succeeded or bool(r.input_tokens or r.output_tokens)
            continue
        row = per.setdefault(r.provider, [ZERO] * n)
        row[day_of(r.ts) - first] += r.cost
    return dict(sorted(per.items())), unpriced


def _month(records: Sequence[UsageRecord], now: float) -> tuple[list[str], list[Decimal]]:
    first, today = day_of(month_start(now)), day_of(now)
    daily = [ZERO] * (today - first + 1)
    for r in records:
        d = day_of(r.ts)
        if r.cost is not None and first <= d <= today:
            daily[d - first] += r.cost
    out, run = [], ZERO
    for v in daily:
        run += v
        out.append(run)
    return [day_text(d) for d in range(first, today + 1)], out


def _rollouts(ledger: Any, records: Sequence[UsageRecord], since: float) -> list[RolloutFigures]:
    out = []
    for name in list_rollouts(ledger):
        state = StageStore(ledger, name).read()
        if state is None:
            continue
        recs = records if state.since >= since else ledger.records(since=state.since)  # an older stage
        cur = stage_stats(recs, candidate=state.candidate, baseline=state.baseline, percent=state.percent,
                          since=state.since, bar=state.gates.min_similarity)
        v = verdict_of(state, cur)
        out.append(RolloutFigures(state, cur, v.action, v.reason))
    return out


def collect(ledger: Any, *, days: int = 30, budgets: Sequence[Budget] = (), now: float | None = None) -> Figures:
    """Everything the page shows, for the last ``days`` UTC days (and this UTC month) up to ``now``."""
    now = time.time() if now is None else now
    last = day_of(now)
    first = min(last - days + 1, day_of(month_start(now)))
    since = float(first * DAY_S)
    records = ledger.records(since=since)
    window = [r for r in records if r.ts >= (last - days + 1) * DAY_S]
    spend, unpriced = _spend(window, last - days + 1, last)
    answers = [r for r in window if not r.shadow]
    by_model = build_report(answers, group_by=("model",))
    by_user = build_report(answers, group_by=("user",))
    month_days, cumulative = _month(records, now)
    total_spend = sum((sum(v, ZERO) for v in spend.values()), ZERO)
    return Figures(
        since=float((last - days + 1) * DAY_S), until=now,
        days=[day_text(d) for d in range(last - days + 1, last + 1)], spend_by_provider=spend,
        total_spend=total_spend, unpriced=unpriced, daily_lines=budget_lines(budgets, "daily"),
        month_days=month_days, month_cumulative=cumulative, monthly_lines=budget_lines(budgets, "monthly"),
        total=by_model.total, by_model=by_model.groups,
        by_user=sorted(by_user.groups, key=lambda g: (-g.cost, g.key)),
        shadow_records=sum(r.shadow_pair for r in window),
        rollouts=_rollouts(ledger, records, since), alerts=recent_alerts(ledger),
    )  # fmt: skip


__all__ = ["BudgetLine", "Figures", "RolloutFigures", "budget_lines", "collect", "day_text"]
