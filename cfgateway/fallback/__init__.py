"""Fallback chains: a composite with the same interface as one :class:`~cfgateway.client.Client`.

>>> chain = build_client("@cf/meta/llama-3.3-70b-instruct-fp8-fast", ["openai/gpt-4o-mini"])  # doctest: +SKIP
>>> resp = chain.chat(ChatRequest([Message("user", "Hi")]))                                 # doctest: +SKIP
>>> resp.model, [(a.model, a.outcome) for a in resp.attempts]                                # doctest: +SKIP
('openai/gpt-4o-mini', [('@cf/meta/llama-3.3-70b-instruct-fp8-fast', 'CapacityError'), ('openai/gpt-4o-mini', 'ok')])

``build_client`` is the one entry point the adapters use: a plain :class:`Client` for one model,
a :class:`FallbackChain` when fallbacks, a routing policy or chain options are given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol

from cfgateway.client import Client
from cfgateway.connection import SETTING_ARGUMENTS, Connection, Kind, client_keywords, resolve_connection
from cfgateway.costs.catalog import ModelInfo
from cfgateway.errors import AllRoutesFailed, CircuitOpenError, GatewayStepFailed, RouteSkipped
from cfgateway.fallback._shadows import ShadowStats, flush_shadows
from cfgateway.fallback.chain import FallbackChain
from cfgateway.fallback.policy import DEFAULT_FALLBACK_ON, FallbackPolicy
from cfgateway.routing.breaker import CircuitBreaker, shared_breaker
from cfgateway.routing.rollout import Rollout, RoutingPolicy, TierRule
from cfgateway.routing.routes import GatewayOptions, Route
from cfgateway.types import CallContext, ChatChunk, ChatRequest, ChatResponse, EmbedResponse

# Keywords only a chain understands; giving any of them (not None) builds a chain even for one model.
CHAIN_OPTIONS = frozenset({
    "fallback_on", "fallback_mode", "breaker", "failure_threshold", "cooldown", "max_attempts", "call_timeout",
    "max_retry_wait", "retry_policy", "rollout", "tiers", "routing", "check_dims", "dimensions", "kind", "step_config",
})


class ModelClient(Protocol):
    """What :class:`Client` and :class:`FallbackChain` both offer (for type hints in adapters)."""

    def chat(self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
             gateway_options: GatewayOptions | None = None) -> ChatResponse: ...

    async def achat(self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
                    gateway_options: GatewayOptions | None = None) -> ChatResponse: ...

    def stream(self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
               gateway_options: GatewayOptions | None = None) -> Iterator[ChatChunk]: ...

    def astream(self, request: ChatRequest, *, model: str | None = None, context: CallContext | None = None,
                gateway_options: GatewayOptions | None = None) -> AsyncIterator[ChatChunk]: ...

    def embed(self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
              max_concurrency: int = 8, progress: bool = False, pooling: str | None = None,
              context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
              dimensions: int | None = None) -> EmbedResponse: ...

    async def aembed(self, texts: list[str], *, model: str | None = None, batch_size: int | None = None,
                     max_concurrency: int = 8, progress: bool = False, pooling: str | None = None,
                     context: CallContext | None = None, gateway_options: GatewayOptions | None = None,
                     dimensions: int | None = None) -> EmbedResponse: ...

    def route(self, model: str | None = None) -> Route: ...

    def model_info(self, model: str | None = None) -> ModelInfo | None: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


def build_client(model: str | None = None, fallbacks: Sequence[str] | None = None, **kwargs: Any) -> ModelClient:
    """A :class:`Client` for ``model``, or a :class:`FallbackChain` over ``[model, *fallbacks]`` (it holds one
    member client per route and offers the same methods: both are a :class:`ModelClient`).

    Without ``model``, the configuration names it (``chat_model`` / ``CFGATEWAY_CHAT_MODEL``, with its
    ``fallbacks``, ``rollout``, ``fallback_mode``, gateway options and budgets: :mod:`cfgateway.connection`).

    Client keywords: ``settings``, ``endpoint``, ``gateway_options``, ``tracker``, ``catalog``,
    ``transport`` and setting overrides (``account_id=``, ``timeout=``...). Chain keywords:

    - ``fallback_on``: exception classes or ``callable(exc) -> bool`` (or a :class:`FallbackPolicy`);
      default :data:`DEFAULT_FALLBACK_ON`.
    - ``fallback_mode``: ``"client"`` (default; this process tries the routes) or ``"gateway"`` (one
      Universal Endpoint request, every route a step; ``step_config`` adds to each step's ``config``).
    - ``max_attempts`` (default: one per route + ``max_retries``), ``call_timeout`` (seconds, one deadline
      for the whole call), ``max_retry_wait`` (longest same-route retry wait while another route could
      answer, default 1 s), ``retry_policy`` (default: ``RetryPolicy(max_retries=settings.max_retries)``).
    - ``breaker``: ``None`` (one per chain), a shared breaker's name, a :class:`CircuitBreaker`, or
      ``False``; ``failure_threshold`` (3) and ``cooldown`` (30 s) for the breakers made here.
    - ``rollout`` (a :class:`Rollout` or several), ``tiers`` (:class:`TierRule` list), ``routing`` (a
      :class:`RoutingPolicy` or ``callable(CallContext) -> model | None``): per-call route choice. A
      policy's ``shadow`` (:class:`~cfgateway.routing.shadow.Shadow`) sends a sampled share of the
      baseline's calls to a candidate in the background and books each pair (``chain.shadows``).
    - ``check_dims`` (True): refuse embedding routes of different (or unknown) vector sizes;
      ``kind="embed"`` forces that check when the catalog does not know the models. ``dimensions``: the
      vector size every embed call asks for; routes of other native sizes pass when they shorten
      vectors on request (catalog ``flex_dims``), so ``bge-m3`` (1024) can fall back to
      ``openai/text-embedding-3-small`` at 1024.
    """
    if model is None:  # what the configuration names: chat_model, fallbacks, rollout, ... (cfgateway.connection)
        conn = resolve_connection("chat", fallbacks=fallbacks, settings=kwargs.pop("settings", None),
                                  **{k: kwargs.pop(k) for k in list(kwargs) if k in SETTING_ARGUMENTS})
        model, fallbacks = conn.model, list(conn.fallbacks) or None
        kwargs = {**client_keywords(conn, tracker=kwargs.pop("tracker", None), routing=kwargs.pop("routing", None)),
                  **kwargs}
    chain_kw = {k: v for k, v in kwargs.items() if k in CHAIN_OPTIONS and v is not None}
    if not fallbacks and not chain_kw:
        client_kw = {k: v for k, v in kwargs.items() if k not in CHAIN_OPTIONS}
        return Client(model, **client_kw)
    given = {k: v for k, v in kwargs.items() if not (k in CHAIN_OPTIONS and v is None)}
    return FallbackChain(model, list(fallbacks or ()), **given)


def build_model_client(conn: Connection, *, tracker: Any = None, routing: Any = None, **extra: Any) -> ModelClient:
    """A :class:`~cfgateway.Client` (one route) or :class:`~cfgateway.FallbackChain` for ``conn``."""
    kwargs = {**client_keywords(conn, tracker=tracker, routing=routing), **extra}
    return build_client(conn.model, list(conn.fallbacks) or None, **kwargs)


def connect(kind: Kind, model: str | None = None, **kwargs: Any) -> ModelClient:
    """``build_model_client(resolve_connection(kind, model=model, ...))``: a client for what the configuration
    names (``connect("chat")`` runs on ``CFGATEWAY_CHAT_MODEL`` / ``chat_model`` and their fallbacks)."""
    tracker, routing = kwargs.pop("tracker", None), kwargs.pop("routing", None)
    return build_model_client(resolve_connection(kind, model=model, **kwargs), tracker=tracker, routing=routing)


__all__ = [
    "DEFAULT_FALLBACK_ON",
    "AllRoutesFailed",
    "CircuitBreaker",
    "CircuitOpenError",
    "FallbackChain",
    "FallbackPolicy",
    "GatewayStepFailed",
    "ModelClient",
    "Rollout",
    "RouteSkipped",
    "RoutingPolicy",
    "TierRule",
    "build_model_client",
    "connect",
    "ShadowStats",
    "build_client",
    "flush_shadows",
    "shared_breaker",
]
