"""Cost reports from usage records (``cfgateway costs``): pure functions, no I/O but the plot.

``build_report(records)`` groups by provider, model, user and UTC day (or any of ``GROUP_FIELDS``)
with cost, tokens, calls, errors, fallbacks, cache hits and latency percentiles per group, plus
Workers AI neurons per UTC day against the free allocation. A group holding records of unknown
price shows the priced sum *and* an ``unpriced`` count — never a silent 0.
``render(report, fmt)`` gives a table, JSON or CSV; ``plot_daily_costs`` needs ``cfgateway[plot]``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cfgateway.costs.catalog import Catalog, default_catalog
from cfgateway.costs.ledger.record import UsageRecord

_ZERO = Decimal(0)
_NONE = "-"


def _day(r: UsageRecord) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(r.ts))


GROUP_FIELDS: dict[str, Callable[[UsageRecord], str]] = {
    "provider": lambda r: r.provider,
    "model": lambda r: r.model,
    "user": lambda r: r.user if r.user is not None else _NONE,
    "day": _day,
    "month": lambda r: _day(r)[:7],
    "operation": lambda r: r.operation,
    "outcome": lambda r: r.outcome,
}


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(slots=True)
class GroupStats:
    """Totals for one group (``key`` holds the values of ``Report.group_by``)."""

    key: tuple[str, ...]
    calls: int = 0  # attempts (one record each)
    errors: int = 0
    fallbacks: int = 0
    cache_hits: int = 0
    incomplete_streams: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: Decimal = _ZERO  # sum of the priced records
    unpriced: int = 0  # records that used tokens but have no price (cost None)
    neurons: float = 0.0
    latency_p50: float | None = None  # seconds, successful attempts
    latency_p95: float | None = None
    latency_p99: float | None = None
    _latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.calls if self.calls else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.calls if self.calls else 0.0

    def add(self, r: UsageRecord) -> None:
        self.calls += 1
        ok = r.succeeded  # "ok", or a shadow comparison whose candidate answered
        self.errors += not ok
        self.fallbacks += bool(r.fallback)
        self.cache_hits += r.cache_hit
        self.incomplete_streams += r.stream and r.stream_complete is False
        self.input_tokens += r.input_tokens
        self.output_tokens += r.output_tokens
        self.cached_tokens += r.cached_tokens
        if r.cost is not None:
            self.cost += r.cost
        elif ok or r.input_tokens or r.output_tokens:
            self.unpriced += 1  # a failed attempt with no usage is not "unpriced": nothing was used
        self.neurons += r.neurons or 0.0
        if ok:
            self._latencies.append(r.latency_s)

    def finish(self) -> None:
        lat = sorted(self._latencies)
        self.latency_p50, self.latency_p95, self.latency_p99 = (_percentile(lat, q) for q in (0.5, 0.95, 0.99))

    def to_dict(self, group_by: Sequence[str]) -> dict[str, Any]:
        d: dict[str, Any] = dict(zip(group_by, self.key, strict=True))
        d.update(
            calls=self.calls, errors=self.errors, error_rate=round(self.error_rate, 4), fallbacks=self.fallbacks,
            fallback_rate=round(self.fallback_rate, 4), cache_hits=self.cache_hits,
            cache_hit_rate=round(self.cache_hit_rate, 4), incomplete_streams=self.incomplete_streams,
            input_tokens=self.input_tokens, output_tokens=self.output_tokens, cached_tokens=self.cached_tokens,
            cost_usd=money(self.cost), unpriced=self.unpriced, neurons=round(self.neurons, 3),
            latency_p50_s=_round(self.latency_p50), latency_p95_s=_round(self.latency_p95),
            latency_p99_s=_round(self.latency_p99),
        )  # fmt: skip
        return d


@dataclass(frozen=True, slots=True)
class NeuronDay:
    """Workers AI neurons used on one UTC day against the free daily allocation."""

    day: str
    used: float
    free: int

    @property
    def over_free(self) -> float:
        return max(0.0, self.used - self.free)


@dataclass(slots=True)
class Report:
    group_by: tuple[str, ...]
    groups: list[GroupStats]
    total: GroupStats
    neurons: list[NeuronDay]
    since: float | None = None  # first record's time
    until: float | None = None  # last record's time

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_by": list(self.group_by),
            "since": self.since,
            "until": self.until,
            "groups": [g.to_dict(self.group_by) for g in self.groups],
            "total": self.total.to_dict(()),
            "neurons_by_day": [
                {"day": n.day, "used": round(n.used, 3), "free": n.free, "over_free": round(n.over_free, 3)}
                for n in self.neurons
            ],
        }


def money(value: Decimal) -> str:
    """Exact USD text, no exponent, at least 2 decimals: ``0.0001275``, ``1.50``, ``0.00``."""
    text = format(value, "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(2, '0')}"


def build_report(
    records: Iterable[UsageRecord],
    *,
    group_by: Sequence[str] = ("provider", "model", "user", "day"),
    catalog: Catalog | None = None,
) -> Report:
    """Totals per group and overall; neurons per UTC day vs the catalog's free allocation."""
    unknown = [g for g in group_by if g not in GROUP_FIELDS]
    if unknown:
        raise ValueError(f"cannot group by {unknown}; choose from {sorted(GROUP_FIELDS)}")
    getters = [GROUP_FIELDS[g] for g in group_by]
    groups: dict[tuple[str, ...], GroupStats] = {}
    total = GroupStats(())
    neurons: dict[str, float] = {}
    first: float | None = None
    last: float | None = None
    for r in records:
        key = tuple(get(r) for get in getters)
        g = groups.get(key)
        if g is None:
            g = groups[key] = GroupStats(key)
        g.add(r)
        total.add(r)
        if r.neurons:
            day = _day(r)
            neurons[day] = neurons.get(day, 0.0) + r.neurons
        first = r.ts if first is None or r.ts < first else first
        last = r.ts if last is None or r.ts > last else last
    for g in (*groups.values(), total):
        g.finish()
    free = (catalog or default_catalog()).free_neurons_per_day
    days = [NeuronDay(d, neurons[d], free) for d in sorted(neurons)]
    return Report(tuple(group_by), [groups[k] for k in sorted(groups)], total, days, first, last)


