"""The client-side fallback chain: the same interface as :class:`~cfgateway.client.Client`.

The logic is in :class:`~cfgateway.fallback.plan.CallPlan` (sans-IO); each method here only loops
``next()`` → send through the inner client → ``failed()`` / ``succeeded()``, twice (sync, async).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from contextlib import aclosing, closing
from typing import Any, cast

from cfgateway import errors
from cfgateway.calls import CallContext
from cfgateway.fallback.plan import CallPlan
from cfgateway.fallback.setup import ChainSetup
from cfgateway.routes import GatewayOptions
from cfgateway.types import ChatChunk, ChatRequest, ChatResponse, EmbedResponse

DEFAULT_EMBED_CONCURRENCY = 8


class FallbackChain(ChainSetup):
    """Routes ``[model, *fallbacks]`` tried in order, sharing one Settings / transport / tracker.

    Same methods and keywords as :class:`~cfgateway.client.Client`; ``model=`` on a call means
    "that one model, no chain". See :func:`cfgateway.fallback.build_client` for the options.
    """

    # -- chat --------------------------------------------------------------------------------
    def chat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        if model is not None:
            return super().chat(request, model=model, context=context, gateway_options=gateway_options)
        if self.universal is not None:
            return self.universal.chat(request, self.call_context(context, request), gateway_options)
        plan = self.plan(self.call_context(context, request))
        try:
            while True:
                step = plan.next()
                if step.delay:
                    time.sleep(step.delay)
                try:
                    resp = super().chat(request, model=step.model, context=step.ctx,
                                            gateway_options=gateway_options)
                except errors.CloudflareError as exc:
                    if plan.failed(exc):
                        raise
                    continue
                return plan.succeeded(resp)  # type: ignore[no-any-return]
        finally:
            plan.close()

    async def achat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        if model is not None:
            return await super().achat(request, model=model, context=context, gateway_options=gateway_options)
        if self.universal is not None:
            return await self.universal.achat(request, self.call_context(context, request), gateway_options)
        plan = self.plan(self.call_context(context, request))
        try:
            while True:
                step = plan.next()
                if step.delay:
                    await asyncio.sleep(step.delay)
                try:
                    resp = await super().achat(request, model=step.model, context=step.ctx,
                                                   gateway_options=gateway_options)
                except errors.CloudflareError as exc:
                    if plan.failed(exc):
                        raise
                    continue
                return plan.succeeded(resp)  # type: ignore[no-any-return]
        finally:
            plan.close()

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
    ) -> EmbedResponse:
        kw: dict[str, Any] = {"max_concurrency": max_concurrency, "progress": progress, "pooling": pooling,
                              "gateway_options": gateway_options}
        if model is not None:
            return super().embed(texts, model=model, batch_size=batch_size, context=context, **kw)
        self.check_embed_dims()
        if self.universal is not None:
            return self.universal.embed(texts, self.call_context(context), batch_size, pooling, gateway_options)
        plan = self.plan(self.call_context(context))
        try:
            while True:
                step = plan.next()
                if step.delay:
                    time.sleep(step.delay)
                size = self.batch_size_for(step.model, batch_size)
                try:
                    resp = super().embed(texts, model=step.model, batch_size=size, context=step.ctx, **kw)
                except errors.CloudflareError as exc:
                    if plan.failed(exc):
                        raise
                    continue
                return plan.succeeded(resp)  # type: ignore[no-any-return]
        finally:
            plan.close()

    async def aembed(
        self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
        max_concurrency: int = DEFAULT_EMBED_CONCURRENCY, progress: bool = False, pooling: str | None = None,
        context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
    ) -> EmbedResponse:
        kw: dict[str, Any] = {"max_concurrency": max_concurrency, "progress": progress, "pooling": pooling,
                              "gateway_options": gateway_options}
        if model is not None:
            return await super().aembed(texts, model=model, batch_size=batch_size, context=context, **kw)
        self.check_embed_dims()
        if self.universal is not None:
            return await self.universal.aembed(texts, self.call_context(context), batch_size, pooling,
                                               gateway_options)
        plan: CallPlan = self.plan(self.call_context(context))
        try:
            while True:
                step = plan.next()
                if step.delay:
                    await asyncio.sleep(step.delay)
                size = self.batch_size_for(step.model, batch_size)
                try:
                    resp = await super().aembed(texts, model=step.model, batch_size=size, context=step.ctx, **kw)
                except errors.CloudflareError as exc:
                    if plan.failed(exc):
                        raise
                    continue
                return plan.succeeded(resp)  # type: ignore[no-any-return]
        finally:
            plan.close()


__all__ = ["FallbackChain"]
