"""Client logic over an in-process httpx.MockTransport: stop sequences, interrupted streams, records, secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from typing import Any

import httpx
import pytest

from cfgateway import ChatRequest, Client, Message, errors
from cfgateway.http.transport import RetryPolicy, Transport

MODEL = "@cf/meta/llama-3.1-8b-instruct"
TOKEN = "sekret-token-value-123"


def sse(*events: Any, done: bool = True) -> bytes:
    out = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14, "neurons": 1.5}


class Server:
    def __init__(self, body: bytes, content_type: str = "text/event-stream", status: int = 200) -> None:
        self.body, self.content_type, self.status = body, content_type, status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.body, headers={"content-type": self.content_type})


def client(server: Server, **kw: Any) -> Client:
    t = Transport(policy=RetryPolicy(max_retries=0), transport=httpx.MockTransport(server),
                  async_transport=httpx.MockTransport(server))
    return Client(MODEL, account_id="acct", api_token=TOKEN, base_url="http://127.0.0.1:9/client/v4",
                  transport=t, **kw)


def req(**kw: Any) -> ChatRequest:
    return ChatRequest([Message("user", "hi")], **kw)


def test_chat_fills_model_usage_cost_and_one_record() -> None:
    body = {"result": {"response": "Hello there", "usage": USAGE}, "success": True, "errors": [], "messages": []}
    s = Server(json.dumps(body).encode(), "application/json")
    r = client(s).chat(req())
    assert r.text == "Hello there" and r.model == MODEL and r.provider == "workers-ai"
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens, r.usage.neurons) == (10, 4, 1.5)
    assert r.cost == (Decimal(10) * Decimal("0.282") + Decimal(4) * Decimal("0.827")) / Decimal(1_000_000)
    assert len(r.records) == 1 and r.records[0].outcome == "ok" and r.records[0].cost == r.cost
    sent = json.loads(s.requests[0].content)
    assert "stop" not in sent and sent["messages"] == [{"role": "user", "content": "hi"}]


def test_stop_sequences_are_applied_client_side_for_workers_ai() -> None:
    body = {"result": {"response": "one two STOP three", "usage": USAGE}, "success": True}
    r = client(Server(json.dumps(body).encode(), "application/json")).chat(req(stop=["STOP"]))
    assert r.text == "one two " and r.finish_reason == "stop"


def test_stream_stop_sequence_split_across_chunks() -> None:
    s = Server(sse({"response": "one S"}, {"response": "TO"}, {"response": "P three"}, {"response": "", "usage": USAGE}))
    chunks = list(client(s).stream(req(stop=["STOP"])))
    assert "".join(c.text for c in chunks) == "one "
    assert chunks[-1].final and chunks[-1].finish_reason == "stop"


def test_stream_usage_only_on_final_chunk() -> None:
    s = Server(sse({"response": "Hel", "p": "abc"}, {"response": "lo", "p": "x"}, {"response": "", "usage": USAGE}))
    chunks = list(client(s).stream(req()))
    assert "".join(c.text for c in chunks) == "Hello"
    assert [c.usage is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    final = chunks[-1]
    assert final.final and final.usage.output_tokens == 4 and final.records[0].stream_complete is True
    assert chunks[0].model == MODEL


def test_stream_without_terminator_raises_stream_interrupted_with_text() -> None:
    s = Server(sse({"response": "partial "}, {"response": "answer"}, done=False))
    got: list[str] = []
    with pytest.raises(errors.StreamInterrupted) as info:
        for c in client(s).stream(req()):
            got.append(c.text)
    assert "".join(got) == "partial answer" and info.value.text == "partial answer"
    rec = info.value.records[0]  # type: ignore[attr-defined]
    assert rec.stream_complete is False and rec.outcome == "StreamInterrupted"


def test_error_event_mid_stream_raises_typed_error() -> None:
    s = Server(sse({"response": "a"}, {"errors": [{"code": 3040, "message": "Capacity temporarily exceeded"}]}))
    with pytest.raises(errors.MidStreamError, match="after 1 chunks") as got:
        list(client(s).stream(req()))
    assert isinstance(got.value.error, errors.CapacityError) and got.value.text == "a" and got.value.code == 3040
    unknown = Server(sse({"response": "a"}, {"error": {"message": "boom"}}))  # no status, no code: the server's
    with pytest.raises(errors.MidStreamError) as got2:
        list(client(unknown).stream(req()))
    assert isinstance(got2.value.error, errors.ServerError)


def test_an_empty_200_stream_fails_like_a_5xx() -> None:
    """Issue 10 §12: a 200 stream without a single event is a failure a chain falls back from."""
    from cfgateway.fallback.policy import FallbackPolicy

    with pytest.raises(errors.MalformedResponseError, match="without a single event") as got:
        list(client(Server(b"")).stream(req()))
    assert FallbackPolicy().should_fall_back(got.value)


def test_async_stream_matches_sync() -> None:
    s = Server(sse({"response": "Hel"}, {"response": "lo"}, {"response": "", "usage": USAGE}))
    c = client(s)

    async def collect() -> list[str]:
        return [ch.text async for ch in c.astream(req())]

    assert "".join(asyncio.run(collect())) == "".join(ch.text for ch in c.stream(req())) == "Hello"


def test_malformed_json_is_a_typed_error() -> None:
    with pytest.raises(errors.MalformedResponseError):
        client(Server(b'{"result": {"resp', "application/json")).chat(req())


def test_token_never_in_repr_errors_bodies_or_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"errors": [{"code": 10000, "message": "Authentication error"}], "success": False, "result": None}
    s = Server(json.dumps(body).encode(), "application/json", status=401)
    c = client(s)
    with pytest.raises(errors.AuthenticationError) as info:
        c.chat(req())
    assert s.requests[0].headers["authorization"] == f"Bearer {TOKEN}"  # it was sent, in the header only
    for text in (repr(c), str(c.settings), repr(c.route()), str(info.value), repr(info.value),
                 s.requests[0].content.decode(), caplog.text):
        assert TOKEN not in text


def test_embed_rejects_bad_inputs_naming_the_index() -> None:
    c = client(Server(b"{}", "application/json"))
    with pytest.raises(errors.InvalidInputError, match="input 2 is empty"):
        c.embed(["a", "b", "  "], model="@cf/baai/bge-base-en-v1.5")
    with pytest.raises(errors.InvalidInputError, match="input 1 is .* characters"):
        c.embed(["a", "x" * 10_000], model="@cf/baai/bge-base-en-v1.5")
    with pytest.raises(errors.ConfigError, match="limit of 100"):
        c.embed(["a"], model="@cf/baai/bge-base-en-v1.5", batch_size=500)
    assert c.embed([], model="@cf/baai/bge-base-en-v1.5").vectors == []


def test_async_embed_sends_the_next_batch_before_decoding_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one slot, batch 2's request leaves before batch 1's answer is decoded; order and values kept."""
    import cfgateway.client._embed as client_mod

    events: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["text"]
        events.append(f"send {texts[0]}")
        await asyncio.sleep(0.001)
        data = [[float(t.split()[1]), 1.0] for t in texts]
        return httpx.Response(200, json={"result": {"shape": [len(data), 2], "data": data}, "success": True})

    real = client_mod.finish_batch

    def finish(b: Any, *a: Any) -> Any:
        events.append(f"decode batch {b.index}")  # index: first text of the batch
        return real(b, *a)

    monkeypatch.setattr(client_mod, "finish_batch", finish)
    t = Transport(policy=RetryPolicy(max_retries=0), async_transport=httpx.MockTransport(handler))
    c = Client("@cf/baai/bge-small-en-v1.5", account_id="acct", api_token=TOKEN,
               base_url="http://127.0.0.1:9/client/v4", transport=t)
    texts = [f"t {i}" for i in range(6)]
    r = asyncio.run(c.aembed(texts, batch_size=2, max_concurrency=1))
    assert [v[0] for v in r.vectors] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert events.index("send t 2") < events.index("decode batch 0")
    assert events.index("send t 4") < events.index("decode batch 2")


def test_embed_response_repr_shows_the_shape_not_the_floats() -> None:
    """asyncio.run() reprs its result on the way out (CPython 3.11): a full repr of big jobs cost seconds."""
    from cfgateway import EmbedResponse
    from cfgateway.types import Usage

    r = EmbedResponse([[0.123456789] * 768 for _ in range(5000)], "@cf/baai/bge-base-en-v1.5", "workers-ai",
                      usage=Usage(10, 0, 10))
    text = repr(r)
    assert "<5000 x 768>" in text and "bge-base" in text and "input_tokens=10" in text
    assert len(text) < 400 and "0.123456789" not in text
    assert "<0 x 0>" in repr(EmbedResponse([], "m", "p"))
