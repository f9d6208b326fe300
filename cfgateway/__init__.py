"""cfgateway: Cloudflare Workers AI and AI Gateway for Python apps, framework-free core.

>>> from cfgateway import Client, ChatRequest, Message
>>> client = Client("@cf/meta/llama-3.3-70b-instruct-fp8-fast")      # settings from env / cfgateway.toml
>>> client.chat(ChatRequest([Message("user", "Hello")])).text        # doctest: +SKIP

Names are imported lazily so ``import cfgateway`` stays cheap; the emulator and the proxy
are never imported from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Even the exceptions and value types load on first use: pytest imports this package on every run of
# every project where cfgateway is installed (the pytest11 plugin), so `import cfgateway` must cost nothing.
_ERRORS = (
    "APIError", "AuthenticationError", "BadRequestError", "BudgetExceededError", "CapacityError", "CloudflareError",
    "ConfigError", "ConnectionError", "ContextLengthExceededError", "InvalidInputError", "MalformedResponseError",
    "NotFoundError", "PermissionDeniedError", "QuotaExceededError", "RateLimitError", "RequestTooLargeError",
    "ServerError", "StreamInterrupted", "TimeoutError", "TransportError", "MidStreamError", "IncompleteResponseError",
    "RouteSkipped", "CircuitOpenError", "GatewayStepFailed", "LedgerUnavailableError",
)
_TYPES = (
    "AttemptInfo", "CallContext", "ChatChunk", "ChatRequest", "ChatResponse", "EmbedResponse", "GatewayMeta",
    "Message", "Secret", "ToolCall", "ToolCallChunk", "ToolSpec", "Usage",
)

_LAZY: dict[str, str] = {
    **dict.fromkeys(_ERRORS, "cfgateway.errors"),
    **dict.fromkeys(_TYPES, "cfgateway.types"),
    "Client": "cfgateway.client",
    "AsyncClient": "cfgateway.client",
    "Settings": "cfgateway.config",
    "load_settings": "cfgateway.config",
    "GatewayOptions": "cfgateway.routing.routes",
    "Route": "cfgateway.routing.routes",
    "resolve_route": "cfgateway.routing.routes",
    "Catalog": "cfgateway.costs.catalog",
    "ModelInfo": "cfgateway.costs.catalog",
    "get_model": "cfgateway.costs.catalog",
    "load_catalog": "cfgateway.costs.catalog",
    "cost_of": "cfgateway.costs.pricing",
    "UsageRecord": "cfgateway.costs.ledger",
    "open_ledger": "cfgateway.costs.ledger",
    "Budget": "cfgateway.costs.budget",
    "FallbackChain": "cfgateway.fallback",
    "AllRoutesFailed": "cfgateway.errors",
    "build_client": "cfgateway.fallback",
    "Rollout": "cfgateway.routing.rollout",
    "TierRule": "cfgateway.routing.rollout",
    "RoutingPolicy": "cfgateway.routing.rollout",
    "CostTracker": "cfgateway.costs.budget",
    "Gates": "cfgateway.routing.gates",
    "Shadow": "cfgateway.routing.shadow",
    "flush_shadows": "cfgateway.fallback",
    "AlertEvent": "cfgateway.costs.alerts",
    "Alerts": "cfgateway.costs.alerts",
    "WebhookSink": "cfgateway.costs.alerts",
    "VectorizeClient": "cfgateway.vectorize",
    "VectorizeIndex": "cfgateway.vectorize",
    "openai_client": "cfgateway.openai_sdk",
    "async_openai_client": "cfgateway.openai_sdk",
    "autogen_model_info": "cfgateway.openai_sdk",
    "connect": "cfgateway.fallback",
    "open_embedding_cache": "cfgateway.cache",
}

if TYPE_CHECKING:
    from cfgateway.cache import open_embedding_cache
    from cfgateway.client import AsyncClient, Client
    from cfgateway.config import Settings, load_settings
    from cfgateway.costs.alerts import AlertEvent, Alerts, WebhookSink
    from cfgateway.costs.budget import Budget, CostTracker
    from cfgateway.costs.catalog import Catalog, ModelInfo, get_model, load_catalog
    from cfgateway.costs.ledger import UsageRecord, open_ledger
    from cfgateway.costs.pricing import cost_of
    from cfgateway.errors import (
        AllRoutesFailed,
        APIError,
        AuthenticationError,
        BadRequestError,
        BudgetExceededError,
        CapacityError,
        CircuitOpenError,
        CloudflareError,
        ConfigError,
        ConnectionError,
        ContextLengthExceededError,
        GatewayStepFailed,
        IncompleteResponseError,
        InvalidInputError,
        LedgerUnavailableError,
        MalformedResponseError,
        MidStreamError,
        NotFoundError,
        PermissionDeniedError,
        QuotaExceededError,
        RateLimitError,
        RequestTooLargeError,
        RouteSkipped,
        ServerError,
        StreamInterrupted,
        TimeoutError,
        TransportError,
    )
    from cfgateway.fallback import FallbackChain, build_client, connect, flush_shadows
    from cfgateway.openai_sdk import async_openai_client, autogen_model_info, openai_client
    from cfgateway.routing.gates import Gates
    from cfgateway.routing.rollout import Rollout, RoutingPolicy, TierRule
    from cfgateway.routing.routes import GatewayOptions, Route, resolve_route
    from cfgateway.routing.shadow import Shadow
    from cfgateway.types import (
        AttemptInfo,
        CallContext,
        ChatChunk,
        ChatRequest,
        ChatResponse,
        EmbedResponse,
        GatewayMeta,
        Message,
        Secret,
        ToolCall,
        ToolCallChunk,
        ToolSpec,
        Usage,
    )
    from cfgateway.vectorize import VectorizeClient, VectorizeIndex


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cfgateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "open_embedding_cache",
    "CircuitOpenError",
    "GatewayStepFailed",
    "IncompleteResponseError",
    "MidStreamError",
    "RouteSkipped",
    "APIError",
    "AlertEvent",
    "Alerts",
    "Gates",
    "Shadow",
    "flush_shadows",
    "WebhookSink",
    "AllRoutesFailed",
    "async_openai_client",
    "autogen_model_info",
    "openai_client",
    "FallbackChain",
    "Rollout",
    "RoutingPolicy",
    "TierRule",
    "build_client",
    "connect",
    "AsyncClient",
    "AttemptInfo",
    "AuthenticationError",
    "BadRequestError",
    "Budget",
    "BudgetExceededError",
    "CallContext",
    "CapacityError",
    "Catalog",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Client",
    "CloudflareError",
    "ConfigError",
    "ConnectionError",
    "ContextLengthExceededError",
    "CostTracker",
    "EmbedResponse",
    "GatewayMeta",
    "GatewayOptions",
    "InvalidInputError",
    "LedgerUnavailableError",
    "MalformedResponseError",
    "Message",
    "ModelInfo",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestTooLargeError",
    "Route",
    "Secret",
    "ServerError",
    "Settings",
    "StreamInterrupted",
    "TimeoutError",
    "ToolCall",
    "ToolCallChunk",
    "ToolSpec",
    "TransportError",
    "Usage",
    "UsageRecord",
    "VectorizeClient",
    "VectorizeIndex",
    "cost_of",
    "get_model",
    "load_catalog",
    "load_settings",
    "open_ledger",
    "resolve_route",
]
