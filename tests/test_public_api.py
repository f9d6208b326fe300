"""Pin each package's public names: a change here is a change to the public API."""

from __future__ import annotations

import importlib

import pytest

CFGATEWAY = {
    "APIError", "AsyncClient", "AttemptInfo", "AuthenticationError", "BadRequestError", "Budget",
    "BudgetExceededError", "CallContext", "CapacityError", "Catalog", "ChatChunk", "ChatRequest", "ChatResponse",
    "Client", "CloudflareError", "ConfigError", "ConnectionError", "ContextLengthExceededError", "CostTracker",
    "EmbedResponse", "GatewayMeta", "GatewayOptions", "InvalidInputError", "MalformedResponseError", "Message",
    "ModelInfo", "NotFoundError", "PermissionDeniedError", "QuotaExceededError", "RateLimitError",
    "RequestTooLargeError", "Route", "Secret", "ServerError", "Settings", "StreamInterrupted", "TimeoutError",
    "ToolCall", "ToolCallChunk", "ToolSpec", "TransportError", "Usage", "UsageRecord", "cost_of", "get_model",
    "load_catalog", "load_settings", "open_ledger", "resolve_route",
    "AllRoutesFailed", "FallbackChain", "Rollout", "RoutingPolicy", "TierRule", "build_client",
    "connect",
}


def test_cfgateway_all_is_pinned_and_importable() -> None:
    mod = importlib.import_module("cfgateway")
    assert set(mod.__all__) == CFGATEWAY
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


@pytest.mark.parametrize(
    ("package", "names"),
    [
        ("langchain_cfgateway", {"ChatCloudflare", "CloudflareEmbeddings", "CloudflareCostCallbackHandler",
                                 "get_cloudflare_callback"}),
        ("llama_index_cfgateway", {"CloudflareLLM", "CloudflareEmbedding", "CloudflareCostHandler"}),
    ],
)
def test_adapter_all_is_pinned(package: str, names: set[str]) -> None:
    mod = importlib.import_module(package)
    assert set(mod.__all__) == names
    for name in names:
        assert getattr(mod, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    import cfgateway

    with pytest.raises(AttributeError):
        cfgateway.NoSuchThing  # noqa: B018
