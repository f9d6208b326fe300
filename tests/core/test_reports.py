from __future__ import annotations

import calendar
import csv
import io
import json
import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cfgateway.costs.ledger import UsageRecord
from cfgateway.costs.reports import (
    GroupStats,
    build_report,
    daily_costs_by_provider,
    money,
    plot_daily_costs,
    render,
)

D1 = float(calendar.timegm((2026, 11, 21, 10, 0, 0, 0, 0, 0)))
D2 = float(calendar.timegm((2026, 11, 22, 10, 0, 0, 0, 0, 0)))
WA = "@cf/meta/llama-3.2-1b-instruct"


def rec(ts: float, model: str = "openai/gpt-4o-mini", provider: str = "openai", **kw: Any) -> UsageRecord:
    return UsageRecord(ts=ts, model=model, provider=provider, operation="chat", **kw)


def sample() -> list[UsageRecord]:
    out = [
        rec(D1, cost=Decimal("0.00075"), input_tokens=1000, output_tokens=1000, user="alice", latency_s=1.0),
        rec(D1 + 60, cost=Decimal("0.00025"), input_tokens=100, output_tokens=50, user="alice", latency_s=3.0,
            cached_tokens=40),
        rec(D1 + 70, cost=Decimal(0), input_tokens=100, output_tokens=50, user="alice", cache_status="HIT",
            latency_s=0.01),
        rec(D1 + 80, user="alice", outcome="RateLimitError", latency_s=0.2),  # failed, nothing used
        rec(D1 + 90, WA, "workers-ai", cost=Decimal("0.0001275"), input_tokens=1000, output_tokens=500,
            neurons=6000.0, fallback=True, attempt=1, latency_s=2.0),
        rec(D2, WA, "workers-ai", cost=Decimal("0.0001275"), input_tokens=1000, output_tokens=500, neurons=11000.5,
            stream=True, stream_complete=False, outcome="StreamInterrupted", latency_s=5.0),
        rec(D2 + 5, "acme/mystery", "acme", cost=None, input_tokens=10, output_tokens=10, latency_s=0.5),
    ]  # fmt: skip
    return out


def test_groups_by_provider_model_user_and_day() -> None:
    report = build_report(sample())
    keys = [g.key for g in report.groups]
    assert keys == [
        ("acme", "acme/mystery", "-", "2026-11-22"),
        ("openai", "openai/gpt-4o-mini", "alice", "2026-11-21"),
        ("workers-ai", WA, "-", "2026-11-21"),
        ("workers-ai", WA, "-", "2026-11-22"),
    ]
    openai = report.groups[1]
    assert openai.calls == 4 and openai.errors == 1 and openai.cache_hits == 1
    assert openai.cost == Decimal("0.001") and openai.unpriced == 0  # the failed call used nothing: not "unpriced"
    assert (openai.input_tokens, openai.output_tokens, openai.cached_tokens) == (1200, 1100, 40)
    assert openai.error_rate == 0.25 and openai.cache_hit_rate == 0.25
    mystery = report.groups[0]
    assert mystery.unpriced == 1 and mystery.cost == 0  # shown as unpriced, never silently $0
    assert report.groups[2].fallbacks == 1 and report.groups[2].fallback_rate == 1.0
    assert report.groups[3].incomplete_streams == 1


def test_totals_are_exact() -> None:
    t = build_report(sample()).total
    assert t.calls == 7 and t.errors == 2 and t.fallbacks == 1 and t.cache_hits == 1 and t.unpriced == 1
    assert t.cost == Decimal("0.001255")
    assert t.input_tokens == 3210 and t.output_tokens == 2110
    assert t.neurons == pytest.approx(17000.5)


def test_latency_percentiles_of_successful_calls() -> None:
    records = [rec(D1, latency_s=float(i)) for i in range(1, 101)] + [rec(D1, outcome="TimeoutError", latency_s=999.0)]
    g = build_report(records, group_by=("provider",)).groups[0]
    assert g.latency_p50 == pytest.approx(50.5)
    assert g.latency_p95 == pytest.approx(95.05)
    assert g.latency_p99 == pytest.approx(99.01)
    empty = GroupStats(("x",))
    empty.finish()
    assert empty.latency_p50 is None


