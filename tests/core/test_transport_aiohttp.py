"""The aiohttp async backend keeps the transport's contract, against the emulator on 127.0.0.1: answers and
headers, retries (Retry-After), errors that are not retried, timeouts, refused connections, a body cut short,
streams (and a stream cut short), one session per event loop closed with its loop, ``aclose``, and the core
client's chat / stream / embed through it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from cfgateway import ChatRequest, Client, Message
from cfgateway import errors as e
from cfgateway.emulator.config import Fault
from cfgateway.http.transport import RetryPolicy, Transport

pytest.importorskip("aiohttp")

MODEL = "@cf/meta/llama-3.1-8b-instruct"
H = {"Authorization": "Bearer test-token", "Content-Type": "application/json"}
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def _t(**kw: Any) -> Transport:
    policy = kw.pop("policy", RetryPolicy(max_retries=2, backoff_base=0.001, backoff_max=0.002))
    return Transport(async_backend="aiohttp", policy=policy, **kw)


def _url(emu: Any) -> str:
    return f"{emu.base_url}/accounts/acct/ai/run/{MODEL}"


def test_answer_and_headers(cf_emulator: Any) -> None:
    t = _t()
    raw = asyncio.run(t.apost(_url(cf_emulator), H, BODY, model=MODEL))
    assert raw.status == 200 and isinstance(raw.headers, httpx.Headers)
    assert raw.headers.get("Content-Type", "").startswith("application/json")
    assert b'"response"' in raw.content
    assert cf_emulator.state.requests[0].json == BODY


def test_retry_after_then_success(cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*", kind="error", status=429, code=3040, retry_after=0.05, times=1))
    raw = asyncio.run(_t().apost(_url(cf_emulator), H, BODY, model=MODEL))
    assert raw.status == 200 and len(cf_emulator.state.requests) == 2


def test_non_retryable_error_raises_at_once(cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*", kind="error", status=400, code=5006, message="bad input", times=3))
    with pytest.raises(e.BadRequestError, match="bad input"):
        asyncio.run(_t().apost(_url(cf_emulator), H, BODY, model=MODEL))
    assert len(cf_emulator.state.requests) == 1


def test_timeout_maps_to_typed_error(cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*", kind="delay", delay_s=1.0, times=1))
    with pytest.raises(e.TimeoutError, match="ReadTimeout"):
        asyncio.run(_t(timeout=0.3, policy=RetryPolicy(max_retries=0)).apost(_url(cf_emulator), H, BODY, model=MODEL))


def test_refused_connection_is_retried_then_mapped() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(e.ConnectionError, match="ConnectError"):
        asyncio.run(_t().apost(f"http://127.0.0.1:{port}/x", H, BODY, model=MODEL))


def test_body_cut_short_is_incomplete_and_not_resent(cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*", kind="drop_body", times=1))
    with pytest.raises(e.IncompleteResponseError):
        asyncio.run(_t().apost(_url(cf_emulator), H, BODY, model=MODEL))
    assert len(cf_emulator.state.requests) == 1


def test_core_client_chat_stream_and_embed(cf_emulator: Any) -> None:
    client = Client(MODEL, transport=_t(), **cf_emulator.client_kwargs())
    req = ChatRequest([Message("user", "Say hello")], max_tokens=16)

    async def run() -> tuple[str, str, int]:
        chat = await client.achat(req)
        chunks = [c async for c in client.astream(req)]
        emb = await client.aembed(["a", "b", "c"], model="@cf/baai/bge-small-en-v1.5")
        assert chunks[-1].final and chunks[-1].usage is not None
        return chat.text, "".join(c.text for c in chunks), len(emb.vectors)

    chat, streamed, n = asyncio.run(run())
    assert chat and streamed == chat and n == 3


def test_stream_cut_short_raises_stream_interrupted(cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*", kind="drop_stream", after_chunks=2, times=1))
    client = Client(MODEL, transport=_t(), **cf_emulator.client_kwargs())

    async def run() -> None:
        async for _ in client.astream(ChatRequest([Message("user", "Count to 50")])):
            pass

    with pytest.raises(e.StreamInterrupted):
        asyncio.run(run())


def test_one_session_per_loop_closed_with_its_loop(cf_emulator: Any) -> None:
    t = _t()
    sessions: list[Any] = []

    async def once() -> None:
        await t.apost(_url(cf_emulator), H, BODY, model=MODEL)
        sessions.append(t._aio.session())  # type: ignore[union-attr]

    asyncio.run(once())
    asyncio.run(once())
    assert sessions[0] is not sessions[1] and all(s.closed for s in sessions)
    assert len(t._aio._sessions) == 0  # type: ignore[union-attr]


def test_aclose_closes_this_loops_session(cf_emulator: Any) -> None:
    t = _t()

    async def run() -> Any:
        await t.apost(_url(cf_emulator), H, BODY, model=MODEL)
        s = t._aio.session()  # type: ignore[union-attr]
        await t.aclose()
        return s

    assert asyncio.run(run()).closed


def test_bad_backend_names_are_refused() -> None:
    with pytest.raises(ValueError, match="async_backend"):
        Transport(async_backend="requests")
    with pytest.raises(ValueError, match="httpx transport"):
        Transport(async_backend="aiohttp", async_transport=httpx.MockTransport(lambda r: httpx.Response(200)))
