"""The fallback chain: the same interface as :class:`~cfgateway.client.Client` (``ModelClient``).

It holds one member client per route (composition). The retry-and-fallback logic is in
:class:`~cfgateway.fallback._attempts.CallPlan` (sans-IO); each method here only loops ``next()`` → the
member client's call → ``failed()`` / ``succeeded()``, twice (sync, async). In gateway mode the calls go to
:class:`~cfgateway.fallback._gateway.GatewayMode` instead (one Universal Endpoint request per try).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from contextlib import aclosing, closing
from typing import Any, TypeVar, cast

from cfgateway import errors
from cfgateway.fallback._attempts import Attempt, CallPlan
from cfgateway.fallback._gateway import GatewayMode
from cfgateway.fallback._gateway_cache import GatewayCache
from cfgateway.fallback._setup import ChainCore
from cfgateway.fallback._shadows import ShadowRunner, ShadowTap, runner_for
from cfgateway.routing.routes import GatewayOptions, universal_url
from cfgateway.types import CallContext, ChatChunk, ChatRequest, ChatResponse, EmbedResponse

DEFAULT_EMBED_CONCURRENCY = 8
R = TypeVar("R")


class FallbackChain(ChainCore):
    """Routes ``[model, *fallbacks]`` tried in order, sharing one Settings / transport / books.

    Same methods and keywords as :class:`~cfgateway.client.Client`; ``model=`` on a call means
    "that one model, no chain". See :func:`cfgateway.fallback.build_client` for the options
    (``step_config``: extra Universal Endpoint step ``config`` in gateway mode).
    """

    def __init__(self, model: str, fallbacks: Sequence[str] = (), *, step_config: dict[str, Any] | None = None,
                 **options: Any) -> None:
        super().__init__(model, fallbacks, **options)
        self.gateway: GatewayMode | None = None
        if self.fallback_mode == "gateway":
            universal_url(self.settings)  # ConfigError naming CLOUDFLARE_AI_GATEWAY_ID when unset
            self.gateway = GatewayMode(self.parts(), step_config)
        self.shadows: ShadowRunner | None = runner_for(self)  # the routing policy's shadow, sent in the background

    def __enter__(self) -> FallbackChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> FallbackChain:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def close(self) -> None:
        if self.shadows is not None:
            self.shadows.close()  # queued shadows are dropped (counted); running ones finish
        super().close()

    async def aclose(self) -> None:
        if self.shadows is not None:
            self.shadows.close()  # as close(): closing the pool only drops queued work, it never blocks
        await super().aclose()

    # -- the loop, once per flavour ----------------------------------------------------------
    def _attempts(self, ctx: CallContext, send: Callable[[Attempt], R]) -> R:
        """``next()`` → ``send`` → ``failed()`` (maybe try again) / ``succeeded()``."""
        plan = self.attempts(ctx)
        try:
            while True:
                step = plan.next()
                if step.delay:
                    time.sleep(step.delay)
                try:
                    result = send(step)
                except errors.CloudflareError as exc:
                    if plan.failed(exc):
                        raise
                    continue
                return cast(R, plan.succeeded(result))
        finally:
            plan.close()

    async def _aattempts(self, ctx: CallContext, send: Callable[[Attempt], Awaitable[R]]) -> R:
        plan = self.attempts(ctx)
        try:
            while True:
                step = plan.next()
                if step.delay:
                    await asyncio.sleep(step.delay)
                try:
                    result = await send(step)
                except errors.CloudflareError as exc:
                    if plan.failed(exc):
                        raise
                    continue
                return cast(R, plan.succeeded(result))
        finally:
            plan.close()

    # -- chat --------------------------------------------------------------------------------
    def chat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        if model is not None:
            return self.member(model).chat(request, context=context, gateway_options=gateway_options)
        ctx = self.call_context(context, request)
        if self.gateway is not None:
            resp = self.gateway.chat(request, ctx, gateway_options)
        else:
            resp = self._attempts(ctx, lambda step: self.member(step.model).chat(
                request, context=step.ctx, gateway_options=gateway_options))
        if self.shadows is not None:
            self.shadows.after(request, ctx, resp)
        return resp

    async def achat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        if model is not None:
            return await self.member(model).achat(request, context=context, gateway_options=gateway_options)
        ctx = self.call_context(context, request)
        if self.gateway is not None:
            resp = await self.gateway.achat(request, ctx, gateway_options)
        else:
            resp = await self._aattempts(ctx, lambda step: self.member(step.model).achat(
                request, context=step.ctx, gateway_options=gateway_options))
        if self.shadows is not None:
            self.shadows.after(request, ctx, resp)
        return resp

    # -- stream ------------------------------------------------------------------------------
    def stream(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> Iterator[ChatChunk]:
        """Falls back only before the first chunk reaches the caller; later failures raise as they are."""
        if model is not None:
            yield from self.member(model).stream(request, context=context, gateway_options=gateway_options)
            return
        ctx = self.call_context(context, request)
        tap = self.shadows.tap(request, ctx) if self.shadows is not None else None
        if self.gateway is not None:
            chunks = cast(Generator[ChatChunk, None, None], self.gateway.stream(request, ctx, gateway_options))
            yield from (chunks if tap is None else tap.wrap(chunks))
            return
        plan = self.attempts(ctx)
        try:
            while True:
                step = plan.next()
                if step.delay:
                    time.sleep(step.delay)
                seen = _Seen(plan, tap)
                inner = cast(Generator[ChatChunk, None, None], self.member(step.model).stream(
                    request, context=step.ctx, gateway_options=gateway_options))
                try:
                    with closing(inner):
                        for chunk in inner:
                            yield seen(chunk)
                    return
                except errors.CloudflareError as exc:
                    if seen.ends_call(exc):
                        raise
        finally:
            plan.close()

    async def astream(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> AsyncIterator[ChatChunk]:
        if model is not None:
            single = self.member(model).astream(request, context=context, gateway_options=gateway_options)
            async with aclosing(cast(AsyncGenerator[ChatChunk, None], single)) as it:
                async for chunk in it:
                    yield chunk
            return
        ctx = self.call_context(context, request)
        tap = self.shadows.tap(request, ctx) if self.shadows is not None else None
        if self.gateway is not None:
            gen = cast(AsyncGenerator[ChatChunk, None], self.gateway.astream(request, ctx, gateway_options))
            async with aclosing(gen if tap is None else cast(AsyncGenerator[ChatChunk, None], tap.awrap(gen))) as it:
                async for chunk in it:
                    yield chunk
            return
        plan = self.attempts(ctx)
        try:
            while True:
                step = plan.next()
                if step.delay:
                    await asyncio.sleep(step.delay)
                seen = _Seen(plan, tap)
                inner = cast(AsyncGenerator[ChatChunk, None], self.member(step.model).astream(
                    request, context=step.ctx, gateway_options=gateway_options))
                try:
                    async with aclosing(inner):
                        async for chunk in inner:
                            yield seen(chunk)
                    return
                except errors.CloudflareError as exc:
                    if seen.ends_call(exc):
                        raise
        finally:
            plan.close()

    # -- embeddings --------------------------------------------------------------------------
    def embed(
        self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
        max_concurrency: int = DEFAULT_EMBED_CONCURRENCY, progress: bool = False, pooling: str | None = None,
        context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
        dimensions: int | None = None,
    ) -> EmbedResponse:
        dimensions = dimensions if dimensions is not None else self.dimensions
        kw: dict[str, Any] = {"max_concurrency": max_concurrency, "progress": progress, "pooling": pooling,
                              "gateway_options": gateway_options, "dimensions": dimensions}
        if model is not None:
            return self.member(model).embed(texts, batch_size=batch_size, context=context, **kw)
        self.check_embed_dims(dimensions)
        if self.gateway is not None:
            gateway, ctx = self.gateway, self.call_context(context)

            def send(batch: list[str]) -> EmbedResponse:
                return gateway.embed(batch, ctx, batch_size, pooling, gateway_options,
                                     max_concurrency=max_concurrency, progress=progress, dimensions=dimensions)
            cache = GatewayCache(self.member, self.models_for(ctx)[0], texts, ctx, pooling, dimensions)
            return cache.run(send) if cache.active else send(texts)
        return self._attempts(self.call_context(context), lambda step: self.member(step.model).embed(
            texts, batch_size=self.batch_size_for(step.model, batch_size), context=step.ctx, **kw))

    async def aembed(
        self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
        max_concurrency: int = DEFAULT_EMBED_CONCURRENCY, progress: bool = False, pooling: str | None = None,
        context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
        dimensions: int | None = None,
    ) -> EmbedResponse:
        dimensions = dimensions if dimensions is not None else self.dimensions
        kw: dict[str, Any] = {"max_concurrency": max_concurrency, "progress": progress, "pooling": pooling,
                              "gateway_options": gateway_options, "dimensions": dimensions}
        if model is not None:
            return await self.member(model).aembed(texts, batch_size=batch_size, context=context, **kw)
        self.check_embed_dims(dimensions)
        if self.gateway is not None:
            gateway, ctx = self.gateway, self.call_context(context)

            async def asend(batch: list[str]) -> EmbedResponse:
                return await gateway.aembed(batch, ctx, batch_size, pooling, gateway_options,
                                            max_concurrency=max_concurrency, progress=progress, dimensions=dimensions)
            cache = GatewayCache(self.member, self.models_for(ctx)[0], texts, ctx, pooling, dimensions)
            return await cache.arun(asend) if cache.active else await asend(texts)
        return await self._aattempts(self.call_context(context), lambda step: self.member(step.model).aembed(
            texts, batch_size=self.batch_size_for(step.model, batch_size), context=step.ctx, **kw))


class _Seen:
    """One streamed try's chunks on their way to the caller: the plan learns of the final chunk, the shadow tap
    sees every chunk; a failure after the first chunk ends the call (nothing falls back once text was yielded)."""

    def __init__(self, plan: CallPlan, tap: ShadowTap | None) -> None:
        self.plan, self.tap, self.started = plan, tap, False

    def __call__(self, chunk: ChatChunk) -> ChatChunk:
        if chunk.final:
            self.plan.succeeded(chunk)
        if self.tap is not None:
            self.tap.see(chunk)
        self.started = True
        return chunk

    def ends_call(self, exc: errors.CloudflareError) -> bool:
        """True when ``exc`` is raised to the caller; False when the plan tries the next route."""
        if self.started:
            self.plan.interrupted(exc)
            return True
        return self.plan.failed(exc)


__all__ = ["FallbackChain"]
