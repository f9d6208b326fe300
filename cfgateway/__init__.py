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

from cfgateway.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    CapacityError,
    CloudflareError,
    ConfigError,
    ConnectionError,
    ContextLengthExceededError,
    InvalidInputError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    StreamInterrupted,
    TimeoutError,
    TransportError,
)
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

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
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
    "AllRoutesFailed": "cfgateway.fallback",
    "build_client": "cfgateway.fallback",
    "Rollout": "cfgateway.routing.rollout",
    "TierRule": "cfgateway.routing.rollout",
    "RoutingPolicy": "cfgateway.routing.rollout",
    "CostTracker": "cfgateway.costs.budget",
    "connect": "cfgateway.connection",
}

if TYPE_CHECKING:
    from cfgateway.client import AsyncClient, Client
    from cfgateway.config import Settings, load_settings
    from cfgateway.connection import connect
    from cfgateway.costs.budget import Budget, CostTracker
    from cfgateway.costs.catalog import Catalog, ModelInfo, get_model, load_catalog
    from cfgateway.costs.ledger import UsageRecord, open_ledger
    from cfgateway.costs.pricing import cost_of
    from cfgateway.fallback import AllRoutesFailed, FallbackChain, build_client
    from cfgateway.routing.rollout import Rollout, RoutingPolicy, TierRule
    from cfgateway.routing.routes import GatewayOptions, Route, resolve_route


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cfgateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "APIError",
    "AllRoutesFailed",
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
    "cost_of",
    "get_model",
    "load_catalog",
    "load_settings",
    "open_ledger",
    "resolve_route",
]