# -- rendering -------------------------------------------------------------------------------

_COLUMNS: tuple[tuple[str, str], ...] = (
    ("calls", "calls"),
    ("errors", "errors"),
    ("error_rate", "err%"),
    ("fallbacks", "fallbk"),
    ("cache_hits", "cache"),
    ("input_tokens", "in_tok"),
    ("output_tokens", "out_tok"),
    ("cost_usd", "cost_usd"),
    ("unpriced", "unpriced"),
    ("latency_p50_s", "p50_s"),
    ("latency_p95_s", "p95_s"),
    ("latency_p99_s", "p99_s"),
)


def _cell(name: str, value: Any) -> str:
    if value is None:
        return _NONE
    if name.endswith("_rate"):
        return f"{100 * value:.1f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _rows(report: Report) -> tuple[list[str], list[list[str]]]:
    header = [*report.group_by, *(title for _, title in _COLUMNS)]
    rows = []
    for g in report.groups:
        d = g.to_dict(report.group_by)
        rows.append([*g.key, *(_cell(name, d[name]) for name, _ in _COLUMNS)])
    d = report.total.to_dict(())
    label = ["TOTAL", *([""] * (len(report.group_by) - 1))] if report.group_by else []
    rows.append([*label, *(_cell(name, d[name]) for name, _ in _COLUMNS)])
    return header, rows


