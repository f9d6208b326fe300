"""Calls a route cannot serve as asked: streams that become one call, images for text-only models.

The service answers ``stream: true`` for those with JSON (an empty result) or an error; the client
sends the call once without streaming and yields the answer as a content chunk plus the final chunk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from cfgateway import Budget, ChatRequest, Client, CostTracker, Message, ToolSpec
from cfgateway.calls import limits as route_limits
from cfgateway.costs.catalog import default_catalog
from cfgateway.costs.ledger import MemoryLedger
from cfgateway.types import ChatChunk

GPT_OSS = "@cf/openai/gpt-oss-120b"
PROMPT = ChatRequest([Message("user", "Tell me about Paris")], max_tokens=50)


class SpyTracker(CostTracker):
    def __init__(self) -> None:
        super().__init__(MemoryLedger(), [Budget(limit=None)])
        self.released: list[Any] = []

    def release(self, reservation: Any) -> None:
        self.released.append(reservation)
        super().release(reservation)


def collect(c: Client, req: ChatRequest, mode: str) -> list[ChatChunk]:
    if mode == "sync":
        return list(c.stream(req))

    async def run() -> list[ChatChunk]:
        return [ch async for ch in c.astream(req)]

    return asyncio.run(run())


def make(emu: Any, model: str = GPT_OSS, **kw: Any) -> Client:
    return Client(model, account_id="acct", api_token="t", base_url=emu.base_url, max_retries=0, **kw)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gpt_oss_stream_on_ai_run_is_one_non_streamed_call(cf_emulator: Any, mode: str,
                                                           caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(route_limits, "_one_piece_logged", set())
    c = make(cf_emulator)
    with caplog.at_level(logging.INFO, logger="cfgateway.client"):
        chunks = collect(c, PROMPT, mode)
        collect(c, PROMPT, mode)
    sent = cf_emulator.state.requests
    assert len(sent) == 2 and not any(r.json.get("stream") for r in sent)  # two streams, two plain calls
    assert [ch.final for ch in chunks] == [False, True]
    assert chunks[0].text and "Paris" in chunks[0].text and chunks[0].model == GPT_OSS
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens > 0 and chunks[-1].cost is not None
    assert chunks[0].text == c.chat(PROMPT).text
    said = [r.getMessage() for r in caplog.records if "does not stream on /ai/run" in r.getMessage()]
    assert len(said) == 1  # said once (INFO), not silently and not per call


def test_gpt_oss_streams_in_pieces_on_ai_v1(cf_emulator: Any) -> None:
    chunks = collect(make(cf_emulator, endpoint="openai"), PROMPT, "sync")
    assert cf_emulator.state.requests[0].json["stream"] is True
    assert len([ch for ch in chunks if ch.text]) > 1 and chunks[-1].final


def test_emulator_refuses_to_stream_gpt_oss_on_ai_run(cf_emulator: Any) -> None:
    """What the client works around: a JSON body with an empty result, not an event stream."""
    import httpx

    url = f"{cf_emulator.base_url}/accounts/acct/ai/run/{GPT_OSS}"
    r = httpx.post(url, json={"messages": [{"role": "user", "content": "hi"}], "stream": True},
                   headers={"Authorization": "Bearer t"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json()["result"] == {}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_model_the_catalog_thinks_streams_is_resent_without_streaming(cf_emulator: Any, mode: str) -> None:
    """Unknown to the catalog: the JSON answer is detected, its reservation released, the call re-sent."""
    row = {"kind": "chat", "input": "0.35", "output": "0.75", "shape": "openai", "function_calling": True}
    catalog = default_catalog().extended({"models": {GPT_OSS: row}})  # native_stream left at its default
    tracker = SpyTracker()
    c = make(cf_emulator, catalog=catalog, tracker=tracker)
    chunks = collect(c, PROMPT, mode)
    sent = cf_emulator.state.requests
    assert [bool(r.json.get("stream")) for r in sent] == [True, False]
    assert "Paris" in "".join(ch.text for ch in chunks) and chunks[-1].final and chunks[-1].usage
    assert len(tracker.released) == 1  # the refused stream's hold is given back
    records = tracker.ledger.records()
    assert len(records) == 1 and records[0].outcome == "ok" and records[0].cost == chunks[-1].cost


def test_tool_calls_from_a_one_piece_stream_match_invoke(cf_emulator: Any) -> None:
    tool = ToolSpec("get_weather", "Weather for a city", {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    req = ChatRequest([Message("user", "What is the weather in Paris? Use the tool.")], tools=[tool],
                      tool_choice="required")
    c = make(cf_emulator)
    chunks = collect(c, req, "sync")
    pieces = [tc for ch in chunks for tc in ch.tool_call_chunks]
    assert [(p.name, p.arguments.replace(" ", "")) for p in pieces] == [("get_weather", '{"city":"Paris"}')]
    assert pieces[0].id  # the call's id survives, so a ToolMessage can answer it


@pytest.mark.parametrize("model", ["@cf/meta/llama-3.3-70b-instruct-fp8-fast", "@cf/qwen/qwen3-30b-a3b-fp8"])
def test_json_mode_stream_on_workers_ai_is_one_call(cf_emulator: Any, model: str) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    req = ChatRequest([Message("user", "Which city is the capital of France? JSON.")], max_tokens=50,
                      response_format={"type": "json_schema", "json_schema": schema})
    chunks = collect(make(cf_emulator, model), req, "sync")
    sent = cf_emulator.state.requests
    assert len(sent) == 1 and not sent[0].json.get("stream")  # the emulator, like the service, refuses both
    assert '"city"' in chunks[0].text and chunks[-1].final and chunks[-1].usage


def test_core_refuses_images_for_a_text_only_model_before_sending(cf_emulator: Any) -> None:
    from cfgateway import InvalidInputError

    parts: list[Any] = [{"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    req = ChatRequest([Message("system", "Be brief."), Message("user", parts)])
    with pytest.raises(InvalidInputError, match=r"messages\[1\]: @cf/meta/llama-3.1-8b-instruct does not take"):
        make(cf_emulator, "@cf/meta/llama-3.1-8b-instruct").chat(req)
    with pytest.raises(InvalidInputError):
        list(make(cf_emulator, "@cf/meta/llama-3.1-8b-instruct").stream(req))
    assert cf_emulator.state.requests == []
    assert make(cf_emulator, "@cf/google/gemma-3-12b-it").chat(req).text


def _gateway_chain(emu: Any, fallbacks: list[str], **kw: Any) -> Any:
    from cfgateway.fallback import build_client

    return build_client(GPT_OSS, fallbacks, account_id="acct", api_token="t", gateway_id="gw", gateway_token="g",
                        base_url=emu.base_url, gateway_base_url=emu.gateway_base_url, fallback_mode="gateway",
                        max_retries=0, **kw)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gateway_mode_chain_with_a_step_that_cannot_stream_is_one_request(cf_emulator: Any, mode: str) -> None:
    chunks = collect(_gateway_chain(cf_emulator, ["openai/gpt-4o-mini"]), PROMPT, mode)
    [sent] = cf_emulator.state.requests
    assert isinstance(sent.json, list) and not any(step["query"].get("stream") for step in sent.json)
    assert [ch.final for ch in chunks] == [False, True] and "Paris" in chunks[0].text
    assert chunks[-1].model == GPT_OSS and chunks[-1].usage is not None


def test_gateway_mode_names_the_fix_when_a_step_answers_json_to_a_stream(cf_emulator: Any) -> None:
    from cfgateway import StreamInterrupted

    row = {"kind": "chat", "input": "0.35", "output": "0.75", "shape": "openai"}
    catalog = default_catalog().extended({"models": {GPT_OSS: row}})  # the catalog wrongly says it streams
    with pytest.raises(StreamInterrupted, match='cannot stream on this route .set "native_stream": false'):
        collect(_gateway_chain(cf_emulator, [], catalog=catalog), PROMPT, "sync")


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_an_answer_cut_at_the_unset_default_is_said_once(cf_emulator: Any, mode: str,
                                                         caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers AI caps output at 256 tokens when max_tokens is absent: a warning names the fix, once."""
    monkeypatch.setattr(route_limits, "_cap_warned", set())
    long = ChatRequest([Message("user", "Count to 400")])
    c = make(cf_emulator, "@cf/meta/llama-3.3-70b-instruct-fp8-fast")

    def finish(req: ChatRequest) -> str | None:
        return c.chat(req).finish_reason if mode == "invoke" else collect(c, req, "sync")[-1].finish_reason

    with caplog.at_level(logging.WARNING, logger="cfgateway.client"):
        assert finish(long) == "length" and finish(long) == "length"
        assert finish(ChatRequest(long.messages, max_tokens=5)) == "length"  # the caller's own cap: no warning
    said = [r.getMessage() for r in caplog.records if "default of 256 output tokens" in r.getMessage()]
    assert len(said) == 1 and "set max_tokens=" in said[0]
    assert "max_tokens" not in cf_emulator.state.requests[0].json


