"""The client-side fallback chain: the same interface as :class:`~cfgateway.client.Client`.

The logic is in :class:`~cfgateway.fallback.plan.CallPlan` (sans-IO); each method here only loops
``next()`` → send through the inner client → ``failed()`` / ``succeeded()``, twice (sync, async).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import aclosing, closing
from typing import Any, TypeVar, cast

from cfgateway import errors
from cfgateway.client import Client
from cfgateway.fallback.plan import Attempt
from cfgateway.fallback.setup import ChainSetup
from cfgateway.routing.routes import GatewayOptions
from cfgateway.types import CallContext, ChatChunk, ChatRequest, ChatResponse, EmbedResponse

DEFAULT_EMBED_CONCURRENCY = 8
R = TypeVar("R")


class FallbackChain(ChainSetup):
    """Routes ``[model, *fallbacks]`` tried in order, sharing one Settings / transport / tracker.

    Same methods and keywords as :class:`~cfgateway.client.Client`; ``model=`` on a call means
    "that one model, no chain". See :func:`cfgateway.fallback.build_client` for the options.
    """

    # -- the loop, once per flavour ----------------------------------------------------------
    def _attempts(self, ctx: CallContext, send: Callable[[Attempt], R]) -> R:
        """``next()`` → ``send`` → ``failed()`` (maybe try again) / ``succeeded()``."""
        plan = self.plan(ctx)
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
        plan = self.plan(ctx)
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
            return Client.chat(self, request, model=model, context=context, gateway_options=gateway_options)
        if self.universal is not None:
            return self.universal.chat(request, self.call_context(context, request), gateway_options)
        return self._attempts(self.call_context(context, request), lambda step: Client.chat(self,
            request, model=step.model, context=step.ctx, gateway_options=gateway_options))

    async def achat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        if model is not None:
            return await Client.achat(self, request, model=model, context=context, gateway_options=gateway_options)
        if self.universal is not None:
            return await self.universal.achat(request, self.call_context(context, request), gateway_options)
        return await self._aattempts(self.call_context(context, request), lambda step: Client.achat(self,
            request, model=step.model, context=step.ctx, gateway_options=gateway_options))

    # -- stream ------------------------------------------------------------------------------
    def stream(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> Iterator[ChatChunk]:
        """Falls back only before the first chunk reaches the caller; later failures raise as they are."""
        if model is not None:
            yield from super().stream(request, model=model, context=context, gateway_options=gateway_options)
            return
        if self.universal is not None:
            yield from self.universal.stream(request, self.call_context(context, request), gateway_options)
            return
        plan = self.plan(self.call_context(context, request))
        try:
            while True:
                step = plan.next()
                if step.delay:
                    time.sleep(step.delay)
                started = False
                inner = cast(Generator[ChatChunk, None, None], super().stream(
                    request, model=step.model, context=step.ctx, gateway_options=gateway_options))
                try:
                    with closing(inner):
                        for chunk in inner:
                            if chunk.final:
                                plan.succeeded(chunk)
                            started = True
                            yield chunk
                    return
                except errors.CloudflareError as exc:
                    if started:
                        plan.interrupted(exc)
                        raise
                    if plan.failed(exc):
                        raise
        finally:
            plan.close()

    async def astream(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> AsyncIterator[ChatChunk]:
        if model is not None:
            single = super().astream(request, model=model, context=context, gateway_options=gateway_options)
            async with aclosing(cast(AsyncGenerator[ChatChunk, None], single)) as it:
                async for chunk in it:
                    yield chunk
            return
        if self.universal is not None:
            gen = self.universal.astream(request, self.call_context(context, request), gateway_options)
            async with aclosing(cast(AsyncGenerator[ChatChunk, None], gen)) as it:
                async for chunk in it:
                    yield chunk
            return
        plan = self.plan(self.call_context(context, request))
        try:
            while True:
                step = plan.next()
                if step.delay:
                    await asyncio.sleep(step.delay)
                started = False
                inner = cast(AsyncGenerator[ChatChunk, None], super().astream(
                    request, model=step.model, context=step.ctx, gateway_options=gateway_options))
                try:
                    async with aclosing(inner):
                        async for chunk in inner:
                            if chunk.final:
                                plan.succeeded(chunk)
                            started = True
                            yield chunk
                    return
                except errors.CloudflareError as exc:
                    if started:
                        plan.interrupted(exc)
                        raise
                    if plan.failed(exc):
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
            return Client.embed(self, texts, model=model, batch_size=batch_size, context=context, **kw)
        self.check_embed_dims(dimensions)
        if self.universal is not None:
            return self.universal.embed(texts, self.call_context(context), batch_size, pooling, gateway_options,
                                        max_concurrency=max_concurrency, progress=progress, dimensions=dimensions)
        return self._attempts(self.call_context(context), lambda step: Client.embed(self,
            texts, model=step.model, batch_size=self.batch_size_for(step.model, batch_size), context=step.ctx, **kw))

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
            return await Client.aembed(self, texts, model=model, batch_size=batch_size, context=context, **kw)
        self.check_embed_dims(dimensions)
        if self.universal is not None:
            return await self.universal.aembed(texts, self.call_context(context), batch_size, pooling,
                                               gateway_options, max_concurrency=max_concurrency, progress=progress,
                                               dimensions=dimensions)
        return await self._aattempts(self.call_context(context), lambda step: Client.aembed(self,
            texts, model=step.model, batch_size=self.batch_size_for(step.model, batch_size), context=step.ctx, **kw))


__all__ = ["FallbackChain"]
