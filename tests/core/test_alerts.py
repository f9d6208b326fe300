"""Alerts reaching people: a webhook against a real local HTTP server (retries, backoff, refusals, a dead
host, never blocking the caller), budget and breaker alerts, dedupe across ledgers sharing a store."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import _redis
import pytest

from cfgateway.config import load_settings
from cfgateway.costs.alerts import (
    AlertEvent,
    Alerts,
    StoreSink,
    WebhookSink,
    alerts_from_settings,
    log_sink,
    recent_alerts,
)
from cfgateway.costs.budget import Budget, CostTracker
from cfgateway.costs.ledger import SQLiteLedger, UsageRecord
from cfgateway.errors import ConfigError


class Hook:
    """A webhook receiver on 127.0.0.1: answers ``plan`` statuses in turn (then 200), keeps the bodies."""

    def __init__(self, plan: list[int] | None = None, gate: threading.Event | None = None) -> None:
        self.plan = list(plan or [])
        self.gate = gate
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.arrived = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                hook.arrived.set()
                if hook.gate is not None:
                    hook.gate.wait(30)
                body = self.rfile.read(int(self.headers["content-length"]))
                status = hook.plan.pop(0) if hook.plan else 200
                hook.statuses.append(status)
                if status == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(status)
                if status == 429:
                    self.send_header("retry-after", "0")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def event(msg: str = "budget 'daily global': spent $120 crossed the $100 alert") -> AlertEvent:
    return AlertEvent("budget", "daily global|100", msg, {"spent": Decimal("120.5"), "threshold": Decimal(100)})


def test_webhook_posts_slack_compatible_json(hook: Hook) -> None:
    sink = WebhookSink(hook.url, backoff=0.01)
    sink(event())
    assert sink.flush(10)
    (body,) = hook.bodies
    assert body["text"] == event().message and body["kind"] == "budget" and body["key"] == "daily global|100"
    assert body["fields"] == {"spent": "120.5", "threshold": "100"} and isinstance(body["ts"], float)
    assert (sink.delivered, sink.failed, sink.attempts) == (1, 0, 1)
    sink.close()


def test_webhook_retries_5xx_and_429_with_backoff() -> None:
    h = Hook(plan=[503, 500, 429])
    try:
        sink = WebhookSink(h.url, retries=3, backoff=0.01)
        sink(event())
        assert sink.flush(10)
        assert h.statuses == [503, 500, 429, 200] and len(h.bodies) == 1
        assert (sink.delivered, sink.failed, sink.attempts) == (1, 0, 4)
        sink.close()
    finally:
        h.close()


def test_webhook_gives_up_after_its_retries_and_on_4xx(caplog: pytest.LogCaptureFixture) -> None:
    h = Hook(plan=[500, 500, 500, 404])
    try:
        sink = WebhookSink(h.url, retries=2, backoff=0.01)
        sink(event("first"))
        sink(event("second"))  # answered 404: refused, not retried
        assert sink.flush(10)
        assert h.statuses == [500, 500, 500, 404] and h.bodies == []
        assert (sink.delivered, sink.failed, sink.attempts) == (0, 2, 4)
        assert "failed after 3 attempt(s)" in caplog.text and "failed after 1 attempt(s)" in caplog.text
        assert "secret-token" not in caplog.text and "127.0.0.1" in caplog.text  # the host, never the path
        sink.close()
    finally:
        h.close()


def test_webhook_to_a_dead_host_retries_then_logs(caplog: pytest.LogCaptureFixture) -> None:
    h = Hook()
    url = h.url
    h.close()  # nothing listens there now
    sink = WebhookSink(url, retries=2, backoff=0.01, timeout=2)
    sink(event())
    assert sink.flush(20)
    assert (sink.delivered, sink.failed, sink.attempts) == (0, 1, 3)
    assert "ConnectionError" in caplog.text and "secret-token" not in caplog.text
    assert "secret-token" not in repr(sink)


def test_a_slow_webhook_never_blocks_the_caller() -> None:
    gate = threading.Event()
    h = Hook(gate=gate)
    try:
        sink = WebhookSink(h.url)
        sink(event())  # returns while the server is still holding the first request
        assert h.arrived.wait(10)
        sink(event("second"))
        assert h.bodies == []  # nothing answered yet, and both calls have returned
        gate.set()
        assert sink.flush(10) and len(h.bodies) == 2
        sink.close()
    finally:
        gate.set()
        h.close()


def test_webhook_url_and_options_are_checked() -> None:
    for bad in ("ftp://host/x", "not a url", "https://", "http://host/a b"):
        with pytest.raises(ConfigError, match="alert_webhook"):
            WebhookSink(bad)
    with pytest.raises(ConfigError, match="retries"):
        WebhookSink("https://example.invalid/x", retries=-1)


def test_budget_alerts_reach_the_webhook_once_per_threshold(hook: Hook, tmp_path: Path) -> None:
    led = SQLiteLedger(tmp_path / "l.db")
    sink = WebhookSink(hook.url, backoff=0.01)
    alerts = Alerts([sink], store=led)
    tracker = CostTracker(led, [Budget(limit=Decimal(500), alerts=[Decimal(100), Decimal(300)])],
                          on_alert=alerts.budget_hook())
    other = CostTracker(SQLiteLedger(tmp_path / "l.db"), [Budget(limit=Decimal(500), alerts=[Decimal(100)])],
                        on_alert=Alerts([sink], store=led).budget_hook())  # a second process's tracker
    for t, cost in ((tracker, "60"), (tracker, "60"), (other, "1"), (tracker, "200")):
        t.record(UsageRecord(ts=time.time(), model="openai/gpt-4o", provider="openai", operation="chat", cost=Decimal(cost)))
    assert sink.flush(10)
    assert [b["fields"]["threshold"] for b in hook.bodies] == ["100", "300"]
    assert "crossed the $100 alert" in hook.bodies[0]["text"] and hook.bodies[0]["fields"]["limit"] == "500"
    kept = recent_alerts(led)
    assert [a["fields"]["threshold"] for a in kept] == ["300", "100"]  # newest first, for the dashboard
    sink.close()


def test_breaker_openings_alert_once_per_window_across_processes(tmp_path: Path) -> None:
    got: list[AlertEvent] = []
    a = Alerts([got.append], store=SQLiteLedger(tmp_path / "l.db"))
    b = Alerts([got.append], store=SQLiteLedger(tmp_path / "l.db"))
    assert a.breaker_opened("openai/gpt-4o-mini", window=3600, failures=3, cooldown=30) is True
    assert b.breaker_opened("openai/gpt-4o-mini", window=3600, failures=3, cooldown=30) is False
    b.on_breaker_change("@cf/meta/llama-3.1-8b-instruct", "closed", "open", cooldown=30)
    b.on_breaker_change("@cf/meta/llama-3.1-8b-instruct", "open", "half_open")
    assert [e.key for e in got] == ["openai/gpt-4o-mini", "@cf/meta/llama-3.1-8b-instruct"]
    assert got[0].message == "circuit breaker opened for route openai/gpt-4o-mini; calls skip it for 30 s"
    assert got[0].fields == {"route": "openai/gpt-4o-mini", "failures": 3, "cooldown": 30}


def test_a_failing_sink_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    got: list[AlertEvent] = []

    def broken(e: AlertEvent) -> None:
        raise RuntimeError("sink down")

    Alerts([broken, got.append]).emit(event())
    assert len(got) == 1 and "sink down" in caplog.text


def test_log_sink_and_bad_kind(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cfgateway.alerts"):
        log_sink(event("hello"))
    assert "[budget] hello" in caplog.text
    with pytest.raises(ValueError, match="kind"):
        AlertEvent("weather", "k", "m")


def test_sinks_from_a_profile(tmp_path: Path, hook: Hook) -> None:
    cfg = tmp_path / "cfgateway.toml"
    cfg.write_text(f'[profiles.prod]\nalert_webhook = "{hook.url}"\nalert_sinks = ["log", "webhook"]\n')
    s = load_settings(config_path=cfg, profile="prod", env={})
    assert "secret-token" not in repr(s)
    alerts = alerts_from_settings(s, store=SQLiteLedger(tmp_path / "l.db"))
    assert alerts.sinks[0] is log_sink and isinstance(alerts.sinks[1], WebhookSink)
    assert isinstance(alerts.sinks[2], StoreSink)
    alerts.emit(event())
    assert alerts.sinks[1].flush(10) and len(hook.bodies) == 1
    env = load_settings(env={"CFGATEWAY_ALERT_WEBHOOK": hook.url})
    assert [type(x).__name__ for x in alerts_from_settings(env).sinks] == ["function", "WebhookSink"]
    with pytest.raises(ConfigError, match="unknown alert sink 'email'"):
        alerts_from_settings(load_settings(env={"CFGATEWAY_ALERT_SINKS": "log,email"}))
    with pytest.raises(ConfigError, match="alert_webhook"):
        alerts_from_settings(load_settings(env={"CFGATEWAY_ALERT_SINKS": "webhook"}))


def test_recent_alerts_on_redis_keep_every_writer() -> None:
    import shutil

    if shutil.which("redis-server") is None:
        pytest.fail(_redis.MISSING)
    from cfgateway.costs.ledger import RedisLedger

    with _redis.redis_server() as url:
        led = RedisLedger(url)
        sinks = [StoreSink(RedisLedger(url), keep=100) for _ in range(4)]
        threads = [threading.Thread(target=lambda s=s, i=i: [s(event(f"{i}-{n}")) for n in range(10)])
                   for i, s in enumerate(sinks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(recent_alerts(led)) == 40
