"""Gateway-side fallback (``fallback_mode="gateway"``): sending and iterating, sync and async.

The step list, the answering route and the books are in :mod:`cfgateway.fallback.universal_plan`.
Each request's body is read through the transport's stream so the ``cf-aig-step`` header is known
even when the body then breaks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from cfgateway import errors
from cfgateway.calls import Prepared, StreamRun, finish_chat, prepare_chat
from cfgateway.fallback.universal_embed import EmbedJob
from cfgateway.fallback.universal_plan import (
    GatewayCall,
    Segment,
    answering_step,
    build_steps,
    prepared_for,
    step_config,
    universal_headers,
)
from cfgateway.route_limits import one_piece, one_piece_reason, response_chunks
from cfgateway.routing.routes import GatewayOptions, universal_url
from cfgateway.types import CallContext, ChatChunk, ChatRequest, ChatResponse, EmbedResponse

if TYPE_CHECKING:
    from cfgateway.fallback.setup import ChainSetup


class UniversalMode:
    """Sends a chain's calls as Universal Endpoint requests."""

    def __init__(self, chain: ChainSetup, config: Mapping[str, Any] | None = None) -> None:
        self.chain = chain
        self.client = chain  # the chain is the Client whose transport, tracker and catalog are used
        self.url = universal_url(chain.settings)
        self.config_override = dict(config) if config else None
        # Each step gets a share of the client's read timeout (90%), so a slow step fails over inside the
        # gateway instead of the whole request timing out on our side.
        timeout_ms = chain.settings.timeout * 1000 * 0.9 / max(1, len(chain.models))
        self.default_timeout_ms = max(50, int(timeout_ms))

    # -- helpers ---------------------------------------------------------------------------
    def start(self, ctx: CallContext, operation: str = "chat") -> GatewayCall:
        routes = [self.client.route(m) for m in self.chain.models_for(ctx)]
        return GatewayCall(routes, ctx, policy=self.chain.policy, limits=self.chain.limits,
                           breaker=self.chain.breaker, operation=operation,
                           on_records=lambda records: self.client._settle(records, None))

    def options(self, call_options: GatewayOptions | None) -> GatewayOptions | None:
        return call_options or self.client.gateway_options

    def prepare(
        self, seg: Segment, req: ChatRequest, stream: bool, opts: GatewayOptions | None, ctx: CallContext
    ) -> tuple[list[Prepared], bytes, dict[str, str]]:
        cat = self.client.catalog
        # images: only the first step is checked, as in client mode; a text-only later step is the gateway's
        prepared = [prepare_chat(r, req, stream=stream, options=None, ctx=c, info=cat.get(r.model),
                                 images_checked=pos == 0)
                    for pos, (_, r, c) in enumerate(seg.steps)]
        body = build_steps(seg.routes, [p.body for p in prepared], operation="chat",
                           config=step_config(opts, self.config_override, default_timeout_ms=self.default_timeout_ms))
        meta = dict(ctx.metadata)
        if ctx.user:
            meta.setdefault("user", ctx.user)
        return prepared, body, universal_headers(self.client.settings, opts, meta)

    @staticmethod
    def label(seg: Segment) -> str:
        return "universal(" + ", ".join(r.model for r in seg.routes) + ")"

    def _failed(
        self, call: GatewayCall, seg: Segment, exc: errors.CloudflareError, k: int | None, started: float, res: Any
    ) -> bool:
        pos = k if k is not None else len(seg.steps) - 1
        _, route, ctx = seg.steps[pos]
        self.client._failed(route, ctx, exc, started, "chat", res)
        return call.failed(exc, seg, k, time.perf_counter() - started)

    # -- chat ------------------------------------------------------------------------------
    def chat(self, req: ChatRequest, ctx: CallContext, options: GatewayOptions | None) -> ChatResponse:
        call, opts = self.start(ctx), self.options(options)
        while True:
            seg = call.next()
            if seg.delay:
                time.sleep(seg.delay)
            prepared, body, headers = self.prepare(seg, req, False, opts, ctx)
            res = self.client._chat_reservation(seg.routes[0], req, ctx)
            started, k = time.perf_counter(), None
            try:
                with self.client.transport.stream(self.url, headers, body, model=self.label(seg),
                                                  deadline=ctx.deadline) as (h, it):
                    k = answering_step(h, len(prepared))
                    call.answered(seg, k)
                    content = b"".join(it)
                resp = finish_chat(prepared_for(seg.steps[k][1], prepared[k]), h, content, seg.steps[k][2],
                                   self.client.catalog)
            except errors.CloudflareError as exc:
                if self._failed(call, seg, exc, k, started, res):
                    raise
                continue
            self.client._settle(resp.records, res)
            return call.succeeded(resp, seg, k)  # type: ignore[no-any-return]

    async def achat(self, req: ChatRequest, ctx: CallContext, options: GatewayOptions | None) -> ChatResponse:
        call, opts = self.start(ctx), self.options(options)
        while True:
            seg = call.next()
            if seg.delay:
                await asyncio.sleep(seg.delay)
            prepared, body, headers = self.prepare(seg, req, False, opts, ctx)
            res = self.client._chat_reservation(seg.routes[0], req, ctx)
            started, k = time.perf_counter(), None
            try:
                async with self.client.transport.astream(self.url, headers, body, model=self.label(seg),
                                                         deadline=ctx.deadline) as (h, it):
                    k = answering_step(h, len(prepared))
                    call.answered(seg, k)
                    content = b"".join([piece async for piece in it])
                resp = finish_chat(prepared_for(seg.steps[k][1], prepared[k]), h, content, seg.steps[k][2],
                                   self.client.catalog)
            except errors.CloudflareError as exc:
                if self._failed(call, seg, exc, k, started, res):
                    raise
                continue
            self.client._settle(resp.records, res)
            return call.succeeded(resp, seg, k)  # type: ignore[no-any-return]

    # -- stream ----------------------------------------------------------------------------
    def _stream_error(
        self, call: GatewayCall, seg: Segment, exc: errors.CloudflareError, k: int | None, run: StreamRun | None,
        started: float, res: Any, yielded: bool,
    ) -> BaseException | None:
        """The error to raise, or None to go on with the next steps."""
        if run is None:
            return exc if self._failed(call, seg, exc, k, started, res) else None
        err = self.client._stream_failed(run, exc, res)
        if yielded:
            assert k is not None
            return call.interrupted(err, seg, k)
        return err if call.failed(err, seg, k, time.perf_counter() - started) else None

    def cannot_stream(self, req: ChatRequest, ctx: CallContext) -> bool:
        """True when a step cannot stream this call (JSON mode, gpt-oss on /ai/run): the whole chain is
        then one non-streamed request, yielded as one chunk plus the final chunk."""
        for route in (self.client.route(m) for m in self.chain.models_for(ctx)):
            reason = one_piece_reason(route, req, self.client.catalog.get(route.model))
            if reason is not None:
                one_piece(route, f"{reason} (a step of a gateway-mode chain)")
                return True
        return False

    def stream(self, req: ChatRequest, ctx: CallContext, options: GatewayOptions | None) -> Iterator[ChatChunk]:
        if self.cannot_stream(req, ctx):
            yield from response_chunks(self.chat(req, ctx, options))
            return
        call, opts = self.start(ctx), self.options(options)
        while True:
            seg = call.next()
            if seg.delay:
                time.sleep(seg.delay)
            prepared, body, headers = self.prepare(seg, req, True, opts, ctx)
            res = self.client._chat_reservation(seg.routes[0], req, ctx)
            started, k, run, yielded = time.perf_counter(), None, None, False
            try:
                with self.client.transport.stream(self.url, headers, body, model=self.label(seg),
                                                  deadline=ctx.deadline) as (h, it):
                    k = answering_step(h, len(prepared))
                    call.answered(seg, k)
                    run = StreamRun(prepared_for(seg.steps[k][1], prepared[k]), seg.steps[k][2], self.client.catalog)
                    run.start(h)
                    for piece in it:
                        for chunk in run.feed(piece):
                            yielded = True
                            yield chunk
                        if run.done:
                            break
                    final = run.end()
                self.client._settle(final.records, res)
                yield call.succeeded(final, seg, k)
                return
            except errors.CloudflareError as exc:
                err = self._stream_error(call, seg, exc, k, run, started, res, yielded)
                if err is not None:
                    raise err from None
            finally:
                if run is not None:
                    self.client._stream_closed(run, res)

    async def astream(
        self, req: ChatRequest, ctx: CallContext, options: GatewayOptions | None
    ) -> AsyncIterator[ChatChunk]:
        if self.cannot_stream(req, ctx):
            for chunk in response_chunks(await self.achat(req, ctx, options)):
                yield chunk
            return
        call, opts = self.start(ctx), self.options(options)
        while True:
            seg = call.next()
            if seg.delay:
                await asyncio.sleep(seg.delay)
            prepared, body, headers = self.prepare(seg, req, True, opts, ctx)
            res = self.client._chat_reservation(seg.routes[0], req, ctx)
            started, k, run, yielded = time.perf_counter(), None, None, False
            try:
                async with self.client.transport.astream(self.url, headers, body, model=self.label(seg),
                                                         deadline=ctx.deadline) as (h, it):
                    k = answering_step(h, len(prepared))
                    call.answered(seg, k)
                    run = StreamRun(prepared_for(seg.steps[k][1], prepared[k]), seg.steps[k][2], self.client.catalog)
                    run.start(h)
                    async for piece in it:
                        for chunk in run.feed(piece):
                            yielded = True
                            yield chunk
                        if run.done:
                            break
                    final = run.end()
                self.client._settle(final.records, res)
                yield call.succeeded(final, seg, k)
                return
            except errors.CloudflareError as exc:
                err = self._stream_error(call, seg, exc, k, run, started, res, yielded)
                if err is not None:
                    raise err from None
            finally:
                if run is not None:
                    self.client._stream_closed(run, res)

    # -- embeddings ------------------------------------------------------------------------
    def embed(
        self, texts: list[str], ctx: CallContext, batch_size: int | None, pooling: str | None,
        options: GatewayOptions | None, **job_options: Any,
    ) -> EmbedResponse:
        """``job_options``: ``max_concurrency`` and ``progress``, as for :meth:`Client.embed`."""
        call = self.start(ctx, "embed")
        job = EmbedJob(self, texts, ctx, batch_size, pooling, self.options(options), **job_options)
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
            return call.succeeded(resp, seg, job.answered or 0)  # type: ignore[no-any-return]

    async def aembed(
        self, texts: list[str], ctx: CallContext, batch_size: int | None, pooling: str | None,
        options: GatewayOptions | None, **job_options: Any,
    ) -> EmbedResponse:
        call = self.start(ctx, "embed")
        job = EmbedJob(self, texts, ctx, batch_size, pooling, self.options(options), **job_options)
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
            return call.succeeded(resp, seg, job.answered or 0)  # type: ignore[no-any-return]


__all__ = ["UniversalMode"]
