"""Chat completions: one answer, ``n`` answers (several calls, run together), and streams of either.

A stream's first chunk is awaited before the response starts, so a failure before any text is a normal
error response (a fallback chain may still answer); later failures are an error event, never a silent
``[DONE]``. A stream the client leaves is closed, so the core records it as cancelled.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from cfgateway import errors
from cfgateway.client import Client
from cfgateway.proxy.convert import ChatCall
from cfgateway.proxy.errors import map_error
from cfgateway.types import CallContext, ChatChunk, ChatResponse, Usage
from cfgateway.wire import openai_server as wire

Dumps = Callable[[Any], bytes]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


async def first_errors(tasks: list[asyncio.Task[Any]]) -> list[Any]:
    """The tasks' results; on the first failure the others are cancelled and that failure is raised."""
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def complete(client: Client, call: ChatCall, ctx: Callable[[], CallContext]) -> list[ChatResponse]:
    if call.n == 1:
        return [await client.achat(call.request, context=ctx())]
    tasks = [asyncio.ensure_future(client.achat(call.request, context=ctx())) for _ in range(call.n)]
    return await first_errors(tasks)


@dataclass
class Streams:
    """``n`` open streams, each with its first chunk already received."""

    firsts: list[ChatChunk]
    gens: list[AsyncIterator[ChatChunk]]
    usage: list[Usage | None] = field(default_factory=list)


async def _open(client: Client, call: ChatCall, ctx: CallContext) -> tuple[ChatChunk, AsyncIterator[ChatChunk]]:
    gen = client.astream(call.request, context=ctx)
    try:
        return await anext(gen), gen
    except BaseException:
        await gen.aclose()  # type: ignore[attr-defined]
        raise


async def open_streams(client: Client, call: ChatCall, ctx: Callable[[], CallContext]) -> Streams:
    if call.n == 1:
        first, gen = await _open(client, call, ctx())
        return Streams([first], [gen])
    opened = await first_errors([asyncio.ensure_future(_open(client, call, ctx())) for _ in range(call.n)])
    return Streams([f for f, _ in opened], [g for _, g in opened])


async def _finish(gen: AsyncIterator[ChatChunk], ended: bool) -> None:
    """Close an upstream stream; one that gave its final chunk is run to its end instead, which reads the
    upstream body's end (bounded) so its connection goes back to the pool."""
    if ended:
        async for _ in gen:
            pass
    await gen.aclose()  # type: ignore[attr-defined]


def _visible(chunk: ChatChunk) -> bool:
    return bool(chunk.text or chunk.tool_call_chunks or chunk.reasoning or chunk.finish_reason)


class ChatStream:
    """The SSE body of one streamed completion (``n`` choices interleaved as they arrive)."""

    def __init__(self, streams: Streams, model: str, cid: str, include_usage: bool,
                 on_done: Callable[[list[ChatChunk]], None]) -> None:
        self.streams, self.model, self.cid, self.include_usage = streams, model, cid, include_usage
        self.created = int(time.time())
        self.on_done = on_done
        self.finals: list[ChatChunk] = []

    def _event(self, chunk: ChatChunk, index: int, first: bool) -> bytes | None:
        """The chunk's event; without ``include_usage`` a choice's last chunk carries its usage, so clients that
        book usage from the last chunk (AutoGen) never book a silent $0."""
        with_usage = chunk.final and not self.include_usage
        if not (first or with_usage or _visible(chunk)):
            return None
        data = wire.render_chunk(chunk, self.model, self.cid, first=first, created=self.created, index=index)
        if with_usage:
            data["usage"] = wire.usage_json(chunk.usage)
        return sse(data)

    async def body(self) -> AsyncIterator[bytes]:
        gens = self.streams.gens
        try:
            if len(gens) == 1:
                async for event in self._one(self.streams.firsts[0], gens[0]):
                    yield event
            else:
                async for event in self._many():
                    yield event
        except errors.CloudflareError as exc:  # mid-stream: an error event, never a silent [DONE]
            _, err = map_error(exc)
            yield sse(err)
            return
        finally:
            for g in gens:
                await _finish(g, ended=len(self.finals) == len(gens))
        if self.include_usage:
            usage = wire.total_usage([c.usage for c in self.finals])
            yield sse(wire.render_usage_chunk(usage, self.model, self.cid, self.created))
        yield b"data: [DONE]\n\n"
        self.on_done(self.finals)

    async def _one(self, first: ChatChunk, gen: AsyncIterator[ChatChunk]) -> AsyncIterator[bytes]:
        chunk, is_first = first, True
        while True:
            event = self._event(chunk, 0, is_first)
            if event is not None:
                yield event
            is_first = False
            if chunk.final:
                self.finals.append(chunk)
                return
            try:
                chunk = await anext(gen)
            except StopAsyncIteration:
                raise errors.StreamInterrupted("the upstream stream ended without its final chunk") from None

    async def _many(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[tuple[int, ChatChunk | BaseException | None]] = asyncio.Queue()

        async def pump(i: int) -> None:
            try:
                async for chunk in self._rest(i):
                    await queue.put((i, chunk))
                await queue.put((i, None))
            except BaseException as exc:  # noqa: BLE001 - handed to the writer, which raises it
                await queue.put((i, exc))

        tasks = [asyncio.ensure_future(pump(i)) for i in range(len(self.streams.gens))]
        try:
            async for event in self._drain(queue, len(tasks)):
                yield event
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _rest(self, i: int) -> AsyncIterator[ChatChunk]:
        yield self.streams.firsts[i]
        async for chunk in self.streams.gens[i]:
            yield chunk

    async def _drain(self, queue: asyncio.Queue[Any], open_count: int) -> AsyncIterator[bytes]:
        seen: set[int] = set()
        while open_count:
            i, item = await queue.get()
            if item is None:
                open_count -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            event = self._event(item, i, i not in seen)
            seen.add(i)
            if event is not None:
                yield event
            if item.final:
                self.finals.append(item)
        if len(self.finals) < len(self.streams.gens):
            raise errors.StreamInterrupted("an upstream stream ended without its final chunk")


__all__ = ["ChatStream", "Streams", "complete", "dumps", "first_errors", "open_streams", "sse"]
