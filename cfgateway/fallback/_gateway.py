"""Gateway-side fallback (``fallback_mode="gateway"``): sending and iterating, sync and async.

Each try is one Universal Endpoint request carrying every remaining route as a step, planned with the
same :func:`~cfgateway.calls.plan.plan_chat` as a client call (one plan per step, bodies kept as dicts).
The step list, the answering route and the call's story are in :mod:`cfgateway.fallback._gateway_plan`.
The body is read through the transport's stream so ``cf-aig-step`` is known even when the body then breaks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from cfgateway import errors
from cfgateway.calls.books import Hold
from cfgateway.calls.limits import one_piece, one_piece_reason, response_chunks
from cfgateway.calls.outcome import finish_chat
from cfgateway.calls.plan import ChatPlan, call_metadata, plan_chat
from cfgateway.calls.stream import StreamRun
from cfgateway.fallback._gateway_embed import EmbedJob, label
from cfgateway.fallback._gateway_plan import (
    GatewayCall,
    Segment,
    answered_by,
    answering_step,
    build_steps,
    step_config,
    universal_headers,
)
from cfgateway.fallback._setup import ChainParts
from cfgateway.routing.routes import GatewayOptions, universal_url
from cfgateway.types import CallContext, ChatChunk, ChatRequest, ChatResponse, EmbedResponse

Request = tuple[list[ChatPlan], list[dict[str, Any]], dict[str, str]]  # step plans, body, headers


class GatewayMode:
    """Sends a chain's calls as Universal Endpoint requests."""

    def __init__(self, parts: ChainParts, config: Mapping[str, Any] | None = None) -> None:
        self.parts = parts
        self.url = universal_url(parts.settings)
        self.config_override = dict(config) if config else None
        # Each step gets a share of the client's read timeout (90%), so a slow step fails over inside the
        # gateway instead of the whole request timing out on our side.
        timeout_ms = parts.settings.timeout * 1000 * 0.9 / max(1, len(parts.models))
        self.default_timeout_ms = max(50, int(timeout_ms))

    # -- helpers ---------------------------------------------------------------------------
    def start(self, ctx: CallContext, operation: str = "chat") -> GatewayCall:
        p = self.parts
        routes = [p.route(m) for m in p.models_for(ctx)]
        return GatewayCall(routes, ctx, policy=p.policy, limits=p.limits, breaker=p.breaker, operation=operation,
                           on_records=lambda records: p.books.settle(records, None))

    def options(self, call_options: GatewayOptions | None) -> GatewayOptions | None:
        return call_options or self.parts.gateway_options

    def step_config(self, opts: GatewayOptions | None) -> dict[str, Any] | None:
        return step_config(opts, self.config_override, default_timeout_ms=self.default_timeout_ms)

    def request(self, seg: Segment, req: ChatRequest, stream: bool, opts: GatewayOptions | None,
                ctx: CallContext) -> Request:
        """One plan per step (images checked on the first only, as in client mode), the steps, the headers."""
        cat = self.parts.catalog
        plans = [plan_chat(step.route, req, stream=stream, options=None, ctx=step.ctx,
                           info=cat.get(step.route.model), images_checked=pos == 0)
                 for pos, step in enumerate(seg.steps)]
        body = build_steps(seg.routes, [p.body for p in plans], operation="chat", config=self.step_config(opts))
        return plans, body, universal_headers(self.parts.settings, opts, call_metadata(ctx))

    label = staticmethod(label)

    def _failed(self, call: GatewayCall, seg: Segment, exc: errors.CloudflareError, k: int | None, started: float,
                hold: Hold) -> bool:
        step = seg.steps[k if k is not None else len(seg.steps) - 1]
        self.parts.books.failed(step.route, step.ctx, exc, started, "chat", hold)
        return call.failed(exc, seg, k, time.perf_counter() - started)

    def _stream_error(
        self, call: GatewayCall, seg: Segment, exc: errors.CloudflareError, k: int | None, run: StreamRun | None,
        started: float, hold: Hold,
    ) -> BaseException | None:
        """The error to raise, or None to go on with the next steps."""
        if run is None:
            return exc if self._failed(call, seg, exc, k, started, hold) else None
        err = self.parts.books.stream_failed(run, exc, hold)
        if not run.first:
            assert k is not None
            return call.interrupted(err, seg, k)
        return err if call.failed(err, seg, k, time.perf_counter() - started) else None

    def cannot_stream(self, req: ChatRequest, ctx: CallContext) -> bool:
        """True when a step cannot stream this call (JSON mode, gpt-oss on /ai/run): the whole chain is
        then one non-streamed request, yielded as one chunk plus the final chunk."""
        p = self.parts
        for route in (p.route(m) for m in p.models_for(ctx)):
            reason = one_piece_reason(route, req, p.catalog.get(route.model))
            if reason is not None:
                one_piece(route, f"{reason} (a step of a gateway-mode chain)")
                return True
        return False

    def paced(self, first: ChatPlan) -> dict[str, Any]:
        """The transport's pacing for a request: the first step's rate limit (the step every request reaches;
        later steps run only when it fails, inside the same request, and are not paced)."""
        return {"pace": self.parts.pace(first.route.model), "tokens": first.input_tokens}

    # -- chat ------------------------------------------------------------------------------
    def chat(self, req: ChatRequest, ctx: CallContext, options: GatewayOptions | None) -> ChatResponse:
        call, opts, books = self.start(ctx), self.options(options), self.parts.books
        while True:
            seg = call.next()
            if seg.delay:
                time.sleep(seg.delay)
            plans, body, headers = self.request(seg, req, False, opts, ctx)
            hold, started, k = books.hold_chat(plans[0]), time.perf_counter(), None
            try:
                with self.parts.transport.stream(self.url, headers, body, model=self.label(seg),
                                                 deadline=ctx.deadline, **self.paced(plans[0])) as (h, it):
                    k = answering_step(h, len(plans))
                    call.answered(seg, k)
                    content = b"".join(it)
                resp = finish_chat(answered_by(plans[k]), h, content, self.parts.catalog)
            except errors.CloudflareError as exc:
                if self._failed(call, seg, exc, k, started, hold):
                    raise
                continue
            books.settle(resp.records, hold)
            return call.succeeded(resp, seg, k)

    async def achat(self, req: ChatRequest, ctx: CallContext, options: GatewayOptions | None) -> ChatResponse:
        call, opts, books = self.start(ctx), self.options(options), self.parts.books
        while True:
            seg = call.next()
            if seg.delay:
                await asyncio.sleep(seg.delay)
            plans, body, headers = self.request(seg, req, False, opts, ctx)
            hold, started, k = books.hold_chat(plans[0]), time.perf_counter(), None
            try:
                async with self.parts.transport.astream(self.url, headers, body, model=self.label(seg),
                                                        deadline=ctx.deadline, **self.paced(plans[0])) as (h, it):
                    k = answering_step(h, len(plans))
                    call.answered(seg, k)
                    content = b"".join([piece async for piece in it])
                resp = finish_chat(answered_by(plans[k]), h, content, self.parts.catalog)
            except errors.CloudflareError as exc:
                if self._failed(call, seg, exc, k, started, hold):
                    raise
                continue
            books.settle(resp.records, hold)
            return call.succeeded(resp, seg, k)

    # -- stream ----------------------------------------------------------------------------
    def stream(self, req: ChatRequest, ctx: CallContext, options: GatewayOptions | None) -> Iterator[ChatChunk]:
        if self.cannot_stream(req, ctx):
            yield from response_chunks(self.chat(req, ctx, options))
            return
        call, opts, books = self.start(ctx), self.options(options), self.parts.books
        while True:
            seg = call.next()
            if seg.delay:
                time.sleep(seg.delay)
            plans, body, headers = self.request(seg, req, True, opts, ctx)
            hold, started, k, run = books.hold_chat(plans[0]), time.perf_counter(), None, None
            try:
                with self.parts.transport.stream(self.url, headers, body, model=self.label(seg),
                                                 deadline=ctx.deadline, **self.paced(plans[0])) as (h, it):
                    k = answering_step(h, len(plans))
                    call.answered(seg, k)
                    run = StreamRun(answered_by(plans[k]), self.parts.catalog)
                    run.start(h)
                    for piece in it:
                        yield from run.feed(piece)
                        if run.done:
                            break
                    final = run.end()
                books.settle(final.records, hold)
                yield call.succeeded(final, seg, k)
                return
            except errors.CloudflareError as exc:
                err = self._stream_error(call, seg, exc, k, run, started, hold)
                if err is not None:
                    raise err from None
            finally:
                if run is not None:
                    books.stream_closed(run, hold)

    async def astream(
        self, req: ChatRequest, ctx: CallContext, options: GatewayOptions | None
    ) -> AsyncIterator[ChatChunk]:
        if self.cannot_stream(req, ctx):
            for chunk in response_chunks(await self.achat(req, ctx, options)):
                yield chunk
            return
        call, opts, books = self.start(ctx), self.options(options), self.parts.books
        while True:
            seg = call.next()
            if seg.delay:
                await asyncio.sleep(seg.delay)
            plans, body, headers = self.request(seg, req, True, opts, ctx)
            hold, started, k, run = books.hold_chat(plans[0]), time.perf_counter(), None, None
            try:
                async with self.parts.transport.astream(self.url, headers, body, model=self.label(seg),
                                                        deadline=ctx.deadline, **self.paced(plans[0])) as (h, it):
                    k = answering_step(h, len(plans))
                    call.answered(seg, k)
                    run = StreamRun(answered_by(plans[k]), self.parts.catalog)
                    run.start(h)
                    async for piece in it:
                        for chunk in run.feed(piece):
                            yield chunk
                        if run.done:
                            break
                    final = run.end()
                books.settle(final.records, hold)
                yield call.succeeded(final, seg, k)
                return
            except errors.CloudflareError as exc:
                err = self._stream_error(call, seg, exc, k, run, started, hold)
                if err is not None:
                    raise err from None
            finally:
                if run is not None:
                    books.stream_closed(run, hold)

    # -- embeddings ------------------------------------------------------------------------
    def embed(self, texts: list[str], ctx: CallContext, batch_size: int | None, pooling: str | None,
              options: GatewayOptions | None, **job_options: Any) -> EmbedResponse:
        """``job_options``: ``max_concurrency``, ``progress`` and ``dimensions``, as for ``Client.embed``."""
        opts = self.options(options)
        call = self.start(ctx, "embed")
        job = EmbedJob(self.parts, self.url, self.step_config(opts), texts, ctx, batch_size, pooling, opts,
                       **job_options)
        job.on_answer = call.answered
        while True:
            seg = call.next()
            if seg.delay:
                time.sleep(seg.delay)
            try:
                resp = job.run(seg)
            except errors.CloudflareError as exc:
                if call.failed(exc, seg, job.answered, job.latency()):
                    raise
                continue
            return call.succeeded(resp, seg, job.answered or 0)

    async def aembed(self, texts: list[str], ctx: CallContext, batch_size: int | None, pooling: str | None,
                     options: GatewayOptions | None, **job_options: Any) -> EmbedResponse:
        opts = self.options(options)
        call = self.start(ctx, "embed")
        job = EmbedJob(self.parts, self.url, self.step_config(opts), texts, ctx, batch_size, pooling, opts,
                       **job_options)
        job.on_answer = call.answered
        while True:
            seg = call.next()
            if seg.delay:
                await asyncio.sleep(seg.delay)
            try:
                resp = await job.arun(seg)
            except errors.CloudflareError as exc:
                if call.failed(exc, seg, job.answered, job.latency()):
                    raise
                continue
            return call.succeeded(resp, seg, job.answered or 0)


__all__ = ["GatewayMode"]
