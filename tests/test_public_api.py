"""Pin each package's public names: a change here is a change to the public API."""

from __future__ import annotations

import importlib

import pytest

CFGATEWAY = {
    "APIError", "AsyncClient", "AttemptInfo", "AuthenticationError", "BadRequestError", "Budget",
    "BudgetExceededError", "CallContext", "CapacityError", "Catalog", "ChatChunk", "ChatRequest", "ChatResponse",
    "Client", "CloudflareError", "ConfigError", "ConnectionError", "ContextLengthExceededError", "CostTracker",
    "EmbedResponse", "GatewayMeta", "GatewayOptions", "InvalidInputError", "LedgerUnavailableError",
    "MalformedResponseError", "Message",
    "ModelInfo", "NotFoundError", "PermissionDeniedError", "QuotaExceededError", "RateLimitError",
    "RequestTooLargeError", "Route", "Secret", "ServerError", "Settings", "StreamInterrupted", "TimeoutError",
    "ToolCall", "ToolCallChunk", "ToolSpec", "TransportError", "Usage", "UsageRecord", "cost_of", "get_model",
    "load_catalog", "load_settings", "open_ledger", "resolve_route",
    "AllRoutesFailed", "FallbackChain", "Rollout", "RoutingPolicy", "TierRule", "build_client",
    "CircuitOpenError", "GatewayStepFailed", "IncompleteResponseError", "MidStreamError", "RouteSkipped",
    "AlertEvent", "Alerts", "Gates", "WebhookSink", "Shadow", "flush_shadows",
    "VectorizeClient", "VectorizeIndex",
    "openai_client", "async_openai_client", "autogen_model_info",
    "connect",
    "open_embedding_cache",
}

# The core's own modules: what the layers above (adapters, proxy, emulator) may rely on.
CORE_MODULES = {
    "cfgateway.errors": {
        "APIError", "AllRoutesFailed", "AuthenticationError", "BadRequestError", "BudgetExceededError",
        "CapacityError", "CircuitOpenError", "CloudflareError", "ConfigError", "ConnectionError",
        "ContextLengthExceededError", "GatewayStepFailed", "IncompleteResponseError", "InvalidInputError",
        "LedgerUnavailableError",
        "MalformedResponseError", "MidStreamError", "NotFoundError", "PermissionDeniedError", "QuotaExceededError",
        "RateLimitError", "RequestTooLargeError", "RouteSkipped", "ServerError", "StreamInterrupted", "TimeoutError",
        "TransportError",
    },
    "cfgateway.error_codes": {"CODES", "Code", "Credential", "code_info", "error_class", "hint_for"},
    "cfgateway.calls": {"Books", "ChatPlan", "Hold", "OnePiece", "StreamRun", "Streamed", "plan_chat"},
    "cfgateway.client": {"AsyncClient", "Client"},
    "cfgateway.cache": {
        "HITS_TAG", "MISSES_TAG", "CacheGuard", "EmbeddingCache", "KeySpace", "MemoryEmbeddingCache",
        "RedisEmbeddingCache", "SQLiteEmbeddingCache", "Vector", "decode_vector", "encode_vector", "is_cache_record",
        "namespace", "open_embedding_cache", "resolve_embed_cache", "shared_embedding_cache",
    },
    "cfgateway.wire": {"WIRES", "StreamParser", "Wire", "anthropic", "openai", "workers_ai"},
}


@pytest.mark.parametrize("module", sorted(CORE_MODULES))
def test_core_module_all_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == CORE_MODULES[module]
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


def test_cfgateway_all_is_pinned_and_importable() -> None:
    mod = importlib.import_module("cfgateway")
    assert set(mod.__all__) == CFGATEWAY
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


@pytest.mark.parametrize(
    ("package", "names"),
    [
        ("langchain_cfgateway", {"ChatCloudflare", "CloudflareEmbeddings", "CloudflareCostCallbackHandler",
                                 "CloudflareVectorize", "get_cloudflare_callback"}),
        ("llama_index_cfgateway", {"CloudflareLLM", "CloudflareEmbedding", "CloudflareCostHandler",
                                   "CloudflareVectorizeStore"}),
        ("cfgateway.emulator", {"EmulatorConfig", "EmulatorServer", "EmulatorState", "Fault", "GatewayConfig",
                                "RecordedRequest", "create_app", "serve"}),
        ("cfgateway.vectorize", {"IndexConfig", "IndexDescription", "IndexInfo", "MAX_BATCH", "MAX_TOP_K",
                                 "MAX_TOP_K_WITH_DATA", "METRICS", "Match", "MetadataIndex", "Mutation", "PRESETS",
                                 "Vector", "VectorIds", "VectorizeClient", "VectorizeIndex", "WaitPolicy", "cost_of",
                                 "filter_properties", "higher_is_closer", "mmr", "monthly_cost", "relevance", "score",
                                 "similarity", "to_filter"}),
        ("cfgateway.proxy", {"KeyRing", "Limits", "Proxy", "ProxyConfig", "ProxyKey", "create_proxy_app",
                             "key_from_spec", "load_proxy_config", "serve_proxy"}),
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
