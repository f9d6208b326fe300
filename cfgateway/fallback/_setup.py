"""A fallback chain's state (composition: it holds one member client per route): options, breaker, routing
policy, dimension checks. The calls are in :mod:`cfgateway.fallback.chain`, gateway mode's sending in
:mod:`cfgateway.fallback._gateway`, which gets :class:`ChainParts`, never the chain."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from cfgateway import errors
from cfgateway.calls.books import Books
from cfgateway.calls.embed import dims_field
from cfgateway.client import Client
from cfgateway.config import Settings, load_settings
from cfgateway.connection import gateway_options_from, limiter_for, tracker_for
from cfgateway.costs.alerts import shared_alerts
from cfgateway.costs.budget import CostTracker
from cfgateway.costs.catalog import Catalog, ModelInfo, load_catalog
from cfgateway.fallback._attempts import CallPlan, Limits
from cfgateway.fallback.policy import FallbackOn, FallbackPolicy, as_policy
from cfgateway.http.transport import RetryPolicy, Transport
from cfgateway.routing.breaker import CircuitBreaker, shared_breaker
from cfgateway.routing.ratelimit import Pace, Rate, RateLimiter
from cfgateway.routing.rollout import Rollout, RoutingPolicy, TierRule, order_routes
from cfgateway.routing.routes import Endpoint, GatewayOptions, Route
from cfgateway.types import CallContext, ChatRequest

FallbackMode = Literal["client", "gateway"]
BreakerArg = CircuitBreaker | str | bool | None


def chain_transport(transport: Transport | None, settings: Settings) -> tuple[Transport, RetryPolicy]:
    """A transport that never retries on its own (the chain does, within its budget), and the retry policy.

    A caller's transport is shallow-copied so it keeps its connection pools; its retry policy becomes
    the chain's.
    """
    if transport is None:
        return Transport(timeout=settings.timeout, policy=RetryPolicy(max_retries=0)), RetryPolicy(
            max_retries=settings.max_retries
        )
    own = copy.copy(transport)
    own.policy = replace(transport.policy, max_retries=0)
    return own, transport.policy


def resolve_breaker(
    breaker: BreakerArg, failure_threshold: int | None, cooldown: float | None, settings: Settings | None = None,
    on_change: Callable[..., None] | None = None,
) -> CircuitBreaker | None:
    """``None``: a breaker for this chain (the ``[breaker]`` settings, shared through Redis when the ledger is
    Redis); a name: the shared one; an object: it; ``False``: no breaker. Explicit ``failure_threshold`` /
    ``cooldown`` override the settings."""
    if breaker is False:
        return None
    if breaker is None or breaker is True:
        if settings is None:
            return CircuitBreaker(failure_threshold, cooldown)
        return CircuitBreaker.from_settings(settings, failure_threshold=failure_threshold, cooldown=cooldown,
                                            on_change=on_change)
    if isinstance(breaker, str):
        return shared_breaker(breaker, failure_threshold=failure_threshold, cooldown=cooldown, config=settings)
    if isinstance(breaker, CircuitBreaker):
        return breaker
    raise errors.ConfigError("breaker must be a CircuitBreaker, a shared breaker name, None or False")


def _check_options(max_attempts: int | None, call_timeout: float | None, fallback_mode: str) -> None:
    if max_attempts is not None and max_attempts < 1:
        raise errors.ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
    if call_timeout is not None and call_timeout <= 0:
        raise errors.ConfigError(f"call_timeout must be a positive number of seconds, got {call_timeout}")
    if fallback_mode not in ("client", "gateway"):
        raise errors.ConfigError(f"fallback_mode must be 'client' or 'gateway', got {fallback_mode!r}")


@dataclass(frozen=True, slots=True)
class ChainParts:
    """What a chain's call loops share (gateway mode gets these, not the chain): one settings, catalog, books and
    transport for every route, the fallback policy, limits and breaker, and how a call's routes are chosen."""

    settings: Settings
    catalog: Catalog
    books: Books
    transport: Transport
    policy: FallbackPolicy
    limits: Limits
    breaker: CircuitBreaker | None
    route: Callable[[str], Route]
    models: list[str]  # the chain's routes, in order (a call's order may differ: models_for)
    models_for: Callable[[CallContext], list[str]]
    gateway_options: GatewayOptions | None
    limiter: RateLimiter | None = None  # client-side rate limits (gateway mode paces each request's first step)

    def pace(self, model: str) -> Pace | None:
        return self.limiter.pace(model) if self.limiter else None


