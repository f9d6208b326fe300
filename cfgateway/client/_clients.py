"""The core clients: :class:`Client` (``chat``, ``stream``, ``embed``, and ``achat``, ``astream``, ``aembed``)
and :class:`AsyncClient` (the async methods under the plain names).

A call flows one way. Down: the route (:mod:`cfgateway.routing`), the plan (:func:`~cfgateway.calls.plan.plan_chat`,
sans-IO), the budget hold (:class:`~cfgateway.calls.books.Books`), the transport (:mod:`cfgateway.http`). Up:
the answer read (:mod:`cfgateway.calls.outcome` / :class:`~cfgateway.calls.stream.StreamRun`) and booked.
The flows are the module functions below; only sending and iterating exist twice (sync and async).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from typing import Any

from cfgateway import errors
from cfgateway.cache import KeySpace, resolve_embed_cache
from cfgateway.cache.flow import CacheGuard, aembed_cached, embed_cached
from cfgateway.calls.books import Books
from cfgateway.calls.embed import EmbedPlan, check_inputs, dims_field, plan_embed
from cfgateway.calls.plan import ChatPlan, plan_chat
from cfgateway.client._chat import asend_chat, asend_stream, send_chat, send_stream
from cfgateway.client._embed import asend_embed, send_embed
from cfgateway.client._parts import CallParts
from cfgateway.config import Settings, load_settings
from cfgateway.connection import Kind, gateway_options_from, limiter_for, tracker_for
from cfgateway.costs.budget import CostTracker
from cfgateway.costs.catalog import Catalog, ModelInfo, load_catalog
from cfgateway.costs.pricing import custom_cost_header
from cfgateway.http.transport import Transport
from cfgateway.routing.ratelimit import Rate, RateLimiter
from cfgateway.routing.routes import Endpoint, GatewayOptions, Route, resolve_route
from cfgateway.types import CallContext, ChatChunk, ChatRequest, ChatResponse, EmbedResponse

DEFAULT_EMBED_CONCURRENCY = 8


class _Core:
    """What both clients hold: settings, catalog, books, one pooled transport, and resolved routes."""

    def __init__(
        self,
        model: str | None = None,
        *,
        settings: Settings | None = None,
        endpoint: Endpoint | None = None,
        gateway_options: GatewayOptions | None = None,
        tracker: CostTracker | None = None,
        catalog: Catalog | None = None,
        transport: Transport | None = None,
        books: Books | None = None,
        rate_limits: RateLimiter | Mapping[str, Rate | Mapping[str, Any]] | None = None,
        embed_cache: Any = None,
        **setting_overrides: Any,
    ) -> None:
        """``books``: share another client's books (a chain's members do); else one over ``tracker`` (or a
        tracker on the ``ledger`` setting's ledger). ``rate_limits``: client-side limits by model string
        (``{"custom-deepinfra/...": {"rpm": 60}}``) or a shared :class:`~cfgateway.routing.ratelimit.RateLimiter`.
        ``embed_cache``: an :class:`~cfgateway.cache.EmbeddingCache` or a URL (``memory://``, ``sqlite:///x.db``,
        ``redis://...``); ``None``: the ``embed_cache`` setting (``CFGATEWAY_EMBED_CACHE``); ``False``: none."""
        if settings is not None:
            self.settings = settings.with_overrides(**setting_overrides) if setting_overrides else settings
        else:
            self.settings = load_settings(**setting_overrides)
        s = self.settings
        self.model = model
        self.endpoint: Endpoint = endpoint or s.endpoint or "auto"  # type: ignore[assignment]
        self.gateway_options = gateway_options or gateway_options_from(s.gateway_options or None)
        self.catalog = catalog or load_catalog(s.catalog)
        if books is None:
            books = Books(tracker if tracker is not None else tracker_for(s, self.catalog), self.catalog)
        self.books = books
        self.transport = transport or Transport(timeout=s.timeout, max_retries=s.max_retries)
        self.limiter = limiter_for(rate_limits, s, self.catalog)
        self.parts = CallParts(self.books, self.transport, self.catalog, self.limiter)
        self._routes: dict[str, Route] = {}
        self._embed_cache_arg = embed_cache
        self._embed_cache: CacheGuard | None | bool = False if embed_cache is False else True  # True: not opened yet
        if model is not None:
            self.route(model)  # fail fast on a bad model string or missing settings

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, settings={self.settings!r})"

    @property
    def tracker(self) -> CostTracker | None:
        return self.books.tracker

    # -- routing -------------------------------------------------------------------------
    def route(self, model: str | None = None, kind: Kind = "chat") -> Route:
        """The route of ``model``, the client's model, or the configured chat/embedding model."""
        name = model or self.model or (self.settings.chat_model if kind == "chat" else self.settings.embed_model)
        if not name:
            env, key = ("CFGATEWAY_CHAT_MODEL", "chat_model") if kind == "chat" else ("CFGATEWAY_EMBED_MODEL",
                                                                                    "embed_model")
            raise errors.ConfigError(f"no model: pass model= to the client or to the call, or set {env} "
                                     f"(config key {key})")
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

    # -- planning (sans-IO) --------------------------------------------------------------
    def plan_chat(
        self, request: ChatRequest, model: str | None, context: CallContext | None,
        gateway_options: GatewayOptions | None, *, stream: bool,
    ) -> ChatPlan:
        route = self.route(model, "chat")
        ctx = context if context is not None else CallContext(user=request.user, metadata=dict(request.metadata))
        return plan_chat(route, request, stream=stream, options=gateway_options or self.gateway_options, ctx=ctx,
                         info=self.catalog.get(route.model))

    def plan_embed(
        self, texts: list[str], model: str | None, batch_size: int | None, pooling: str | None,
        context: CallContext | None, gateway_options: GatewayOptions | None, dimensions: int | None,
    ) -> EmbedPlan:
        route = self.route(model, "embed")
        return plan_embed(route, texts, batch_size=batch_size, pooling=pooling,
                          options=gateway_options or self.gateway_options, ctx=context or CallContext(),
                          info=self.catalog.get(route.model), dimensions=dimensions)

    # -- the embedding cache ---------------------------------------------------------------
    @property
    def embed_cache(self) -> CacheGuard | None:
        """The client's embedding cache (opened on first use), or None."""
        if self._embed_cache is True:
            self._embed_cache = resolve_embed_cache(self._embed_cache_arg, self.settings.embed_cache)
        return self._embed_cache or None

    def cache_for(self, cache: Any, texts: list[str], model: str | None, pooling: str | None,
                  dimensions: int | None) -> tuple[CacheGuard, KeySpace, Route] | None:
        """The cache of one embed call (``cache=``: None the client's, False none, or a cache / URL), its keys'
        space (the answering route's model string, the dimensions sent or native, pooling), and the route."""
        guard = self.embed_cache if cache is None else resolve_embed_cache(cache)
        if guard is None or not texts or isinstance(texts, str):
            return None
        route = self.route(model)
        check_inputs(texts, self.catalog.get(route.model), route.model)  # refused inputs raise before any lookup
        return guard, self.key_space(route, pooling, dimensions), route

    def key_space(self, route: Route, pooling: str | None, dimensions: int | None) -> KeySpace:
        """The cache keys of ``route``'s vectors: its model string, the dimensions sent (or native), pooling."""
        sent = dims_field(route, self.catalog.get(route.model), dimensions)
        return KeySpace(route.model, sent["dimensions"] if sent else None, pooling)

    def book_hits(self, records: list[Any]) -> None:
        self.books.settle(records, None)

    async def _aembed(
        self, texts: list[str], model: str | None, batch_size: int | None, max_concurrency: int, progress: bool,
        pooling: str | None, context: CallContext | None, gateway_options: GatewayOptions | None,
        dimensions: int | None, cache: Any,
    ) -> EmbedResponse:
        """``Client.aembed`` and ``AsyncClient.embed``: only the cache's misses are sent."""
        ctx = context or CallContext()

        async def send(batch: list[str]) -> EmbedResponse:
            plan = self.plan_embed(batch, model, batch_size, pooling, ctx, gateway_options, dimensions)
            return await asend_embed(self.parts, plan, max_concurrency, progress)

        found = self.cache_for(cache, texts, model, pooling, dimensions)
        return await send(texts) if found is None else await aembed_cached(*found, ctx, texts, send, self.book_hits)


class Client(_Core):
    """One model string (or a per-call ``model=``) over one pooled transport; sync methods and ``a``-prefixed
    async twins."""

    def chat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        return send_chat(self.parts, self.plan_chat(request, model, context, gateway_options, stream=False))

    async def achat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        return await asend_chat(self.parts, self.plan_chat(request, model, context, gateway_options, stream=False))

    def stream(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> Iterator[ChatChunk]:
        plan = self.plan_chat(request, model, context, gateway_options, stream=True)
        yield from send_stream(self.parts, plan)

    async def astream(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> AsyncIterator[ChatChunk]:
        plan = self.plan_chat(request, model, context, gateway_options, stream=True)
        async for chunk in asend_stream(self.parts, plan):
            yield chunk

    def embed(
        self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
        max_concurrency: int = DEFAULT_EMBED_CONCURRENCY, progress: bool = False, pooling: str | None = None,
        context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
        dimensions: int | None = None, cache: Any = None,
    ) -> EmbedResponse:
        """Embed ``texts`` in batches at the model's limit, ``max_concurrency`` requests at a time, in order.
        With an embedding cache (``cache=``, else the client's) only the texts it lacks are sent."""
        ctx = context or CallContext()

        def send(batch: list[str]) -> EmbedResponse:
            plan = self.plan_embed(batch, model, batch_size, pooling, ctx, gateway_options, dimensions)
            return send_embed(self.parts, plan, max_concurrency, progress)

        found = self.cache_for(cache, texts, model, pooling, dimensions)
        return send(texts) if found is None else embed_cached(*found, ctx, texts, send, self.book_hits)

    async def aembed(
        self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
        max_concurrency: int = DEFAULT_EMBED_CONCURRENCY, progress: bool = False, pooling: str | None = None,
        context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
        dimensions: int | None = None, cache: Any = None,
    ) -> EmbedResponse:
        return await self._aembed(texts, model, batch_size, max_concurrency, progress, pooling, context,
                                  gateway_options, dimensions, cache)

    def close(self) -> None:
        self.transport.close()

    async def aclose(self) -> None:
        await self.transport.aclose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Core):
    """The async client: ``await client.chat(...)``, ``async for chunk in client.stream(...)``."""

    async def chat(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> ChatResponse:
        return await asend_chat(self.parts, self.plan_chat(request, model, context, gateway_options, stream=False))

    async def stream(
        self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
        gateway_options: GatewayOptions | None = None,
    ) -> AsyncIterator[ChatChunk]:
        plan = self.plan_chat(request, model, context, gateway_options, stream=True)
        async for chunk in asend_stream(self.parts, plan):
            yield chunk

    async def embed(
        self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
        max_concurrency: int = DEFAULT_EMBED_CONCURRENCY, progress: bool = False, pooling: str | None = None,
        context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
        dimensions: int | None = None, cache: Any = None,
    ) -> EmbedResponse:
        return await self._aembed(texts, model, batch_size, max_concurrency, progress, pooling, context,
                                  gateway_options, dimensions, cache)

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["AsyncClient", "Client"]
