"""The redesigned call path: request validation before sending, retry waits that fit the timeout,
settings overrides, the plan's delivery, cache HITs without neurons."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx
import pytest

from cfgateway import ChatRequest, Client, InvalidInputError, Message, ToolSpec, errors
from cfgateway.calls.plan import STREAMED, OnePiece, plan_chat, validate_chat
from cfgateway.config import load_settings
from cfgateway.http.transport import RetryPolicy, Transport
from cfgateway.routing.routes import resolve_route
from cfgateway.types import CallContext

MODEL = "@cf/meta/llama-3.1-8b-instruct"
HI = [Message("user", "hi")]


@pytest.mark.parametrize(("field", "value", "words"), [
    ("temperature", "hot", "temperature must be a number"),
    ("temperature", math.nan, "temperature must be a number"),
    ("temperature", True, "temperature must be a number"),
    ("max_tokens", -1, "max_tokens must be a whole number"),
    ("max_tokens", 0, "max_tokens must be a whole number"),
    ("max_tokens", 1e30, "max_tokens must be a whole number"),
    ("max_tokens", 3.7, "max_tokens must be a whole number"),
    ("top_p", {}, "top_p must be a number"),
    ("seed", "abc", "seed must be a whole number"),
    ("tool_choice", "sometimes", "tool_choice must be auto, none, required or the name of a given tool"),
    ("stop", 5, "stop must be a list of strings"),
    ("metadata", "abc", "must be a dict"),
    ("messages", [], "messages must be a non-empty list"),
    ("messages", ["abc"], "messages\\[0\\] must be a Message"),
])
def test_invalid_requests_are_refused_naming_the_field(field: str, value: Any, words: str) -> None:
    req = ChatRequest(HI)
    setattr(req, field, value)
    with pytest.raises(InvalidInputError, match=words):
        validate_chat(req)


def test_valid_requests_pass_and_a_named_tool_must_exist() -> None:
    tool = ToolSpec("get_weather")
    validate_chat(ChatRequest(HI, temperature=0.0, max_tokens=5, top_p=1, seed=7, stop=["x"], tools=[tool],
                              tool_choice="get_weather", response_format={"type": "json_object"}))
    with pytest.raises(InvalidInputError, match="get_weather"):
        validate_chat(ChatRequest(HI, tools=[tool], tool_choice="other"))


def test_nothing_is_sent_for_an_invalid_request() -> None:
    sent: list[httpx.Request] = []
    t = Transport(transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))
    c = Client(MODEL, account_id="a", api_token="t", base_url="http://127.0.0.1:9/client/v4", transport=t)
    with pytest.raises(InvalidInputError):
        c.chat(ChatRequest(HI, temperature="hot"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        list(c.stream(ChatRequest(HI, max_tokens=-1)))
    assert sent == []


def test_the_plan_decides_delivery_and_keeps_the_body_a_dict() -> None:
    s = load_settings(account_id="a", api_token="t", env={}, config_path=None)
    ctx = CallContext()
    p = plan_chat(resolve_route(MODEL, s), ChatRequest(HI), stream=True, options=None, ctx=ctx)
    assert p.delivery is STREAMED and p.body["stream"] is True and isinstance(p.body, dict)
    j = plan_chat(resolve_route(MODEL, s), ChatRequest(HI, response_format={"type": "json_object"}), stream=True,
                  options=None, ctx=ctx)
    assert isinstance(j.delivery, OnePiece) and "JSON mode" in (j.delivery.reason or "") and "stream" not in j.body
    whole = plan_chat(resolve_route(MODEL, s), ChatRequest(HI), stream=False, options=None, ctx=ctx)
    assert whole.delivery == OnePiece(None) and whole.stop is None and whole.input_tokens > 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_retry_after_longer_than_the_timeout_is_not_waited_for(mode: str) -> None:
    """Issue 10 §10: a 429 with Retry-After: 5 against a 2 s timeout used to take 10 s."""
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        return httpx.Response(429, headers={"retry-after": "5"}, json={"errors": [{"code": 3040, "message": "busy"}]})

    t = Transport(timeout=2.0, policy=RetryPolicy(max_retries=2), transport=httpx.MockTransport(handler),
                  async_transport=httpx.MockTransport(handler))
    start = time.monotonic()
    with pytest.raises(errors.CapacityError, match="does not fit") as got:
        if mode == "sync":
            t.post("http://127.0.0.1:9/x", {}, {"a": 1})
        else:
            asyncio.run(t.apost("http://127.0.0.1:9/x", {}, {"a": 1}))
    assert time.monotonic() - start < 1.0 and len(calls) == 1 and got.value.retry_after == 5.0


def test_short_retry_waits_are_still_taken() -> None:
    n: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        n.append(1)
        if len(n) == 1:
            return httpx.Response(429, headers={"retry-after": "0.05"}, json={"errors": [{"code": 3040, "message": "x"}]})
        return httpx.Response(200, json={"ok": True})

    t = Transport(timeout=2.0, policy=RetryPolicy(max_retries=2), transport=httpx.MockTransport(handler))
    assert t.post("http://127.0.0.1:9/x", {}, b"{}").status == 200 and len(n) == 2


def test_client_settings_plus_an_override_applies_it() -> None:
    s = load_settings(account_id="a", api_token="t", env={}, config_path=None)
    c = Client(MODEL, settings=s, timeout=5)
    assert c.settings.timeout == 5.0 and c.settings.account_id == "a" and c.transport.timeout == 5.0
    assert Client(MODEL, settings=s).settings is s


def test_a_cache_hit_records_no_neurons() -> None:
    from cfgateway.calls.outcome import make_record
    from cfgateway.types import GatewayMeta, Usage

    s = load_settings(account_id="a", api_token="t", env={}, config_path=None)
    route = resolve_route(MODEL, s)
    u = Usage(10, 5, 15, neurons=0.29)
    hit = make_record(route, CallContext(), operation="chat", usage=u, latency=0.0, gateway=GatewayMeta("HIT"))
    miss = make_record(route, CallContext(), operation="chat", usage=u, latency=0.0, gateway=GatewayMeta("MISS"))
    assert hit.neurons == 0.0 and miss.neurons == 0.29 and hit.input_tokens == 10


def test_client_and_build_client_take_the_configured_models(cf_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from cfgateway import build_client

    monkeypatch.setenv("CFGATEWAY_CHAT_MODEL", "@cf/meta/llama-3.1-8b-instruct")
    monkeypatch.setenv("CFGATEWAY_EMBED_MODEL", "@cf/baai/bge-small-en-v1.5")
    monkeypatch.setenv("CFGATEWAY_FALLBACKS", "@cf/meta/llama-3.2-3b-instruct")
    kw = {"account_id": "acct", "api_token": "t", "base_url": cf_emulator.base_url}
    c = Client(**kw)  # names no model: chat and embed calls use the configured ones
    assert c.chat(ChatRequest(HI, max_tokens=5)).model == "@cf/meta/llama-3.1-8b-instruct"
    assert len(c.embed(["a"]).vectors[0]) == 384
    chain = build_client(**kw)
    assert chain.route().model == "@cf/meta/llama-3.1-8b-instruct"
    assert getattr(chain, "models", None) == ["@cf/meta/llama-3.1-8b-instruct", "@cf/meta/llama-3.2-3b-instruct"]
    monkeypatch.delenv("CFGATEWAY_CHAT_MODEL")
    with pytest.raises(errors.ConfigError, match="CFGATEWAY_CHAT_MODEL.*chat_model"):
        Client(**kw).chat(ChatRequest(HI))


def test_a_chains_breaker_opening_is_an_alert(cf_emulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from cfgateway import build_client
    from cfgateway.emulator.config import Fault

    caplog.set_level(logging.WARNING)
    cf_emulator.state.add_fault(Fault("*/ai/run/@cf/meta/llama-3.1-8b-instruct", "error", status=500))
    chain = build_client("@cf/meta/llama-3.1-8b-instruct", ["@cf/meta/llama-3.2-3b-instruct"], failure_threshold=2,
                         account_id="acct", api_token="t", base_url=cf_emulator.base_url, max_retries=0)
    for _ in range(3):
        assert chain.chat(ChatRequest(HI, max_tokens=5)).model == "@cf/meta/llama-3.2-3b-instruct"
    opened = [r for r in caplog.records if "circuit breaker opened" in r.getMessage()]
    assert len(opened) == 1 and "@cf/meta/llama-3.1-8b-instruct" in opened[0].getMessage()