class ChainCore:
    """A chain's state: its member clients (one per route, sharing settings, catalog, books and transport),
    options, breaker and routing policy. :class:`~cfgateway.fallback.chain.FallbackChain` adds the calls."""

    def __init__(
        self,
        model: str,
        fallbacks: Sequence[str] = (),
        *,
        fallback_on: FallbackOn | FallbackPolicy | None = None,
        fallback_mode: FallbackMode = "client",
        breaker: BreakerArg = None,
        failure_threshold: int | None = None,
        cooldown: float | None = None,
        max_attempts: int | None = None,
        call_timeout: float | None = None,
        max_retry_wait: float = 1.0,
        retry_policy: RetryPolicy | None = None,
        rollout: Rollout | Sequence[Rollout] | None = None,
        tiers: Sequence[TierRule] | None = None,
        routing: RoutingPolicy | Callable[[CallContext], str | None] | None = None,
        check_dims: bool = True,
        dimensions: int | None = None,
        kind: Literal["chat", "embed"] | None = None,
        settings: Settings | None = None,
        endpoint: Endpoint | None = None,
        gateway_options: GatewayOptions | None = None,
        tracker: CostTracker | None = None,
        catalog: Catalog | None = None,
        transport: Transport | None = None,
        rate_limits: RateLimiter | Mapping[str, Rate | Mapping[str, Any]] | None = None,
        embed_cache: Any = None,
        **setting_overrides: Any,
    ) -> None:
        _check_options(max_attempts, call_timeout, fallback_mode)
        self.embed_cache = embed_cache  # every member's (each route stores under its own model string)
        self.settings = s = settings.with_overrides(**setting_overrides) if settings else load_settings(
            **setting_overrides)
        self.transport, retry = chain_transport(transport, s)
        self.catalog = catalog or load_catalog(s.catalog)
        self.books = Books(tracker if tracker is not None else tracker_for(s, self.catalog), self.catalog)
        self.limiter = limiter_for(rate_limits, s, self.catalog)  # one limiter for every member
        self.endpoint: Endpoint = endpoint or s.endpoint or "auto"  # type: ignore[assignment]
        self.gateway_options = gateway_options or gateway_options_from(s.gateway_options or None)
        self._members: dict[str, Client] = {}
        self.model: str = model
        self.models: list[str] = list(dict.fromkeys([model, *fallbacks]))
        self.fallbacks = self.models[1:]
        self.policy = as_policy(fallback_on)
        self.limits = Limits(retry_policy or retry, max_attempts, max_retry_wait)
        self.call_timeout = call_timeout
        self.breaker = resolve_breaker(breaker, failure_threshold, cooldown, s, self._breaker_alerts())
        if callable(routing) and not isinstance(routing, RoutingPolicy):
            routing = RoutingPolicy(custom=routing)
        self.routing = routing or RoutingPolicy.build(rollout, tiers)
        self.fallback_mode = fallback_mode
        for m in self.all_models():
            self.member(m)  # fail fast on a bad model string or missing settings
        self.check_dims = check_dims
        self.dimensions = dimensions  # the vector size every embed call asks for (unless the call says)
        self._dims_checked = False
        if kind == "embed" or (kind is None and any(i.kind == "embed" for i in self._infos() if i)):
            self.check_embed_dims(dimensions)

    def _breaker_alerts(self) -> Callable[..., None]:
        """Breaker openings go to the settings' alert sinks (the log by default), once per route per cooldown
        across the processes that share the ledger."""
        store = self.books.tracker.ledger if self.books.tracker is not None else None
        return shared_alerts(self.settings, store).on_breaker_change

    def member(self, model: str) -> Client:
        """The client for one route of the chain (or any model string: a per-call ``model=``)."""
        client = self._members.get(model)
        if client is None:
            client = self._members[model] = Client(
                model, settings=self.settings, endpoint=self.endpoint, gateway_options=self.gateway_options,
                books=self.books, catalog=self.catalog, transport=self.transport, rate_limits=self.limiter,
                embed_cache=self.embed_cache)
        return client

    @property
    def tracker(self) -> CostTracker | None:
        return self.books.tracker

    def route(self, model: str | None = None) -> Route:
        return self.member(model or self.model).route()

    def model_info(self, model: str | None = None) -> ModelInfo | None:
        return self.catalog.get(self.route(model).model)

    def parts(self) -> ChainParts:
        return ChainParts(self.settings, self.catalog, self.books, self.transport, self.policy, self.limits,
                          self.breaker, self.route, self.models, self.models_for, self.gateway_options, self.limiter)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(models={self.models!r}, mode={self.fallback_mode!r}, "
                f"settings={self.settings!r})")

    def all_models(self) -> list[str]:
        extra = self.routing.models() if self.routing is not None else []
        return list(dict.fromkeys([*self.models, *extra]))

    def _infos(self) -> list[ModelInfo | None]:
        return [self.catalog.get(self.route(m).model) for m in self.all_models()]

    # -- per call ------------------------------------------------------------------------
    def call_context(self, context: CallContext | None, request: ChatRequest | None = None) -> CallContext:
        """A copy of the caller's context (or one from the request) with the request's user/metadata and
        the call deadline."""
        if context is None:
            ctx = CallContext(user=request.user if request else None,
                              metadata=dict(request.metadata) if request else {})
        else:
            ctx = replace(context, metadata=dict(context.metadata))
            if request is not None:
                ctx.user = ctx.user or request.user
                ctx.metadata.update(request.metadata)
        if self.call_timeout is not None:
            end = time.monotonic() + self.call_timeout
            ctx.deadline = end if ctx.deadline is None else min(ctx.deadline, end)
        return ctx

    def models_for(self, ctx: CallContext) -> list[str]:
        """The routes of one call, in order (the routing policy may put another route first)."""
        if self.routing is None:
            return self.models
        return order_routes(self.routing.choose(ctx, self.model), self.models)

    def attempts(self, ctx: CallContext) -> CallPlan:
        return CallPlan(self.models_for(ctx), self.route, ctx, policy=self.policy, limits=self.limits,
                        catalog=self.catalog, breaker=self.breaker)

    def batch_size_for(self, model: str, requested: int | None) -> int | None:
        """``requested`` capped at the route's own batch limit (routes of one chain may differ)."""
        info = self.catalog.get(self.route(model).model)
        if requested is not None and info is not None and info.max_batch and requested > info.max_batch:
            return info.max_batch
        return requested

    def check_embed_dims(self, dimensions: int | None = None) -> None:
        """Refuse an embedding chain whose routes give vectors of different sizes (of a size other than
        ``dimensions``, when asked for: a route that shortens vectors on request passes if it can reach it)."""
        if not self.check_dims or (self._dims_checked and dimensions is None):
            return
        models = self.all_models()
        if dimensions is not None:
            for m, info in zip(models, self._infos(), strict=True):
                dims_field(self.route(m), info, dimensions)  # InvalidInputError naming the route that cannot
            return
        dims = {m: (i.dims if i else None) for m, i in zip(models, self._infos(), strict=True)}
        unknown = [m for m, d in dims.items() if d is None]
        if unknown and len(models) > 1:
            raise errors.ConfigError(
                f"embedding routes with unknown vector dimensions: {', '.join(unknown)}; add them to the catalog "
                "(catalog= / CFGATEWAY_CATALOG with a 'dims' field), ask for one size with dimensions= "
                "(CFGATEWAY_EMBED_DIMENSIONS, config key embed_dimensions), or pass check_dims=False"
            )
        if len(set(dims.values())) > 1:
            listing = ", ".join(f"{m} ({d})" for m, d in dims.items())
            raise errors.ConfigError(
                f"embedding routes must all give vectors of the same size, got: {listing}; vectors of different "
                "models cannot share an index. Ask for one size with dimensions= (CFGATEWAY_EMBED_DIMENSIONS, "
                "config key embed_dimensions) when the other routes can shorten their vectors"
            )
        self._dims_checked = True

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        self.transport.close()

    async def aclose(self) -> None:
        await self.transport.aclose()


__all__ = ["BreakerArg", "ChainCore", "ChainParts", "FallbackMode", "chain_transport", "resolve_breaker"]
