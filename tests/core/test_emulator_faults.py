"""Emulator fault kinds, the request log, the HTTP control endpoints, the server and the pytest fixtures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _emu import emulator_fixtures

from cfgateway.emulator import EmulatorConfig, EmulatorServer, Fault

ACCT = "acct"
LEGACY = "@cf/meta/llama-3.1-8b-instruct"
OPENAI_SHAPE = "@cf/qwen/qwen3-30b-a3b-fp8"
RUN = f"/client/v4/accounts/{ACCT}/ai/run/"
AUTH = {"Authorization": "Bearer tok"}


server, emu = emulator_fixtures()


@pytest.fixture()
def http(emu: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, headers=AUTH, timeout=5) as c:
        yield c


def run(http: httpx.Client, model: str = LEGACY, **body: Any) -> httpx.Response:
    return http.post(RUN + model, json={"prompt": "hello there world", **body})


def openai(http: httpx.Client, **body: Any) -> httpx.Response:
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there world"}], **body}
    return http.post(f"/v1/{ACCT}/gw/openai/chat/completions", json=payload)


def data_lines(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


# -- fault kinds -----------------------------------------------------------------------------------------
def test_error_fault_in_each_route_format(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*/ai/run/*", "error", status=429, code=3040, retry_after=2, times=1))
    r = run(http)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json() == {"errors": [{"message": "Capacity temporarily exceeded, please try again.", "code": 3040}],
                        "success": False, "result": {}, "messages": []}
    assert run(http).status_code == 200  # times=1 used up
    emu.state.add_fault(Fault("*/openai/chat/completions", "error", status=429, times=1))
    o = openai(http)
    assert o.status_code == 429 and o.json()["error"]["code"] == "rate_limit_exceeded"
    emu.state.add_fault(Fault("*/openai/chat/completions", "error", status=402, code=2021, message="No credits", times=1))
    g = openai(http)
    assert g.json()["error"] == [{"code": 2021, "message": "No credits"}] and g.json()["name"] == "AiGatewayError"
    emu.state.add_fault(Fault("*/anthropic/*", "error", status=529, message="Overloaded", times=1))
    a = http.post(f"/v1/{ACCT}/gw/anthropic/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 5,
                                                                "messages": [{"role": "user", "content": "x"}]})
    assert a.status_code == 529 and a.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_html_and_malformed(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*", "html", times=1))
    h = run(http)
    assert h.status_code == 502 and h.headers["content-type"].startswith("text/html") and "<html>" in h.text
    emu.state.add_fault(Fault("*", "malformed", times=1))
    m = run(http)
    assert m.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        m.json()
    emu.state.add_fault(Fault("*", "malformed", times=1))
    s = run(http, stream=True)
    with pytest.raises(json.JSONDecodeError):
        json.loads(data_lines(s.text)[0])


def test_delay_before_first_byte(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*", "delay", delay_s=0.3, times=1))
    start = time.monotonic()
    assert run(http).status_code == 200 and time.monotonic() - start >= 0.3
    emu.state.add_fault(Fault("*", "delay", delay_s=1.0, times=1))
    with pytest.raises(httpx.ReadTimeout):  # nothing at all arrives before the delay, not even headers
        http.post(RUN + LEGACY, json={"prompt": "x", "stream": True}, timeout=0.2)


@pytest.mark.parametrize("stream", [False, True])
def test_drop_body_is_a_protocol_error_not_a_hang(http: httpx.Client, emu: EmulatorServer, stream: bool) -> None:
    emu.state.add_fault(Fault("*", "drop_body", times=1))
    start = time.monotonic()
    if stream:  # drop_body applies to JSON answers only: a stream passes untouched, the fault waits
        assert data_lines(run(http, stream=True).text)[-1] == "[DONE]"
        with pytest.raises(httpx.RemoteProtocolError):
            run(http)
    else:
        with pytest.raises(httpx.RemoteProtocolError):
            run(http)

        async def again() -> None:
            emu.state.add_fault(Fault("*", "drop_body", times=1))
            async with httpx.AsyncClient(base_url=http.base_url, headers=AUTH, timeout=5) as client:
                await client.post(RUN + LEGACY, json={"prompt": "x"})

        with pytest.raises(httpx.RemoteProtocolError):
            asyncio.run(again())
    assert time.monotonic() - start < 2
    assert run(http).status_code == 200  # the server is fine afterwards


@pytest.mark.parametrize(("model", "after"), [(LEGACY, 1), (LEGACY, 3), (OPENAI_SHAPE, 2)])
def test_drop_stream_stops_before_the_terminator(http: httpx.Client, emu: EmulatorServer, model: str, after: int) -> None:
    emu.state.add_fault(Fault("*", "drop_stream", after_chunks=after, times=1))
    lines = data_lines(run(http, model, stream=True).text)
    assert len(lines) == after and "[DONE]" not in lines and all(json.loads(x) for x in lines)
    assert run(http).status_code == 200  # stream-only faults never touch JSON answers
    assert emu.state.faults[0].times == 0


def test_stream_error_events(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*/ai/run/*", "stream_error", code=3040, message="Capacity", after_chunks=2, times=1))
    lines = data_lines(run(http, stream=True).text)
    assert len(lines) == 3 and json.loads(lines[-1]) == {"errors": [{"code": 3040, "message": "Capacity"}]}
    emu.state.add_fault(Fault("*/openai/*", "stream_error", status=500, message="boom", times=1))
    o = data_lines(openai(http, stream=True).text)
    assert len(o) == 2 and json.loads(o[-1]) == {"error": {"message": "boom", "type": "server_error", "code": None}}
    emu.state.add_fault(Fault("*/anthropic/*", "stream_error", status=529, message="busy", times=1))
    a = http.post(f"/v1/{ACCT}/gw/anthropic/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 5,
                  "stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert "event: error" in a.text and "message_stop" not in a.text


def test_fault_path_glob_and_forever(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*/openai/chat/completions", "error", status=500))
    assert run(http).status_code == 200  # other paths untouched
    assert openai(http).status_code == 500 and openai(http).status_code == 500  # times=None: forever
    emu.state.clear_faults()
    assert openai(http).status_code == 200
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("*", "explode")


# -- request log and control endpoints -------------------------------------------------------------------------
def test_request_log_records_and_masks(http: httpx.Client, emu: EmulatorServer) -> None:
    http.post(RUN + LEGACY + "?x=1", json={"prompt": "hi"}, headers={"X-Custom": "V", "Authorization": "Bearer s3cret"})
    run(http, "@cf/no/model")
    first, second = emu.state.requests
    assert (first.method, first.path, first.query, first.json, first.status) == (
        "POST", RUN + LEGACY, {"x": "1"}, {"prompt": "hi"}, 200)
    assert first.headers["x-custom"] == "V" and first.headers["authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(first) and "Bearer ****" in repr(first)
    assert second.status == 400 and first.time <= second.time
    emu.state.clear_requests()
    assert emu.state.requests == []


def test_http_control_endpoints(http: httpx.Client, emu: EmulatorServer) -> None:
    added = http.post("/__emulator/faults", json={"path": "*/ai/run/*", "kind": "error", "status": 503, "times": 1})
    assert added.status_code == 200 and added.json()["added"][0]["status"] == 503
    assert http.get("/__emulator/faults").json()[0]["kind"] == "error"
    assert run(http).status_code == 503
    assert http.post("/__emulator/faults", json={"kind": "nope"}).status_code == 400
    assert http.post("/__emulator/faults", json={"bogus": 1}).status_code == 400
    http.post("/__emulator/faults", json=[{"kind": "html"}, {"kind": "delay", "delay_s": 0.01}])
    assert len(emu.state.faults) == 3
    assert http.delete("/__emulator/faults").status_code == 200 and emu.state.faults == []
    logged = http.get("/__emulator/requests").json()
    assert [r["status"] for r in logged] == [503] and logged[0]["headers"]["authorization"] == "Bearer ****"
    assert all(not r["path"].startswith("/__emulator") for r in logged)  # control calls are not logged
    assert http.delete("/__emulator/requests").status_code == 200 and emu.state.requests == []
    emu.state.add_fault(Fault("*", "html"))
    assert http.post("/__emulator/reset").json() == {"reset": True} and emu.state.faults == []


# -- server ---------------------------------------------------------------------------------------------------
def test_server_refuses_non_loopback_hosts() -> None:
    for host in ("0.0.0.0", "10.0.0.1", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            EmulatorServer(host=host)
    for host in ("localhost", "127.0.0.2", "::1"):
        assert EmulatorServer(host=host).host == host  # accepted (not started)
    assert EmulatorServer(host="::1").url.startswith("http://[::1]:")


def test_server_urls_start_stop_and_stream_delay() -> None:
    s = EmulatorServer(EmulatorConfig(stream_delay_s=0.02))
    s.start()
    try:
        assert s.base_url == f"{s.url}/client/v4" and s.gateway_base_url == f"{s.url}/v1" and s.port > 0
        start = time.monotonic()
        r = httpx.post(f"{s.base_url}/accounts/a/ai/run/{LEGACY}", json={"prompt": "a b c d", "stream": True},
                       headers=AUTH)
        assert data_lines(r.text)[-1] == "[DONE]" and time.monotonic() - start >= 0.02 * 6
    finally:
        s.stop()
    assert not s.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{s.url}/__emulator/health", timeout=1)


def test_pytest_fixtures_reset_state(cf_emulator: EmulatorServer, cf_emulator_server: EmulatorServer) -> None:
    """The plugin's fixtures (the pytest11 entry point registers them)."""
    assert cf_emulator is cf_emulator_server and cf_emulator.state.requests == []
    cf_emulator.state.add_fault(Fault("*", "html"))
    r = httpx.post(f"{cf_emulator.base_url}/accounts/a/ai/run/{LEGACY}", json={"prompt": "x"}, headers=AUTH)
    assert r.status_code == 502
