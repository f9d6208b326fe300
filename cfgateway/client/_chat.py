"""The chat flows: plan in, answer out. ``send_*`` are the sync twins, ``asend_*`` the async ones; they differ
only in how they send and iterate. A plan sent in one piece (:class:`~cfgateway.calls.plan.OnePiece`) yields
its answer as one chunk plus the final chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator

from cfgateway import errors
from cfgateway.calls.limits import one_piece, response_chunks
from cfgateway.calls.outcome import finish_chat
from cfgateway.calls.plan import ChatPlan, OnePiece
from cfgateway.calls.stream import StreamRun
from cfgateway.client._parts import CallParts
from cfgateway.http.transport import adrain, drain
from cfgateway.types import ChatChunk, ChatResponse

JSON_TO_STREAM = "answered JSON to stream: true"


def send_chat(parts: CallParts, plan: ChatPlan) -> ChatResponse:
    hold = parts.books.hold_chat(plan)
    try:
        raw = parts.transport.post(plan.url, plan.headers, plan.body, model=plan.route.model,
                                   deadline=plan.ctx.deadline, pace=parts.pace(plan.route.model),
                                   tokens=plan.input_tokens)
        resp = finish_chat(plan, raw.headers, raw.content, parts.catalog)
    except errors.CloudflareError as exc:
        parts.books.failed(plan.route, plan.ctx, exc, plan.started, "chat", hold)
        raise
    parts.books.settle(resp.records, hold)
    return resp


async def asend_chat(parts: CallParts, plan: ChatPlan) -> ChatResponse:
    hold = parts.books.hold_chat(plan)
    try:
        raw = await parts.transport.apost(plan.url, plan.headers, plan.body, model=plan.route.model,
                                          deadline=plan.ctx.deadline, pace=parts.pace(plan.route.model),
                                          tokens=plan.input_tokens)
        resp = finish_chat(plan, raw.headers, raw.content, parts.catalog)
    except errors.CloudflareError as exc:
        parts.books.failed(plan.route, plan.ctx, exc, plan.started, "chat", hold)
        raise
    parts.books.settle(resp.records, hold)
    return resp


def send_stream(parts: CallParts, plan: ChatPlan) -> Iterator[ChatChunk]:
    """The chunks of a streamed call; a plan sent in one piece yields its answer as one chunk + the final one,
    and so does a stream request the route answered with JSON (sent again in one piece)."""
    if isinstance(plan.delivery, OnePiece) or not (yield from _sse(parts, plan)):
        yield from response_chunks(send_chat(parts, _in_one_piece(plan)))


def _in_one_piece(plan: ChatPlan) -> ChatPlan:
    """``plan`` sent in one piece: as planned, or because the route answered JSON to a stream request."""
    if not isinstance(plan.delivery, OnePiece):
        plan = plan.one_piece(JSON_TO_STREAM)
    assert isinstance(plan.delivery, OnePiece)
    one_piece(plan.route, plan.delivery.reason)
    return plan


def _sse(parts: CallParts, plan: ChatPlan) -> Generator[ChatChunk, None, bool]:
    """The chunks of an event stream, the final chunk last; False when the route answered JSON instead."""
    hold, run, final = parts.books.hold_chat(plan), StreamRun(plan, parts.catalog), None
    try:
        with parts.transport.stream(plan.url, plan.headers, plan.body, model=plan.route.model,
                                    deadline=plan.ctx.deadline, pace=parts.pace(plan.route.model),
                                    tokens=plan.input_tokens) as (headers, pieces):
            run.start(headers)
            if run.sse:
                for piece in pieces:
                    yield from run.feed(piece)
                    if run.done:
                        break
                final = run.end()
                parts.books.settle(final.records, hold)
                yield final  # first: the caller's work on it overlaps the wait for the body's end
                if run.ended:
                    drain(pieces)  # so the connection is reused (a caller that stops at the final chunk closes it)
    except errors.CloudflareError as exc:
        raise parts.books.stream_failed(run, exc, hold) from None
    finally:
        parts.books.stream_closed(run, hold)
    return final is not None


async def asend_stream(parts: CallParts, plan: ChatPlan) -> AsyncIterator[ChatChunk]:
    streamed = False
    if not isinstance(plan.delivery, OnePiece):
        async for chunk in _asse(parts, plan):
            streamed = True
            yield chunk
    if not streamed:  # one piece: planned so, or the route answered JSON to the stream request
        for chunk in response_chunks(await asend_chat(parts, _in_one_piece(plan))):
            yield chunk


async def _asse(parts: CallParts, plan: ChatPlan) -> AsyncIterator[ChatChunk]:
    """The async :func:`_sse`: no chunk at all when the route answered JSON instead of a stream."""
    hold, run = parts.books.hold_chat(plan), StreamRun(plan, parts.catalog)
    try:
        async with parts.transport.astream(plan.url, plan.headers, plan.body, model=plan.route.model,
                                           deadline=plan.ctx.deadline, pace=parts.pace(plan.route.model),
                                           tokens=plan.input_tokens) as (headers, pieces):
            run.start(headers)
            if run.sse:
                async for piece in pieces:
                    for chunk in run.feed(piece):
                        yield chunk
                    if run.done:
                        break
                final = run.end()
                parts.books.settle(final.records, hold)
                yield final
                if run.ended:
                    await adrain(pieces)
    except errors.CloudflareError as exc:
        raise parts.books.stream_failed(run, exc, hold) from None
    finally:
        parts.books.stream_closed(run, hold)


__all__ = ["asend_chat", "asend_stream", "send_chat", "send_stream"]
