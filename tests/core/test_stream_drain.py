"""A finished stream hands its connection back to the pool: the next call reuses it instead of connecting again.

The server here is a small ASGI app on 127.0.0.1 that streams Workers AI events and notes the client port
of every request (one port = one TCP connection). What follows the end of the events decides what the
client may do: nothing (the chunked body's end: reuse), more than the drain bound, a connection held open
after ``[DONE]`` (given up after ``DRAIN_S``), and a client-side stop sequence (the rest of the
answer is not read: the connection is closed, as before).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cfgateway import ChatRequest, Client, Message
from cfgateway.http import _drain as transport_mod
from cfgateway.http.transport import Transport

from ._webserver import serve

MODEL = "@cf/meta/llama-3.1-8b-instruct"
FRAMES = [b'data: {"response":"Hello"}\n\n', b'data: {"response":" there, friend"}\n\n',
          b'data: {"response":"","usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}\n\n',
          b"data: [DONE]\n\n"]


class Upstream:
    """Streams FRAMES; ``/junk`` then sends 100 KB more, ``/hold`` keeps the body open after ``[DONE]``."""

    def __init__(self) -> None:
        self.ports: list[int] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        self.ports.append(scope["client"][1])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for f in FRAMES:
            await send({"type": "http.response.body", "body": f, "more_body": True})
        path = scope["path"]
        if "/junk/" in path:
            for _ in range(10):
                await send({"type": "http.response.body", "body": b": " + b"x" * 10_000 + b"\n\n", "more_body": True})
        if "/hold/" in path:
            await asyncio.sleep(5)
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    app = Upstream()
    with serve(app) as url:
        yield app, url


def _client(url: str, mode: str = "plain", backend: str = "httpx") -> Client:
    return Client(MODEL, account_id="acct", api_token="t", base_url=f"{url}/{mode}/client/v4", max_retries=0,
                  transport=Transport(max_retries=0, async_backend=backend))


def _text(chunks: list[Any]) -> str:
    assert chunks[-1].final and chunks[-1].usage is not None
    return "".join(c.text for c in chunks)


REQ = ChatRequest([Message("user", "hi")])


def test_sync_streams_reuse_one_connection(upstream: tuple[Upstream, str]) -> None:
    app, url = upstream
    client = _client(url)
    for _ in range(3):
        assert _text(list(client.stream(REQ))) == "Hello there, friend"
    assert len(app.ports) == 3 and len(set(app.ports)) == 1


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
def test_async_streams_reuse_one_connection(upstream: tuple[Upstream, str], backend: str) -> None:
    app, url = upstream
    client = _client(url, backend=backend)

    async def run() -> list[str]:
        return [_text([c async for c in client.astream(REQ)]) for _ in range(3)]

    assert asyncio.run(run()) == ["Hello there, friend"] * 3
    assert len(set(app.ports)) == 1


def test_more_than_the_drain_bound_after_the_end_closes_the_connection(upstream: tuple[Upstream, str]) -> None:
    app, url = upstream
    client = _client(url, "junk")
    for _ in range(2):
        assert _text(list(client.stream(REQ))) == "Hello there, friend"
    assert transport_mod.DRAIN_MAX_BYTES < 100_000
    assert len(set(app.ports)) == 2  # not read to its end: closed, the next call connects again


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
def test_async_body_held_open_after_done_is_given_up(upstream: tuple[Upstream, str], backend: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    app, url = upstream
    monkeypatch.setattr(transport_mod, "DRAIN_S", 0.2)
    client = _client(url, "hold", backend)

    async def run() -> str:
        return _text([c async for c in client.astream(REQ)])

    t = time.monotonic()
    assert asyncio.run(run()) == "Hello there, friend"
    assert time.monotonic() - t < 3  # the 5 s hold is not waited out


def test_sync_body_held_open_after_done_is_given_up(upstream: tuple[Upstream, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    app, url = upstream
    monkeypatch.setattr(transport_mod, "DRAIN_S", 0.2)
    client = _client(url, "hold")
    t = time.monotonic()
    for _ in range(2):
        assert _text(list(client.stream(REQ))) == "Hello there, friend"
    assert time.monotonic() - t < 3  # the 5 s hold is not waited out (twice)
    assert len(set(app.ports)) == 2  # given up: that connection is closed, the next call connects again


def test_client_side_stop_does_not_read_the_rest(upstream: tuple[Upstream, str]) -> None:
    app, url = upstream
    client = _client(url, "hold")
    req = ChatRequest([Message("user", "hi")], stop=["there"])
    t = time.monotonic()
    for _ in range(2):
        chunks = list(client.stream(req))
        assert "".join(c.text for c in chunks) == "Hello " and chunks[-1].finish_reason == "stop"
    assert time.monotonic() - t < 3  # the rest of the body (held 5 s) is not read
    assert len(set(app.ports)) == 2
