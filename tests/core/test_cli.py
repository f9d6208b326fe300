"""The `cfgateway` command line: models, costs, chat, emulate."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from cfgateway.cli import main
from cfgateway.costs.ledger import UsageRecord, open_ledger


def test_models_lists_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--kind", "embed"]) == 0
    out = capsys.readouterr().out
    assert "@cf/baai/bge-base-en-v1.5" in out and "0.067" in out and "@cf/meta/llama" not in out
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["model"] == "@cf/meta/llama-3.3-70b-instruct-fp8-fast")
    assert row["input_per_m"] == "0.293" and row["output_per_m"] == "2.253" and row["as_of"]
    unpriced = next(r for r in rows if r["model"] == "@cf/meta/llama-3.1-8b-instruct-fast")
    assert unpriced["input_per_m"] == "-"


def test_costs_reports_from_a_sqlite_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    ledger = open_ledger(url)
    now = time.time()
    for i in range(3):
        ledger.add(UsageRecord(ts=now, model="@cf/meta/llama-3.1-8b-instruct", provider="workers-ai", operation="chat",
                               input_tokens=100, output_tokens=10, cost=Decimal("0.001"), user=f"u{i % 2}"))
    ledger.close()
    assert main(["costs", "--ledger", url, "--format", "json"]) == 0
    text = capsys.readouterr().out
    assert "0.003" in text and "workers-ai" in text
    assert main(["costs", "--ledger", url, "--format", "csv"]) == 0
    assert "@cf/meta/llama-3.1-8b-instruct" in capsys.readouterr().out


def test_costs_without_a_ledger_names_the_fix(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    monkeypatch.delenv("CFGATEWAY_LEDGER", raising=False)
    assert main(["costs"]) == 2
    assert "CFGATEWAY_LEDGER" in capsys.readouterr().err


def test_chat_streams_with_usage_line(cf_emulator: Any, monkeypatch: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in {"CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": "t",
                 "CLOUDFLARE_API_BASE_URL": cf_emulator.base_url}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("CLOUDFLARE_AI_GATEWAY_ID", raising=False)
    assert main(["chat", "@cf/meta/llama-3.1-8b-instruct", "hello there"]) == 0
    cap = capsys.readouterr()
    assert "hello there" in cap.out and "in /" in cap.err and "$" in cap.err


def test_chat_config_error_is_a_clean_message(monkeypatch: Any, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    assert main(["chat", "@cf/meta/llama-3.1-8b-instruct", "hi"]) == 1
    assert "CLOUDFLARE_API_TOKEN" in capsys.readouterr().err


def test_emulate_serves_on_the_given_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "cfgateway", "emulate", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/client/v4/accounts/a/ai/run/@cf/meta/llama-3.1-8b-instruct",
                               json={"prompt": "hi"}, headers={"Authorization": "Bearer t"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["success"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_emulate_refuses_non_loopback_hosts() -> None:
    out = subprocess.run([sys.executable, "-m", "cfgateway", "emulate", "--host", "0.0.0.0"], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode != 0 and "loopback" in (out.stderr + out.stdout).lower()


def test_client_kwargs_point_a_client_at_the_emulator(cf_emulator: Any, cf_clean_env: None) -> None:
    import os

    from cfgateway import ChatRequest, Client, Message

    assert not any(k.startswith("CLOUDFLARE_") for k in os.environ)
    kw = cf_emulator.client_kwargs(gateway=True)
    assert kw["gateway_id"] == "gw" and kw["base_url"] == cf_emulator.base_url
    r = Client("@cf/meta/llama-3.1-8b-instruct", **kw).chat(ChatRequest([Message("user", "hi")]))
    assert r.text and "/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct" in cf_emulator.state.requests[0].path


def _spend_ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'plot.db'}"
    ledger = open_ledger(url)
    for day in range(3):
        ledger.add(UsageRecord(ts=time.time() - day * 86400, model="openai/gpt-4o-mini", provider="openai",
                               operation="chat", cost=Decimal("120")))
    ledger.close()
    return url


def test_costs_plot_draws_budget_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import matplotlib.axes

    drawn: list[tuple[float, str]] = []
    real = matplotlib.axes.Axes.axhline

    def spy(self: Any, y: float = 0, *args: Any, **kw: Any) -> Any:
        drawn.append((y, kw.get("label")))
        return real(self, y, *args, **kw)

    url, png = _spend_ledger(tmp_path), tmp_path / "costs.png"
    matplotlib.axes.Axes.axhline = spy  # type: ignore[method-assign]
    try:
        assert main(["costs", "--ledger", url, "--plot", str(png), "--budget-limit", "500",
                     "--budget-alerts", "100,300"]) == 0
    finally:
        matplotlib.axes.Axes.axhline = real  # type: ignore[method-assign]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert drawn == [(500.0, "daily global limit $500.00"), (100.0, "daily global alert $100.00"),
                     (300.0, "daily global alert $300.00")]
    assert f"wrote {png}" in capsys.readouterr().err


def test_costs_plot_without_matplotlib_names_the_extra(tmp_path: Path) -> None:
    url = _spend_ledger(tmp_path)
    code = ("import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.figure'] = None\n"
            "from cfgateway.cli import main; raise SystemExit(main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", code, "costs", "--ledger", url, "--plot", str(tmp_path / "c.png")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "pip install 'cfgateway[plot]'" in out.stderr and "360" in out.stdout  # the table still printed
