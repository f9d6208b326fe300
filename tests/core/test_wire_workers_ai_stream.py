"""Workers AI native wire: streams (legacy and OpenAI-shaped events, tool calls, errors, terminators)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _streams import feed_all, sse

from cfgateway.errors import CapacityError, MalformedResponseError, ServerError, StreamInterrupted
from cfgateway.types import Usage
from cfgateway.wire import workers_ai as wai

# --------------------------------------------------------------------------- streams

LEGACY_STREAM = (
    b'data: {"response":"Hello","p":"abdefghijklmn"}\n\n'
    b'data: {"response":" world","p":"abdefghijklmnoprstu"}\n\n'
    b'data: {"response":"","usage":{"prompt_tokens":169,"completion_tokens":48,"total_tokens":217}}\n\n'
    b"data: [DONE]\n\n"
)


def test_legacy_stream_at_every_split() -> None:
    for cut in range(len(LEGACY_STREAM) + 1):
        p = wai.StreamParser("@cf/meta/llama-3.1-8b-instruct")
        chunks = feed_all(p, LEGACY_STREAM, cut)
        assert [c.text for c in chunks] == ["Hello", " world"]
        assert all(c.usage is None and not c.final for c in chunks)
        assert p.done and p.text == "Hello world"
        final = p.finish()
        assert final.final and final.usage == Usage(169, 48, 217, 0, None) and final.finish_reason == "stop"


def chunk(
    content: str | None = None,
    *,
    usage: dict[str, Any] | None = None,
    finish: str | None = None,
    choices: bool = True,
    **delta: Any,
) -> dict[str, Any]:
    d: dict[str, Any] = dict(delta)
    if content is not None:
        d["content"] = content
    obj: dict[str, Any] = {
        "id": "id-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "@cf/qwen/qwen3-30b-a3b-fp8",
        "p": "zz9",
    }
    obj["choices"] = [{"index": 0, "delta": d, "finish_reason": finish}] if choices else []
    if usage is not None:
        obj["usage"] = usage
    return obj


def u(p: int, c: int) -> dict[str, int]:
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


OPENAI_CHUNKS = [
    chunk("", role="assistant", usage=u(10, 0)),
    chunk("Hi", usage=u(0, 1)),
    chunk(" there", usage=u(0, 1), reasoning_content="hmm"),
    chunk(finish="stop", usage=u(0, 0)),
]
CUMULATIVE = {"response": "", "usage": {**u(10, 2), "prompt_tokens_details": {"cached_tokens": 4}, "neurons": 0.5}}


def test_openai_chunks_on_native_endpoint_cumulative_usage_wins() -> None:
    body = sse(*OPENAI_CHUNKS, chunk(choices=False, usage=u(10, 2)), CUMULATIVE, b"[DONE]")
    p = wai.StreamParser()
    chunks = feed_all(p, body)
    assert [c.text for c in chunks] == ["Hi", " there"]
    assert chunks[1].reasoning == "hmm"
    assert all(c.usage is None for c in chunks)
    final = p.finish()
    assert final.usage == Usage(10, 2, 12, 4, 0.5)  # not 10+10+... double counted
    assert final.finish_reason == "stop"
    assert final.provider_model == "@cf/qwen/qwen3-30b-a3b-fp8"


def test_usage_fallbacks_without_cumulative_event() -> None:
    p = wai.StreamParser()
    feed_all(p, sse(*OPENAI_CHUNKS, chunk(choices=False, usage=u(10, 2)), b"[DONE]"))
    assert p.finish().usage == Usage(10, 2, 12, 0, None)
    p = wai.StreamParser()
    feed_all(p, sse(*OPENAI_CHUNKS, b"[DONE]"))  # only incremental usages: summed
    assert p.finish().usage == Usage(10, 2, 12, 0, None)


def test_streamed_tool_calls_with_null_finalisation_delta() -> None:
    body = sse(
        chunk(
            role="assistant",
            tool_calls=[{"index": 0, "id": "call_1", "type": "function", "function": {"name": "getWeather"}}],
        ),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"latitude":'}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": ' "51.5"}'}}]),
        chunk(tool_calls=[{"index": 0, "id": None, "type": None, "function": {"name": None}}]),
        chunk(finish="tool_calls", usage=u(5, 9)),
        b"[DONE]",
    )
    p = wai.StreamParser()
    chunks = feed_all(p, body)
    tcs = [tc for c in chunks for tc in c.tool_call_chunks]
    assert len(tcs) == 3
    assert (tcs[0].index, tcs[0].id, tcs[0].name, tcs[0].arguments) == (0, "call_1", "getWeather", "")
    assert json.loads("".join(t.arguments for t in tcs)) == {"latitude": "51.5"}
    final = p.finish()
    assert final.finish_reason == "tool_calls" and final.usage == Usage(5, 9, 14, 0, None)


def test_legacy_flat_tool_calls_in_stream() -> None:
    body = sse(
        {"response": "", "tool_calls": [], "p": "x"},
        {
            "response": "",
            "tool_calls": [
                {"name": "getWeather", "arguments": {"latitude": "1"}},
                {"name": "getTime", "arguments": {}},
            ],
        },
        {"response": "", "usage": u(3, 4)},
        b"[DONE]",
    )
    p = wai.StreamParser()
    chunks = feed_all(p, body)
    assert len(chunks) == 1
    tcs = chunks[0].tool_call_chunks
    assert [(t.index, t.name, json.loads(t.arguments)) for t in tcs] == [
        (0, "getWeather", {"latitude": "1"}),
        (1, "getTime", {}),
    ]
    assert all(t.id and t.id.startswith("call_") for t in tcs)
    assert p.finish().finish_reason == "tool_calls"


def test_error_event_mid_stream_raises() -> None:
    body = sse(
        {"response": "Hel"}, {"errors": [{"message": "Capacity temporarily exceeded, please try again.", "code": 3040}]}
    )
    p = wai.StreamParser("@cf/meta/llama-3.3-70b-instruct-fp8-fast")
    with pytest.raises(CapacityError) as ei:
        feed_all(p, body)
    assert ei.value.status == 429 and ei.value.code == 3040
    assert ei.value.model == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    assert p.text == "Hel"
    p = wai.StreamParser()
    with pytest.raises(ServerError):
        feed_all(p, sse({"errors": [{"message": "Request timeout", "code": 3007}]}))


def test_missing_terminator_raises_stream_interrupted() -> None:
    p = wai.StreamParser("@cf/meta/llama-3.1-8b-instruct")
    feed_all(p, LEGACY_STREAM[: LEGACY_STREAM.index(b"data: [DONE]")])
    assert not p.done
    with pytest.raises(StreamInterrupted, match="@cf/meta/llama-3.1-8b-instruct") as ei:
        p.finish()
    assert ei.value.text == "Hello world"
    assert ei.value.usage == Usage(169, 48, 217, 0, None)


def test_bad_events_raise_malformed() -> None:
    for data in (b"{not json", b'{"hello":"x","p":"y"}', b"[1,2]", b'{"response": 5}'):
        p = wai.StreamParser()
        with pytest.raises(MalformedResponseError):
            feed_all(p, sse(data))


def test_events_after_done_are_ignored() -> None:
    p = wai.StreamParser()
    feed_all(p, sse({"response": "a"}, b"[DONE]", {"response": "b"}))
    assert p.text == "a" and p.finish().final
