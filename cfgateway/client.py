"""The core client: ``chat``, ``stream``, ``embed`` (sync) and ``achat``, ``astream``, ``aembed`` (async).

The logic lives in :mod:`cfgateway.calls` and :mod:`cfgateway.embedding` (sans-IO); the
methods here only send and iterate. :class:`AsyncClient` is the same object with the async
methods under the plain names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from cfgateway import errors
from cfgateway.calls import StreamRun, failed_record, finish_chat, prepare_chat
from cfgateway.config import Settings, load_settings
from cfgateway.costs.budget import CostTracker
from cfgateway.costs.catalog import Catalog, ModelInfo, load_catalog
from cfgateway.costs.ledger import UsageRecord, open_ledger
from cfgateway.costs.pricing import custom_cost_header, estimate_tokens
from cfgateway.embedding import (
    EmbedBatch,
    batch_error,
    batch_size_for,
    check_inputs,
    finish_batch,
    gather_or_cancel,
    merge,
    prepare_batches,
    progress_bar,
)
from cfgateway.http.transport import RawResponse, Transport
from cfgateway.route_limits import one_piece, one_piece_reason, response_chunks
from cfgateway.routing.routes import Endpoint, GatewayOptions, Route, resolve_route
from cfgateway.types import CallContext, ChatChunk, ChatRequest, ChatResponse, EmbedResponse

DEFAULT_MAX_OUTPUT = 4096
DEFAULT_EMBED_CONCURRENCY = 8

_Part = Any  # (vectors, usage, gateway, record)


class Client:
    """One model string (or a per-call ``model=``) over one pooled transport."""

    def __init__(
        self,
        model: str | None = None,
        *,
        settings: Settings | None = None,
        endpoint: Endpoint = "auto",
        gateway_options: GatewayOptions | None = None,
        tracker: CostTracker | None = None,
        catalog: Catalog | None = None,
        transport: Transport | None = None,
        **setting_overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(**setting_overrides)
        self.model = model
        self.endpoint = endpoint
        self.gateway_options = gateway_options
        self.catalog = catalog or load_catalog(self.settings.catalog)
        if tracker is None and self.settings.ledger:
            tracker = CostTracker(open_ledger(self.settings.ledger), catalog=self.catalog)
        self.tracker = tracker
        self.transport = transport or Transport(timeout=self.settings.timeout, max_retries=self.settings.max_retries)
        self._routes: dict[str, Route] = {}
        if model is not None:
            self.route(model)  # fail fast on a bad model string or missing settings

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, settings={self.settings!r})"

    # -- routing -------------------------------------------------------------------------
    def route(self, model: str | None = None) -> Route:
        name = model or self.model
        if not name:
            raise errors.ConfigError("no model: pass model= to the client or to the call")
        route = self._routes.get(name)
        if route is None:
            route = self._routes[name] = self._with_custom_cost(resolve_route(name, self.settings, self.endpoint))
        return route

    def _with_custom_cost(self, route: Route) -> Route:
        """Send ``cf-aig-custom-cost`` for user-priced models so the gateway's analytics agree with ours."""
        info = self.catalog.get(route.model)
        if not (route.via_gateway and info and info.custom and info.input_price is not None):
            return route
        header = custom_cost_header(info.input_price, info.output_price or 0)
        return replace(route, headers={**route.headers, "cf-aig-custom-cost": header})

    def model_info(self, model: str | None = None) -> ModelInfo | None:
        return self.catalog.get(self.route(model).model)

    def _ctx(self, context: CallContext | None, req: ChatRequest | None = None) -> CallContext:
        if context is not None:
            return context
        return CallContext(user=req.user if req else None, metadata=dict(req.metadata) if req else {})

    # -- budget hooks ----------------------------------------------------------------------
    def _reserve(self, route: Route, ctx: CallContext, input_tokens: int, max_output: int) -> Any:
        if self.tracker is None:
            return None
        return self.tracker.reserve(
            model=route.model, provider=route.provider, user=ctx.user, input_tokens=input_tokens,
            max_output_tokens=max_output,
        )

    def _settle(self, records: list[UsageRecord], reservation: Any) -> None:
        if self.tracker is None:
            return
        for i, rec in enumerate(records):
            records[i] = self.tracker.record(rec, reservation if i == len(records) - 1 else None)

    def _failed(self, route: Route, ctx: CallContext, exc: BaseException, started: float, op: str, res: Any) -> None:
        rec = failed_record(route, ctx, exc, started, op)
        self._settle([rec], res)
        exc.records = [rec]  # type: ignore[attr-defined]

    def _chat_reservation(self, route: Route, req: ChatRequest, ctx: CallContext) -> Any:
        if self.tracker is None:
            return None
        tokens = sum(estimate_tokens(m.text()) + 4 for m in req.messages)
        return self._reserve(route, ctx, tokens, req.max_tokens or DEFAULT_MAX_OUTPUT)

    # -- chat ------------------------------------------------------------------------------
    def chat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        route, ctx = self.route(model), self._ctx(context, request)
        p = prepare_chat(route, request, stream=False, options=gateway_options or self.gateway_options, ctx=ctx,
                         info=self.catalog.get(route.model))
        res = self._chat_reservation(route, request, ctx)
        try:
            raw = self.transport.post(p.url, p.headers, p.body, model=route.model, deadline=ctx.deadline)
            resp = finish_chat(p, raw.headers, raw.content, ctx, self.catalog)
        except errors.CloudflareError as exc:
            self._failed(route, ctx, exc, p.started, "chat", res)
            raise
        self._settle(resp.records, res)
        return resp

    async def achat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        route, ctx = self.route(model), self._ctx(context, request)
        p = prepare_chat(route, request, stream=False, options=gateway_options or self.gateway_options, ctx=ctx,
                         info=self.catalog.get(route.model))
        res = self._chat_reservation(route, request, ctx)
        try:
            raw = await self.transport.apost(p.url, p.headers, p.body, model=route.model, deadline=ctx.deadline)
            resp = finish_chat(p, raw.headers, raw.content, ctx, self.catalog)
        except errors.CloudflareError as exc:
            self._failed(route, ctx, exc, p.started, "chat", res)
            raise
        self._settle(resp.records, res)
        return resp

    def _stream_failed(self, run: StreamRun, exc: errors.CloudflareError, res: Any) -> BaseException:
        if run.first and not run.text:  # nothing reached the caller: the error as it is (fallback may act)
            self._failed(run.p.route, run.ctx, exc, run.p.started, "chat", res)
            return exc
        err = run.interrupted(exc)
        if run.record is not None:
            self._settle([run.record], res)
            err.records = [run.record]  # type: ignore[attr-defined]
        return err

    def _stream_closed(self, run: StreamRun, res: Any) -> None:
        """The caller stopped iterating early: record what was received as incomplete."""
        if not run.sse:  # refused to stream: nothing was used; the call is re-sent without streaming
            if self.tracker is not None:
                self.tracker.release(res)
            return
        if run.record is None:
            run.interrupted(errors.StreamInterrupted("the caller closed the stream", text=run.text))
            if run.record is not None:
                run.record.outcome = "cancelled"
                self._settle([run.record], res)

    def _open_stream(
        self, request: ChatRequest, model: str | None, context: CallContext | None,
        gateway_options: GatewayOptions | None,
    ) -> tuple[dict[str, Any], StreamRun | None, Any]:
        """``(chat kwargs, run, reservation)``; ``run`` is None when the route cannot stream this call."""
        route, ctx = self.route(model), self._ctx(context, request)
        kw: dict[str, Any] = {"model": model, "context": ctx, "gateway_options": gateway_options}
        info = self.catalog.get(route.model)
        reason = one_piece_reason(route, request, info)
        if reason is not None:
            one_piece(route, reason)
            return kw, None, None
        opts = gateway_options or self.gateway_options
        p = prepare_chat(route, request, stream=True, options=opts, ctx=ctx, info=info)
        return kw, StreamRun(p, ctx, self.catalog), self._chat_reservation(route, request, ctx)

    def _stream_final(self, run: StreamRun, res: Any) -> ChatChunk | None:
        if not run.sse:
            return None
        final = run.end()
        self._settle(final.records, res)
        return final

    def stream(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> Iterator[ChatChunk]:
        kw, run, res = self._open_stream(request, model, context, gateway_options)
        if run is None:
            yield from response_chunks(self.chat(request, **kw))
            return
        p = run.p
        try:
            with self.transport.stream(p.url, p.headers, p.body, model=p.route.model,
                                       deadline=run.ctx.deadline) as (h, it):
                run.start(h)
                for piece in it if run.sse else ():
                    yield from run.feed(piece)
                    if run.done:
                        break
                final = self._stream_final(run, res)
            if final is not None:
                yield final
        except errors.CloudflareError as exc:
            raise self._stream_failed(run, exc, res) from None
        finally:
            self._stream_closed(run, res)
        if not run.sse:
            one_piece(p.route, None)
            yield from response_chunks(self.chat(request, **kw))

    async def astream(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> AsyncIterator[ChatChunk]:
        kw, run, res = self._open_stream(request, model, context, gateway_options)
        if run is None:
            for chunk in response_chunks(await self.achat(request, **kw)):
                yield chunk
            return
        p = run.p
        try:
            async with self.transport.astream(p.url, p.headers, p.body, model=p.route.model,
                                              deadline=run.ctx.deadline) as (h, it):
                run.start(h)
                if run.sse:
                    async for piece in it:
                        for chunk in run.feed(piece):
                            yield chunk
                        if run.done:
                            break
                final = self._stream_final(run, res)
            if final is not None:
                yield final
        except errors.CloudflareError as exc:
            raise self._stream_failed(run, exc, res) from None
        finally:
            self._stream_closed(run, res)
        if not run.sse:
            one_piece(p.route, None)
            for chunk in response_chunks(await self.achat(request, **kw)):
                yield chunk

    # -- embeddings ------------------------------------------------------------------------
    def _embed_plan(
        self, texts: list[str], model: str | None, batch_size: int | None, pooling: str | None,
        ctx: CallContext, options: GatewayOptions | None, dimensions: int | None = None,
    ) -> tuple[Route, list[EmbedBatch], Any]:
        route = self.route(model)
        info = self.catalog.get(route.model)
        check_inputs(texts, info, route.model)
        size = batch_size_for(info, batch_size)
        batches = prepare_batches(route, texts, size, pooling=pooling, options=options or self.gateway_options, ctx=ctx,
                                  dimensions=dimensions, info=info)
        res = self._reserve(route, ctx, sum(estimate_tokens(t) for t in texts), 0) if texts else None
        return route, batches, res

    def _batch_failed(self, b: EmbedBatch, ctx: CallContext, exc: errors.CloudflareError) -> errors.CloudflareError:
        self._failed(b.route, ctx, exc, b.started, "embed", None)
        return batch_error(b, exc)

    def _embed_post(self, b: EmbedBatch, ctx: CallContext) -> RawResponse:
        b.started = time.perf_counter()
        try:
            return self.transport.post(b.url, b.headers, b.body, model=b.route.model, deadline=ctx.deadline)
        except errors.CloudflareError as exc:
            raise self._batch_failed(b, ctx, exc) from None

    def _embed_done(self, b: EmbedBatch, raw: RawResponse, ctx: CallContext, bar: Callable[[int], None]) -> _Part:
        try:
            part = finish_batch(b, raw.headers, raw.content, ctx, self.catalog)
        except errors.CloudflareError as exc:
            raise self._batch_failed(b, ctx, exc) from None
        bar(b.count)
        return part

    async def _aembed_one(self, b: EmbedBatch, ctx: CallContext, sem: asyncio.Semaphore) -> _Part:
        async with sem:  # a slot covers the request only, not the decoding of its answer
            b.started = time.perf_counter()
            try:
                raw = await self.transport.apost(b.url, b.headers, b.body, model=b.route.model, deadline=ctx.deadline)
            except errors.CloudflareError as exc:
                raise self._batch_failed(b, ctx, exc) from None
        # Let the task woken by the freed slot send its request before this one decodes (~1-2 ms of CPU
        # for 100 vectors): the next batch's network wait then overlaps this batch's decoding.
        await asyncio.sleep(0)
        try:
            return finish_batch(b, raw.headers, raw.content, ctx, self.catalog)
        except errors.CloudflareError as exc:
            raise self._batch_failed(b, ctx, exc) from None

    def embed(
        self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
        max_concurrency: int = DEFAULT_EMBED_CONCURRENCY, progress: bool = False, pooling: str | None = None,
        context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
        dimensions: int | None = None,
    ) -> EmbedResponse:
        """Embed ``texts`` in batches at the model's limit, ``max_concurrency`` requests at a time, in order."""
        ctx, started = self._ctx(context), time.perf_counter()
        route, batches, res = self._embed_plan(texts, model, batch_size, pooling, ctx, gateway_options, dimensions)
        bar = progress_bar(progress, len(texts), route.model)
        try:
            if len(batches) <= 1 or max_concurrency <= 1:
                parts = [self._embed_done(b, self._embed_post(b, ctx), ctx, bar) for b in batches]
            else:  # threads only send; this thread decodes, in order, while they wait on the network
                with ThreadPoolExecutor(max_workers=min(max_concurrency, len(batches))) as pool:
                    sent = pool.map(lambda b: self._embed_post(b, ctx), batches)  # a failure cancels the rest
                    parts = [self._embed_done(b, raw, ctx, bar) for b, raw in zip(batches, sent, strict=True)]
        finally:
            bar(None)
        self._settle([p[3] for p in parts], res)
        return merge(route, parts, started)

    async def aembed(
        self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
        max_concurrency: int = DEFAULT_EMBED_CONCURRENCY, progress: bool = False, pooling: str | None = None,
        context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
        dimensions: int | None = None,
    ) -> EmbedResponse:
        ctx, started = self._ctx(context), time.perf_counter()
        route, batches, res = self._embed_plan(texts, model, batch_size, pooling, ctx, gateway_options, dimensions)
        bar = progress_bar(progress, len(texts), route.model)
        sem = asyncio.Semaphore(max(1, max_concurrency))

        async def run(b: EmbedBatch) -> _Part:
            part = await self._aembed_one(b, ctx, sem)
            bar(b.count)
            return part

        try:
            parts = await gather_or_cancel([run(b) for b in batches])  # a failure stops the batches not yet sent
        finally:
            bar(None)
        self._settle([p[3] for p in parts], res)
        return merge(route, parts, started)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.transport.close()

    async def aclose(self) -> None:
        await self.transport.aclose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(Client):
    """The same client with the async methods under the plain names (``await client.chat(...)``)."""

    async def chat(self, *a: Any, **k: Any) -> ChatResponse:  # type: ignore[override]
        return await Client.achat(self, *a, **k)

    def stream(self, *a: Any, **k: Any) -> AsyncIterator[ChatChunk]:  # type: ignore[override]
        return Client.astream(self, *a, **k)

    async def embed(self, *a: Any, **k: Any) -> EmbedResponse:  # type: ignore[override]
        return await Client.aembed(self, *a, **k)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["AsyncClient", "CallContext", "Client"]
