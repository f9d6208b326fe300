"""Emulator auth (Workers AI and gateway), gateway headers, cache, provider keys and the Universal Endpoint."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _emu import emulator_fixtures

from cfgateway.emulator import EmulatorConfig, EmulatorServer, Fault, GatewayConfig

ACCT = "acct"
TOKEN = "api-token"
GW_TOKEN = "gw-secret"
LEGACY = "@cf/meta/llama-3.1-8b-instruct"
MSGS = [{"role": "user", "content": "Tell me about Paris"}]
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


server, emu = emulator_fixtures(EmulatorConfig(api_token=TOKEN, account_id=ACCT, gateways={"secure": GatewayConfig(auth_token=GW_TOKEN)}))


@pytest.fixture()
def http(emu: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, timeout=5) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def openai_body(**kw: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": MSGS, **kw}


# -- Workers AI auth -----------------------------------------------------------------------------------
def test_workers_ai_auth_errors(http: httpx.Client) -> None:
    url = f"/client/v4/accounts/{ACCT}/ai/run/{LEGACY}"
    missing = http.post(url, json={"prompt": "x"})
    assert missing.status_code == 400
    assert missing.json() == {"errors": [{"message": "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
                                          "code": 9106}], "success": False, "result": None, "messages": []}
    wrong = http.post(url, json={"prompt": "x"}, headers=bearer("nope"))
    assert wrong.status_code == 401 and wrong.json()["errors"] == [{"message": "Authentication error", "code": 10000}]
    other = http.post(f"/client/v4/accounts/other/ai/run/{LEGACY}", json={"prompt": "x"}, headers=bearer(TOKEN))
    assert other.status_code == 404 and other.json()["errors"][0]["code"] == 7003 and other.json()["result"] is None
    assert f"/client/v4/accounts/other/ai/run/{LEGACY}" in other.json()["errors"][0]["message"]
    assert http.post(url, json={"prompt": "x"}, headers=bearer(TOKEN)).status_code == 200


def test_any_token_accepted_when_unconfigured() -> None:
    with EmulatorServer() as s:
        r = httpx.post(f"{s.base_url}/accounts/whatever/ai/run/{LEGACY}", json={"prompt": "x"}, headers=bearer("t"))
        assert r.status_code == 200


# -- gateway auth, headers, auto-create ------------------------------------------------------------------
def test_authenticated_gateway_requires_cf_aig_authorization(http: httpx.Client) -> None:
    url = f"/v1/{ACCT}/secure/openai/chat/completions"
    denied = http.post(url, json=openai_body())
    assert denied.status_code == 401
    assert denied.json() == {"success": False, "result": [], "messages": [],
                             "error": [{"code": 2009, "message": "Unauthorized"}],
                             "name": "AiGatewayError", "httpCode": 401, "internalCode": 2009}
    wrong = http.post(url, json=openai_body(), headers={"cf-aig-authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = http.post(url, json=openai_body(), headers={"cf-aig-authorization": f"Bearer {GW_TOKEN}"})
    assert ok.status_code == 200  # stored keys (BYOK): no provider key needed


def test_gateway_response_headers(http: httpx.Client) -> None:
    r = http.post(f"/v1/{ACCT}/gw/openai/chat/completions", json=openai_body(), headers=bearer("sk"))
    log_id = r.headers["cf-aig-log-id"]
    assert UUID7.match(log_id) and r.headers["cf-aig-request-id"] == log_id and r.headers["cf-aig-event-id"] == log_id
    assert "cf-aig-cache-status" not in r.headers
    echoed = http.post(f"/v1/{ACCT}/gw/openai/chat/completions", json=openai_body(),
                       headers={**bearer("sk"), "cf-aig-event-id": "evt-1"})
    assert echoed.headers["cf-aig-event-id"] == "evt-1" and echoed.headers["cf-aig-log-id"] != log_id


def test_unknown_gateway_auto_created_unless_disabled(http: httpx.Client, emu: EmulatorServer) -> None:
    assert http.post(f"/v1/{ACCT}/brand-new/openai/chat/completions", json=openai_body(), headers=bearer("k")).is_success
    assert "brand-new" in emu.state.gateways
    with EmulatorServer(EmulatorConfig(auto_create_gateways=False)) as strict:
        r = httpx.post(f"{strict.gateway_base_url}/a/ghost/openai/chat/completions", json=openai_body(),
                       headers=bearer("k"))
        assert r.status_code == 400 and r.json()["error"][0]["code"] == 2001


def test_unauthenticated_gateway_needs_provider_keys(http: httpx.Client) -> None:
    r = http.post(f"/v1/{ACCT}/gw/openai/chat/completions", json=openai_body())
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    a = http.post(f"/v1/{ACCT}/gw/anthropic/v1/messages",
                  json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": MSGS})
    assert a.status_code == 401 and a.json()["error"]["type"] == "authentication_error"
    w = http.post(f"/v1/{ACCT}/gw/workers-ai/{LEGACY}", json={"prompt": "x"})
    assert w.status_code == 401 and w.json()["errors"][0]["code"] == 10000


def test_client_v4_with_gateway_header_applies_gateway_behaviour(http: httpx.Client) -> None:
    url = f"/client/v4/accounts/{ACCT}/ai/run/{LEGACY}"
    denied = http.post(url, json={"prompt": "x"}, headers={**bearer(TOKEN), "cf-aig-gateway-id": "secure"})
    assert denied.status_code == 401 and denied.json()["error"][0]["code"] == 2009
    headers = {**bearer(TOKEN), "cf-aig-gateway-id": "secure", "cf-aig-authorization": f"Bearer {GW_TOKEN}",
               "cf-aig-cache-ttl": "60"}
    first = http.post(url, json={"prompt": "x"}, headers=headers)
    second = http.post(url, json={"prompt": "x"}, headers=headers)
    assert first.headers["cf-aig-cache-status"] == "MISS" and second.headers["cf-aig-cache-status"] == "HIT"
    assert first.json() == second.json() and first.headers["cf-aig-log-id"] != second.headers["cf-aig-log-id"]


# -- cache ------------------------------------------------------------------------------------------------
def test_cache_hit_miss_key_skip_and_streams(http: httpx.Client, emu: EmulatorServer) -> None:
    url = f"/v1/{ACCT}/gw/openai/chat/completions"
    ttl = {**bearer("k"), "cf-aig-cache-ttl": "300"}
    a = http.post(url, json=openai_body(), headers=ttl)
    b = http.post(url, json=openai_body(), headers=ttl)
    assert (a.headers["cf-aig-cache-status"], b.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    assert a.json() == b.json()
    other = http.post(url, json=openai_body(temperature=0.5), headers=ttl)
    assert other.headers["cf-aig-cache-status"] == "MISS"
    old = http.post(url, json=openai_body(), headers={**bearer("k"), "cf-cache-ttl": "300"})
    assert old.headers["cf-aig-cache-status"] == "HIT"  # the old header name still works
    skip = http.post(url, json=openai_body(), headers={**ttl, "cf-aig-skip-cache": "true"})
    assert "cf-aig-cache-status" not in skip.headers and skip.json()["id"] != a.json()["id"]
    keyed = {**bearer("k"), "cf-aig-cache-key": "k1"}
    k1 = http.post(url, json=openai_body(), headers=keyed)
    k2 = http.post(url, json=openai_body(temperature=1), headers=keyed)  # same key, other body: HIT
    assert k1.headers["cf-aig-cache-status"] == "MISS" and k2.headers["cf-aig-cache-status"] == "HIT"
    s1 = http.post(url, json=openai_body(stream=True), headers=ttl)
    assert "cf-aig-cache-status" not in s1.headers
    emu.state.clear_cache()
    assert http.post(url, json=openai_body(), headers=ttl).headers["cf-aig-cache-status"] == "MISS"


def test_errors_and_faults_are_not_cached(http: httpx.Client, emu: EmulatorServer) -> None:
    url = f"/v1/{ACCT}/gw/openai/chat/completions"
    ttl = {**bearer("k"), "cf-aig-cache-ttl": "300"}
    emu.state.add_fault(Fault("*/openai/chat/completions", "error", status=500, times=1))
    assert http.post(url, json=openai_body(), headers=ttl).status_code == 500
    again = http.post(url, json=openai_body(), headers=ttl)
    assert again.status_code == 200 and again.headers["cf-aig-cache-status"] == "MISS"


def test_request_timeout_header_on_provider_path(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*/openai/chat/completions", "delay", delay_s=2.0))
    start = time.monotonic()
    r = http.post(f"/v1/{ACCT}/gw/openai/chat/completions", json=openai_body(),
                  headers={**bearer("k"), "cf-aig-request-timeout": "100"})
    assert r.status_code == 504 and r.json()["name"] == "AiGatewayError" and time.monotonic() - start < 1.5


# -- Universal Endpoint -------------------------------------------------------------------------------------
def steps(*providers: str) -> list[dict[str, Any]]:
    table = {
        "workers-ai": {"provider": "workers-ai", "endpoint": LEGACY, "headers": bearer(TOKEN),
                       "query": {"messages": MSGS}},
        "openai": {"provider": "openai", "endpoint": "chat/completions", "headers": bearer("sk"),
                   "query": openai_body()},
        "anthropic": {"provider": "anthropic", "endpoint": "v1/messages", "headers": {"x-api-key": "k"},
                      "query": {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": MSGS}},
    }
    return [dict(table[p]) for p in providers]


def test_universal_first_step_answers(http: httpx.Client) -> None:
    r = http.post(f"/v1/{ACCT}/gw", json=steps("workers-ai", "openai"))
    assert r.status_code == 200 and r.headers["cf-aig-step"] == "0" and r.json()["result"]["response"].endswith("Paris")
    single = http.post(f"/v1/{ACCT}/gw", json=steps("openai")[0])  # llama-index posts one object
    assert single.headers["cf-aig-step"] == "0" and single.json()["object"] == "chat.completion"


def test_universal_falls_back_on_error_and_fault(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault(f"/v1/{ACCT}/gw/workers-ai/*", "error", status=429, code=3040))
    r = http.post(f"/v1/{ACCT}/gw", json=steps("workers-ai", "openai", "anthropic"))
    assert r.status_code == 200 and r.headers["cf-aig-step"] == "1" and r.json()["object"] == "chat.completion"
    bad_key = steps("openai", "anthropic")
    bad_key[0]["query"] = openai_body(model="gpt-nope")  # 404 from the provider -> next step
    r2 = http.post(f"/v1/{ACCT}/gw", json=bad_key)
    assert r2.headers["cf-aig-step"] == "1" and r2.json()["type"] == "message"


def test_universal_all_fail_returns_last_error(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*/workers-ai/*", "html"))
    emu.state.add_fault(Fault("*/openai/*", "error", status=503, message="down"))
    r = http.post(f"/v1/{ACCT}/gw", json=steps("workers-ai", "openai"))
    assert r.status_code == 503 and r.json()["error"]["message"] == "down" and r.headers["cf-aig-step"] == "1"


def test_universal_request_timeout_triggers_fallback(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*/workers-ai/*", "delay", delay_s=2.0))
    chain = steps("workers-ai", "openai")
    chain[0]["config"] = {"requestTimeout": 100}
    start = time.monotonic()
    r = http.post(f"/v1/{ACCT}/gw", json=chain)
    assert r.headers["cf-aig-step"] == "1" and time.monotonic() - start < 1.5
    chain[0]["config"] = {"requestTimeout": 5000}
    emu.state.clear_faults()
    emu.state.add_fault(Fault("*/workers-ai/*", "delay", delay_s=0.05))
    assert http.post(f"/v1/{ACCT}/gw", json=chain).headers["cf-aig-step"] == "0"  # slow but within the limit


def test_universal_step_headers_override_and_gateway_auth(http: httpx.Client) -> None:
    chain = steps("openai")
    chain[0]["headers"] = {}  # no provider key on an unauthenticated gateway: the step fails
    r = http.post(f"/v1/{ACCT}/gw", json=chain + steps("anthropic"))
    assert r.headers["cf-aig-step"] == "1"
    fine = http.post(f"/v1/{ACCT}/gw", json=chain, headers=bearer("request-level-key"))
    assert fine.headers["cf-aig-step"] == "0" and fine.status_code == 200
    denied = http.post(f"/v1/{ACCT}/secure", json=steps("openai"))
    assert denied.status_code == 401 and denied.json()["internalCode"] == 2009
    invalid = http.post(f"/v1/{ACCT}/gw", json=[{"provider": "nosuch", "endpoint": "x", "query": {}}])
    assert invalid.status_code == 400 and invalid.json()["error"][0]["code"] == 2008