def test_neurons_per_utc_day_against_the_free_allocation() -> None:
    days = build_report(sample()).neurons
    assert [(n.day, n.used, n.free) for n in days] == [("2026-11-21", 6000.0, 10000), ("2026-11-22", 11000.5, 10000)]
    assert days[0].over_free == 0 and days[1].over_free == pytest.approx(1000.5)


def test_other_groupings_and_bad_ones() -> None:
    by_day = build_report(sample(), group_by=("day",))
    assert [(g.key, g.calls) for g in by_day.groups] == [(("2026-11-21",), 5), (("2026-11-22",), 2)]
    whole = build_report(sample(), group_by=())
    assert len(whole.groups) == 1 and whole.groups[0].calls == 7
    with pytest.raises(ValueError, match="cannot group by"):
        build_report(sample(), group_by=("colour",))


def test_render_json_keeps_exact_costs() -> None:
    data = json.loads(render(build_report(sample()), "json"))
    assert data["group_by"] == ["provider", "model", "user", "day"]
    assert data["total"]["cost_usd"] == "0.001255" and data["total"]["unpriced"] == 1
    first = data["groups"][1]
    assert first["model"] == "openai/gpt-4o-mini" and first["cost_usd"] == "0.001" and first["errors"] == 1
    assert data["neurons_by_day"][1] == {"day": "2026-11-22", "used": 11000.5, "free": 10000, "over_free": 1000.5}


def test_render_csv() -> None:
    rows = list(csv.DictReader(io.StringIO(render(build_report(sample()), "csv"))))
    assert len(rows) == 5
    assert rows[1]["provider"] == "openai" and rows[1]["cost_usd"] == "0.001" and rows[1]["calls"] == "4"
    assert rows[0]["unpriced"] == "1"
    assert rows[-1]["provider"] == "TOTAL" and rows[-1]["cost_usd"] == "0.001255"


def test_render_table() -> None:
    text = render(build_report(sample()))
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["provider", "model", "user", "day"]
    assert any(line.startswith("TOTAL") and "0.001255" in line for line in lines)
    assert "1 record(s) of unknown price" in text
    assert "2026-11-22  used 11,000.5  left 0.0  over by 1,000.5" in text
    with pytest.raises(ValueError):
        render(build_report(sample()), "xml")


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal(0), "0.00"), (Decimal("1.5"), "1.50"), (Decimal("0.0001275"), "0.0001275"), (Decimal("2.7E-11"), "0.000000000027"), (Decimal("100"), "100.00")],
)
def test_money(value: Decimal, text: str) -> None:
    assert money(value) == text


def test_daily_costs_by_provider() -> None:
    days, series = daily_costs_by_provider(sample())
    assert days == ["2026-11-21", "2026-11-22"]
    assert series == {
        "openai": [Decimal("0.001"), Decimal(0)],
        "workers-ai": [Decimal("0.0001275"), Decimal("0.0001275")],
    }


def test_plot_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"cfgateway\[plot\]"):
        plot_daily_costs(sample(), str(tmp_path / "c.png"))


def test_plot_draws_stacked_daily_bars_per_provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[str, Any]] = []

    class Axes:
        def bar(self, x: list[str], heights: list[float], *, bottom: list[float], label: str) -> None:
            calls.append(("bar", (list(x), heights, bottom, label)))

        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: calls.append((name, a))

    class Figure:
        def __init__(self, figsize: tuple[float, float]) -> None:
            pass

        def subplots(self) -> Axes:
            return Axes()

        def tight_layout(self) -> None:
            pass

        def savefig(self, path: str) -> None:
            Path(path).write_bytes(b"png")

    fake = types.ModuleType("matplotlib.figure")
    fake.Figure = Figure  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "matplotlib", types.ModuleType("matplotlib"))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", fake)
    out = tmp_path / "costs.png"
    plot_daily_costs(sample(), str(out))
    assert out.read_bytes() == b"png"
    bars = [c[1] for c in calls if c[0] == "bar"]
    days = ["2026-11-21", "2026-11-22"]
    assert bars == [
        (days, [0.001, 0.0], [0.0, 0.0], "openai"),
        (days, [0.0001275, 0.0001275], [0.001, 0.0], "workers-ai"),
    ]
    assert ("legend", ()) in calls
