"""The dashboard without a browser: figures from known records, escaping, the key check, JSON, CLI flags."""

from __future__ import annotations

import base64
import time
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cfgateway.cli._dashboard import budgets_from_args
from cfgateway.costs.budget import Budget
from cfgateway.costs.ledger import MemoryLedger, UsageRecord
from cfgateway.dashboard import allowed, create_dashboard_app
from cfgateway.dashboard.figures import collect
from cfgateway.dashboard.svg import histogram, nice_top

DAY = 86400.0
NOW = 1_795_000_000.0 - (1_795_000_000.0 % DAY) + 12 * 3600  # noon UTC on 2026-11-18


def rec(ago_days: float, cost: str | None, **kw: object) -> UsageRecord:
    kw.setdefault("model", "openai/gpt-4o-mini")
    kw.setdefault("provider", "openai")
    return UsageRecord(ts=NOW - ago_days * DAY, operation="chat", cost=None if cost is None else Decimal(cost),
                       **kw)  # type: ignore[arg-type]


def test_figures_from_known_records() -> None:
    led = MemoryLedger()
    for r in (rec(0, "1.5"), rec(0, "0.25", provider="workers-ai", model="@cf/x"), rec(1, "2"), rec(40, "9"),
              rec(0, "0.1", outcome="shadow", similarity=0.9), rec(2, None, input_tokens=5)):
        led.add(r)
    budgets = [Budget(limit=Decimal(5), alerts=[Decimal(1), Decimal(3)]), Budget(limit=Decimal(50), window="monthly"),
               Budget(limit=Decimal(1), scope="user")]
    f = collect(led, days=7, budgets=budgets, now=NOW)
    assert f.days[0] == "2026-11-12" and f.days[-1] == "2026-11-18" and len(f.days) == 7
    assert f.spend_by_provider["openai"][-1] == Decimal("1.6") and f.spend_by_provider["openai"][-2] == Decimal(2)
    assert f.spend_by_provider["workers-ai"][-1] == Decimal("0.25")
    assert f.total_spend == Decimal("3.85") and f.unpriced == 1  # the 40-day-old record is outside 7 days
    assert [(b.value, b.kind) for b in f.daily_lines] == [(5, "limit"), (1, "alert"), (3, "alert")]
    assert [b.value for b in f.monthly_lines] == [50]  # a per-user budget has no single line
    assert f.month_days[0] == "2026-11-01" and f.month_cumulative[-1] == Decimal("3.85")
    assert f.total.calls == 4 and f.shadow_records == 1  # shadows: spend yes, calls no
    d = f.to_dict()
    assert d["total_spend"] == "3.85" and d["spend_by_provider"]["openai"][-1] == "1.60"


def test_page_escapes_ledger_strings_and_json_matches() -> None:
    led = MemoryLedger()
    evil = "<script>alert('x')</script>"
    led.add(UsageRecord(ts=time.time(), model=f"openai/{evil}", provider=evil, operation="chat", user=evil,
                        cost=Decimal("0.5")))
    client = TestClient(create_dashboard_app(led))
    html = client.get("/").text
    assert evil not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script" not in html  # the page has no script of its own either
    r = client.get("/")
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert client.get("/data.json").json()["by_user"][0]["user"] == evil


def test_the_key_is_checked() -> None:
    client = TestClient(create_dashboard_app(MemoryLedger(), api_keys=["k1", "k2"]))
    assert client.get("/").status_code == 401 and "Basic" in client.get("/").headers["www-authenticate"]
    assert client.get("/data.json", headers={"authorization": "Bearer nope"}).status_code == 401
    assert client.get("/data.json", headers={"authorization": "Bearer k2"}).status_code == 200
    basic = base64.b64encode(b"anyone:k1").decode()
    assert client.get("/", headers={"authorization": f"Basic {basic}"}).status_code == 200
    assert not allowed("Basic !!!notbase64", ["k1"]) and not allowed("", ["k1"]) and allowed("bearer k1", ["k1"])


def test_mounted_under_a_prefix() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/dashboard", app=create_dashboard_app(MemoryLedger()))])
    client = TestClient(outer)
    assert client.get("/dashboard/").status_code == 200 and client.get("/dashboard/data.json").json()["days"]


def test_svg_helpers() -> None:
    assert [nice_top(v) for v in (0, 0.0913, 3.85, 100, 480)] == [1.0, 0.1, 5, 200, 600]  # 5 % headroom
    svg = histogram("h", [0.93, 0.95, 0.99, 1.0], 0.95, bins=20)
    assert svg.count("<rect") == 20 and "bar 0.95" in svg


def test_dashboard_budget_flags(tmp_path: Path) -> None:
    (b,) = budgets_from_args("500", "100, 300,500", "daily")
    assert b.limit == 500 and b.alerts == [100, 300, 500] and b.window == "daily"
    assert budgets_from_args(None, None, "daily") == []
    with pytest.raises(SystemExit, match="USD amounts"):
        budgets_from_args("lots", None, "daily")
    with pytest.raises(ValueError, match="days"):
        create_dashboard_app(MemoryLedger(), days=0)


def test_a_slow_ledger_is_read_off_the_event_loop() -> None:
    """Two page loads at once each wait inside the ledger read until the other one is also inside it: only
    possible when the reads run in worker threads, not on the server's event loop (which would deadlock
    until the barrier's timeout breaks it)."""
    import asyncio
    import threading

    import httpx

    barrier = threading.Barrier(2, timeout=5)

    class SlowLedger(MemoryLedger):
        def records(self, **kwargs: object) -> list[UsageRecord]:  # type: ignore[override]
            barrier.wait()
            return super().records(**kwargs)  # type: ignore[arg-type]

    app = create_dashboard_app(SlowLedger())

    async def both() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            rs = await asyncio.gather(c.get("/data.json"), c.get("/"))
        return [r.status_code for r in rs]

    assert asyncio.run(both()) == [200, 200]
    assert not barrier.broken