def test_gateway_mode_checks_images_against_the_first_step_only(cf_emulator: Any) -> None:
    from cfgateway import InvalidInputError
    from cfgateway.fallback import build_client

    parts: list[Any] = [{"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    req = ChatRequest([Message("user", parts)])
    kw: dict[str, Any] = {"account_id": "acct", "api_token": "t", "gateway_id": "gw", "gateway_token": "g",
                          "base_url": cf_emulator.base_url, "gateway_base_url": cf_emulator.gateway_base_url,
                          "fallback_mode": "gateway"}
    vision, text_only = "@cf/google/gemma-3-12b-it", "@cf/meta/llama-3.1-8b-instruct"
    r = build_client(vision, [text_only], **kw).chat(req)
    assert r.model == vision and len(cf_emulator.state.requests) == 1  # the text-only fallback did not block it
    with pytest.raises(InvalidInputError, match=r"messages\[0\]: @cf/meta/llama-3.1-8b-instruct does not take"):
        build_client(text_only, [vision], **kw).chat(req)
    assert len(cf_emulator.state.requests) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failed_embedding_batch_stops_the_rest_of_the_job(cf_emulator: Any, mode: str) -> None:
    """One batch fails for good: the batches not yet sent are not sent (each one costs money)."""
    from cfgateway import ServerError
    from cfgateway.emulator.config import Fault

    model = "@cf/baai/bge-small-en-v1.5"
    cf_emulator.state.add_fault(Fault(f"*/{model}", "error", status=500, times=1))
    cf_emulator.state.add_fault(Fault(f"*/{model}", "delay", delay_s=0.05, times=None))
    c = make(cf_emulator, model)
    texts = [f"text {i}" for i in range(40)]

    async def in_a_long_lived_loop() -> None:  # a server's loop: orphaned batches would keep running in it
        with pytest.raises(ServerError):
            await c.aembed(texts, batch_size=1, max_concurrency=2)
        await asyncio.sleep(0.3)

    if mode == "sync":
        with pytest.raises(ServerError):
            c.embed(texts, batch_size=1, max_concurrency=2)
        time.sleep(0.3)  # anything still running would have sent more by now
    else:
        asyncio.run(in_a_long_lived_loop())
    assert len(cf_emulator.state.requests) <= 4  # the failed one and those already in flight, not 40