def _table(report: Report) -> str:
    header, rows = _rows(report)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    nkeys = len(report.group_by)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < nkeys else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in rows[:-1])
    out.extend(["  ".join("-" * w for w in widths), line(rows[-1])])
    if report.total.unpriced:
        out.append(
            f"note: cost_usd excludes {report.total.unpriced} record(s) of unknown price "
            "(add their models to the catalog: CFGATEWAY_CATALOG)"
        )
    if report.neurons:
        out.append("")
        out.append(f"Workers AI neurons per UTC day (free allocation {report.neurons[0].free:,}/day):")
        for n in report.neurons:
            over = f"  over by {n.over_free:,.1f}" if n.over_free else ""
            out.append(f"  {n.day}  used {n.used:,.1f}  left {max(0.0, n.free - n.used):,.1f}{over}")
    return "\n".join(out)


def _csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*report.group_by, *(name for name, _ in _COLUMNS)])
    for g in report.groups:
        d = g.to_dict(report.group_by)
        w.writerow([*g.key, *("" if d[name] is None else d[name] for name, _ in _COLUMNS)])
    d = report.total.to_dict(())
    label = ["TOTAL", *([""] * (len(report.group_by) - 1))] if report.group_by else []
    w.writerow([*label, *("" if d[name] is None else d[name] for name, _ in _COLUMNS)])
    return buf.getvalue()


def render(report: Report, fmt: str = "table") -> str:
    """The report as ``"table"`` (aligned text), ``"json"`` or ``"csv"`` (groups + a TOTAL row)."""
    if fmt == "table":
        return _table(report)
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2)
    if fmt == "csv":
        return _csv(report)
    raise ValueError(f"unknown report format {fmt!r}: use table, json or csv")


# -- plot ------------------------------------------------------------------------------------


def daily_costs_by_provider(records: Iterable[UsageRecord]) -> tuple[list[str], dict[str, list[Decimal]]]:
    """``(UTC days, {provider: cost per day})`` over every day that has records (priced costs)."""
    per: dict[str, dict[str, Decimal]] = {}
    days: set[str] = set()
    for r in records:
        day = _day(r)
        days.add(day)
        if r.cost is not None:
            by_day = per.setdefault(r.provider, {})
            by_day[day] = by_day.get(day, _ZERO) + r.cost
    ordered = sorted(days)
    return ordered, {p: [by_day.get(d, _ZERO) for d in ordered] for p, by_day in sorted(per.items())}


def plot_daily_costs(
    records: Iterable[UsageRecord], path: str, lines: Sequence[tuple[Decimal, str, str]] = ()
) -> None:
    """Draw daily cost per provider (stacked bars, UTC days) to an image file (PNG by extension), with
    dashed horizontal ``lines`` ``(USD, label, kind)`` for daily budget limits (``"limit"``, red) and alert
    thresholds (``"alert"``, orange)."""
    try:
        from matplotlib.figure import Figure  # lazy: optional extra, no pyplot / global backend
    except ImportError as exc:
        raise ImportError("plotting costs needs matplotlib: pip install 'cfgateway[plot]'") from exc
    days, series = daily_costs_by_provider(records)
    fig = Figure(figsize=(max(6.0, 0.5 * len(days) + 3), 4.5))
    ax = fig.subplots()
    bottom = [0.0] * len(days)
    for provider, values in series.items():
        heights = [float(v) for v in values]
        ax.bar(days, heights, bottom=bottom, label=provider)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for value, label, kind in lines:
        ax.axhline(float(value), color="#dc2626" if kind == "limit" else "#d97706", linestyle="--", linewidth=1.2,
                   label=label)
    ax.set_ylabel("USD")
    ax.set_title("Daily cost per provider (UTC)")
    if series or lines:
        ax.legend()
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(path)


__all__ = [
    "GROUP_FIELDS",
    "GroupStats",
    "NeuronDay",
    "Report",
    "build_report",
    "daily_costs_by_provider",
    "money",
    "plot_daily_costs",
    "render",
]
