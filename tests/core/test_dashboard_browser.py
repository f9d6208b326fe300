"""The monitoring page in a real headless browser (Debian's chromium driven by playwright): the figures it
shows equal the ledger's, nothing from the ledger runs as HTML, no console errors, it refreshes itself,
its key is required; a screenshot is saved in tests/artifacts/."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import _webserver
import pytest

from cfgateway.costs.alerts import AlertEvent, Alerts
from cfgateway.costs.budget import Budget
from cfgateway.costs.ledger import SQLiteLedger, UsageRecord
from cfgateway.costs.reports import money
from cfgateway.dashboard import create_dashboard_app
from cfgateway.routing.gates import Gates
from cfgateway.routing.rollout import Rollout

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
MISSING = ("chromium is not installed: the dashboard's browser test needs Debian's chromium "
           "(apt-get install chromium; .ci/run and `make test` install it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CAND, BASE = "@cf/meta/llama-3.3-70b-instruct-fp8-fast", "openai/gpt-4o-mini"
HOSTILE = '<img src=x onerror="window.pwned=1">'
SIMS = [0.99, 0.97, 0.93, 0.96, 1.0, 0.95, 0.98]


def cost_text(records: list[UsageRecord]) -> str:
    """What the page must show for these records: priced spend, plus how many had no price."""
    unpriced = sum(r.cost is None and (r.outcome == "ok" or r.input_tokens > 0) for r in records)
    return "$" + money(sum((r.cost for r in records if r.cost), Decimal(0))) + (
        f" + {unpriced} unpriced" if unpriced else "")


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail(MISSING)
    return exe


def fill(led: SQLiteLedger) -> None:
    now = time.time()
    rows = [  # (days ago, model, provider, user, cost, outcome, latency)
        (0, BASE, "openai", "alice", "0.0125", "ok", 0.40), (0, BASE, "openai", "bob", "0.0200", "ok", 0.60),
        (1, CAND, "workers-ai", "alice", "0.0031", "ok", 0.90), (1, CAND, "workers-ai", HOSTILE, "0.0040", "ok", 1.1),
        (2, "anthropic/claude-sonnet-4-5", "anthropic", "carol", "0.0510", "ok", 1.5),
        (3, BASE, "openai", "bob", None, "ServerError", 0.2), (5, "@cf/unpriced/model", "workers-ai", "bob", None,
                                                               "ok", 0.3),
    ]
    for ago, model, provider, user, cost, outcome, lat in rows:
        led.add(UsageRecord(ts=now - ago * 86400, model=model, provider=provider, operation="chat", user=user,
                            input_tokens=100, output_tokens=20, cost=None if cost is None else Decimal(cost),
                            outcome=outcome, latency_s=lat, fallback=model == CAND, cache_status=None))
    Rollout(CAND, old_route=BASE, stages=[10, 50, 100], gates=Gates(min_samples=5), ledger=led,
            alerts=lambda e: None)
    for s in SIMS:
        led.add(UsageRecord(ts=time.time(), model=CAND, provider="workers-ai", operation="chat", outcome="shadow",
                            similarity=s, baseline=BASE, latency_s=0.5, baseline_latency_s=0.4,
                            cost=Decimal("0.0001"), baseline_cost=Decimal("0.0004")))
    Alerts(store=led).emit(AlertEvent("budget", "b|100", "budget 'daily global': spent $0.07 crossed the $0.05 alert"))


@pytest.fixture()
def browser_page(tmp_path: Path) -> Iterator[tuple[Any, list[str]]]:
    from playwright.sync_api import sync_playwright

    exe = chromium()
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=exe, headless=True,
                                                    args=FLAGS, viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        try:
            yield page, problems
        finally:
            ctx.close()


def test_the_page_shows_the_ledgers_figures(tmp_path: Path, browser_page: tuple[Any, list[str]]) -> None:
    page, problems = browser_page
    led = SQLiteLedger(tmp_path / "costs.db")
    fill(led)
    budgets = [Budget(limit=Decimal("0.10"), alerts=[Decimal("0.05"), Decimal("0.08")])]
    app = create_dashboard_app(SQLiteLedger(tmp_path / "costs.db"), budgets=budgets, refresh=2)
    records = led.records()
    answers = [r for r in records if r.outcome != "shadow"]
    with _webserver.serve(app) as url:
        page.goto(url + "/")
        assert page.inner_text("#total-spend") == "$" + money(sum((r.cost for r in records if r.cost), Decimal(0)))
        assert page.inner_text("#total-calls") == str(len(answers))
        assert page.inner_text("#total-tokens") == str(sum(r.input_tokens + r.output_tokens for r in answers))
        errors = sum(r.outcome != "ok" for r in answers)
        assert page.inner_text("#error-rate") == f"{100 * errors / len(answers):.1f} %"
        unpriced = sum(r.cost is None and (r.outcome == "ok" or r.input_tokens > 0) for r in records)
        assert page.inner_text("#unpriced") == str(unpriced) == "2"
        assert page.inner_text("#shadow-records") == str(len(SIMS))
        for model in {r.model for r in answers}:
            mine = [r for r in answers if r.model == model]
            row = page.locator(f'tr[data-model="{model}"]')
            assert row.locator(".calls").inner_text() == str(len(mine))
            assert row.locator(".cost").inner_text() == cost_text(mine)
        base_ok = sorted(r.latency_s for r in answers if r.model == BASE and r.outcome == "ok")
        assert page.locator(f'tr[data-model="{BASE}"] .p50').inner_text() == f"{(base_ok[0] + base_ok[1]) / 2:.3f} s"
        bob = [r for r in answers if r.user == "bob"]
        assert page.locator('tr[data-user="bob"] .cost').inner_text() == cost_text(bob) == "$0.02 + 2 unpriced"
        # the hostile user id is shown as text, never run as HTML
        shown = page.evaluate("u => [...document.querySelectorAll('tr[data-user]')].filter(t => t.dataset.user === u)"
                              ".map(t => t.cells[0].textContent)", HOSTILE)
        assert shown == [HOSTILE]
        assert page.evaluate("window.pwned") is None and page.locator("#users img").count() == 0
        rollout = page.locator(f'div[data-rollout="{CAND}"]')
        text = rollout.inner_text()
        assert "10 % of users" in text and f"{math.fsum(SIMS) / len(SIMS):.4f}" in text
        assert rollout.locator(".verdict").inner_text().startswith("advance: gates pass: 7 samples")
        assert page.locator("#spend .budget-line").count() == 3
        assert "crossed the $0.05 alert" in page.inner_text("#alerts")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"\ndashboard screenshot: {shot}")
        # it refreshes itself: a record added now shows up after the next automatic reload
        led.add(UsageRecord(ts=time.time(), model=BASE, provider="openai", operation="chat", user="dave",
                            cost=Decimal("0.001")))
        with page.expect_navigation(timeout=15_000):
            pass
        assert page.inner_text("#total-calls") == str(len(answers) + 1)
    assert problems == []


def test_the_page_needs_its_key(tmp_path: Path, browser_page: tuple[Any, list[str]]) -> None:
    page, _ = browser_page
    app = create_dashboard_app(SQLiteLedger(tmp_path / "costs.db"), api_keys=["s3cret-key"])
    with _webserver.serve(app) as url:
        assert page.request.get(url + "/").status == 401  # (a browser would prompt for Basic credentials)
        page.context.set_extra_http_headers({"authorization": "Bearer s3cret-key"})
        resp = page.goto(url + "/")
        assert resp.status == 200 and page.inner_text("#total-calls") == "0"
