"""Issue 10 item 8: bodies Python's json module reads but no JSON peer can (a lone surrogate, NaN, Infinity).

Every route answers them with a 400 in its own error format (never a 500 with a traceback), and the request
log and the ``/__emulator`` endpoints keep working after such a body was logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cfgateway.emulator import EmulatorServer

ACCT = "acct"
AUTH = {"Authorization": "Bearer tok", "content-type": "application/json"}
SURROGATE = b'{"model":"m","messages":[{"role":"user","content":"a\\ud800b"}],"input":"x\\udfff"}'

# path -> how its error body looks
ROUTES: dict[str, str] = {
    f"/client/v4/accounts/{ACCT}/ai/run/@cf/meta/llama-3.1-8b-instruct": "cloudflare",
    f"/client/v4/accounts/{ACCT}/ai/run/@cf/baai/bge-base-en-v1.5": "cloudflare",
    f"/client/v4/accounts/{ACCT}/ai/v1/chat/completions": "cloudflare",
    f"/client/v4/accounts/{ACCT}/ai/v1/embeddings": "cloudflare",
    f"/v1/{ACCT}/gw/openai/chat/completions": "openai",
    f"/v1/{ACCT}/gw/openai/embeddings": "openai",
    f"/v1/{ACCT}/gw/compat/chat/completions": "openai",
    f"/v1/{ACCT}/gw/anthropic/v1/messages": "anthropic",
    f"/v1/{ACCT}/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct": "cloudflare",
    f"/v1/{ACCT}/gw": "gateway",
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as s:
        yield s


@pytest.fixture()
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    server.state.clear()
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=5) as c:
        yield c


def error_text(family: str, body: Any) -> str:
    """The error message of a body in ``family``'s format (fails when the body has another shape)."""
    if family == "cloudflare":
        assert body["success"] is False and isinstance(body["errors"][0]["code"], int)
        return str(body["errors"][0]["message"])
    if family == "openai":
        return str(body["error"]["message"])
    if family == "anthropic":
        assert body["type"] == "error"
        return str(body["error"]["message"])
    assert body["name"] == "AiGatewayError"
    return str(body["error"][0]["message"])


@pytest.mark.parametrize("path", list(ROUTES))
def test_a_lone_surrogate_is_a_400_in_the_routes_own_format(http: httpx.Client, path: str) -> None:
    r = http.post(path, content=SURROGATE)
    assert r.status_code == 400, r.text
    text = error_text(ROUTES[path], r.json())
    if ROUTES[path] != "openai":  # OpenAI's own text for an unreadable body is generic
        assert "surrogate" in text and "UTF-8" in text


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
@pytest.mark.parametrize("path", list(ROUTES))
def test_nan_and_infinity_are_not_json(http: httpx.Client, path: str, constant: bytes) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":' + constant + b"}"
    r = http.post(path, content=body)
    assert r.status_code == 400, r.text
    text = error_text(ROUTES[path], r.json())
    if ROUTES[path] != "openai":
        assert constant.decode().lstrip("-") in text


def test_the_request_log_survives_nan_and_surrogates(http: httpx.Client, server: EmulatorServer) -> None:
    run = f"/client/v4/accounts/{ACCT}/ai/run/@cf/meta/llama-3.1-8b-instruct"
    http.post(run, content=b'{"messages":[{"role":"user","content":"hi"}],"temperature":NaN,"top_p":-Infinity}')
    http.post(run, content=SURROGATE)
    http.post(run, json={"messages": [{"role": "user", "content": "still fine"}]})
    log = http.get("/__emulator/requests")
    assert log.status_code == 200
    entries = json.loads(log.content)  # strict JSON: a NaN token would not even reach here as valid output
    assert "NaN" not in log.text.replace('"NaN"', "")
    assert [e["status"] for e in entries] == [400, 400, 200]
    assert entries[0]["json"]["temperature"] == "NaN" and entries[0]["json"]["top_p"] == "-Infinity"
    assert entries[1]["json"]["messages"][0]["content"] == "a\\ud800b"  # shown escaped, not dropped
    assert entries[2]["json"]["messages"][0]["content"] == "still fine"
    # in-process the log keeps what Python parsed
    assert server.state.requests[0].json["temperature"] != server.state.requests[0].json["temperature"]  # NaN
    assert http.get("/__emulator/health").json() == {"ok": True}


def test_faults_endpoint_refuses_non_finite_numbers(http: httpx.Client) -> None:
    r = http.post("/__emulator/faults", content=b'{"path":"*","kind":"error","status":500,"delay_s":NaN}')
    assert r.status_code == 400 and "NaN" in r.json()["error"]
    listed = http.get("/__emulator/faults")
    assert listed.status_code == 200 and listed.json() == []
