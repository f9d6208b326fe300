"""`cfgateway rollout status|report|advance|rollback` on a rollout an app keeps in a SQLite ledger."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cfgateway.cli import main
from cfgateway.costs.alerts import recent_alerts
from cfgateway.costs.ledger import UsageRecord, open_ledger
from cfgateway.routing.gates import Gates
from cfgateway.routing.rollout import Rollout

NEW = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
OLD = "openai/gpt-4o-mini"


def webhook() -> tuple[ThreadingHTTPServer, list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def test_rollout_commands(cf_clean_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    assert main(["rollout", "status", "--ledger", url]) == 1
    assert "holds no rollout yet" in capsys.readouterr().err
    led = open_ledger(url)
    Rollout(NEW, old_route=OLD, stages=[10, 50, 100], gates=Gates(min_samples=3), ledger=led, alerts=lambda e: None)
    for sim in (0.99, 0.97, 0.96):
        led.add(UsageRecord(ts=time.time(), model=NEW, provider="workers-ai", operation="chat", outcome="shadow",
                            similarity=sim, baseline=OLD, latency_s=0.3, baseline_latency_s=0.3))
    assert main(["rollout", "status", "--ledger", url]) == 0
    assert f"rollout of {NEW}: 10 % of users on it" in capsys.readouterr().out

    assert main(["rollout", "report", "--ledger", url]) == 0
    out = capsys.readouterr().out
    assert "0.973" in out and "verdict: advance — gates pass: 3 samples" in out

    server, got = webhook()
    monkeypatch.setenv("CFGATEWAY_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_address[1]}/hook")
    try:
        assert main(["rollout", "advance", "--ledger", url, "--reason", "report looks good"]) == 0
        assert "50 % of users on it" in capsys.readouterr().out
        assert main(["rollout", "rollback", "--ledger", url, "--json"]) == 0
        state = json.loads(capsys.readouterr().out)
        assert state["percent"] == 0 and state["status"] == "rolled_back"
    finally:
        server.shutdown()
        server.server_close()
    assert [g["fields"]["action"] for g in got] == ["advance", "rollback"]
    assert got[0]["text"].endswith("advanced from 10 % to 50 % of users (by cli: report looks good)")
    assert [a["fields"]["to"] for a in recent_alerts(led)] == [0.0, 50.0]

    assert main(["rollout", "rollback", "--ledger", url]) == 1
    assert "already rolled back" in capsys.readouterr().err
    assert main(["rollout", "report", "--ledger", url, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [s["percent"] for s in rep["stages"]] == [10, 50, 0] and rep["verdict"]["action"] == "hold"
    assert main(["rollout", "status", "--ledger", url, "--name", "nope"]) == 1
    assert "no rollout named 'nope'" in capsys.readouterr().err
