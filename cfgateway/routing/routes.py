"""Model string -> route: URL, wire format, credentials and ``cf-aig-*`` headers.

A route says *where and how to authenticate*; a wire module says *what the bytes look like*.
Workers AI direct, Workers AI through the gateway and a provider through the gateway differ
only here.

Model strings (docs/architecture.md):
- ``@cf/...`` / ``@hf/...``: Workers AI; direct to ``/ai/run/{model}``, or through the gateway's
  ``workers-ai/`` path when a gateway id is configured.
- ``workers-ai/@cf/...``: Workers AI, always through the gateway.
- ``{provider}/{model}``: a provider behind AI Gateway (``openai/gpt-4o-mini``,
  ``custom-deepinfra/Qwen/Qwen3-Embedding-8B``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cfgateway.config import PROVIDER_KEY_ENV, Settings
from cfgateway.errors import ConfigError
from cfgateway.types import GatewayMeta

Wire = Literal["workers-ai", "openai", "anthropic"]
Endpoint = Literal["auto", "native", "openai", "compat", "direct", "gateway"]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    wire: Wire
    chat_path: str | None
    embed_path: str | None = None
    auth: Literal["bearer", "x-api-key"] = "bearer"


# Provider-native paths after ``/{account}/{gateway}/{slug}/`` (docs/wire-notes.md §3.2).
PROVIDERS: dict[str, ProviderSpec] = {
    "openai": ProviderSpec("openai", "chat/completions", "embeddings"),
    "groq": ProviderSpec("openai", "chat/completions", "embeddings"),
    "deepseek": ProviderSpec("openai", "chat/completions"),
    "mistral": ProviderSpec("openai", "v1/chat/completions", "v1/embeddings"),
    "openrouter": ProviderSpec("openai", "chat/completions", "embeddings"),
    "cerebras": ProviderSpec("openai", "chat/completions"),
    "perplexity-ai": ProviderSpec("openai", "chat/completions"),
    "grok": ProviderSpec("openai", "v1/chat/completions"),
    "anthropic": ProviderSpec("anthropic", "v1/messages", auth="x-api-key"),
}

# custom-{slug}: where the upstream's OpenAI-compatible API lives after the gateway's base URL.
CUSTOM_PREFIXES: dict[str, str] = {"custom-deepinfra": "v1/openai"}

ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """Per-request AI Gateway options, mapped to ``cf-aig-*`` request headers (docs/wire-notes.md §3.5)."""

    cache_ttl: int | None = None
    skip_cache: bool | None = None
    cache_key: str | None = None
    metadata: Mapping[str, str | int | float | bool] | None = None
    collect_log: bool | None = None
    collect_log_payload: bool | None = None
    event_id: str | None = None
    request_timeout_ms: int | None = None
    max_attempts: int | None = None
    retry_delay_ms: int | None = None
    backoff: Literal["constant", "linear", "exponential"] | None = None
    custom_cost: tuple[float, float] | None = None  # USD per token (in, out)
    byok_alias: str | None = None

    def headers(self, extra_metadata: Mapping[str, Any] | None = None) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.cache_ttl is not None:
            h["cf-aig-cache-ttl"] = str(int(self.cache_ttl))
        if self.skip_cache is not None:
            h["cf-aig-skip-cache"] = _bool(self.skip_cache)
        if self.cache_key is not None:
            h["cf-aig-cache-key"] = self.cache_key
        meta = {**(self.metadata or {}), **(extra_metadata or {})}
        if meta:
            # The gateway keeps at most 5 entries; values must be str/number/bool.
            items = [(k, v if isinstance(v, (str, int, float, bool)) else str(v)) for k, v in meta.items()][:5]
            h["cf-aig-metadata"] = json.dumps(dict(items), separators=(",", ":"))
        if self.collect_log is not None:
            h["cf-aig-collect-log"] = _bool(self.collect_log)
        if self.collect_log_payload is not None:
            h["cf-aig-collect-log-payload"] = _bool(self.collect_log_payload)
        if self.event_id is not None:
            h["cf-aig-event-id"] = self.event_id
        if self.request_timeout_ms is not None:
            h["cf-aig-request-timeout"] = str(int(self.request_timeout_ms))
        if self.max_attempts is not None:
            h["cf-aig-max-attempts"] = str(min(int(self.max_attempts), 5))
        if self.retry_delay_ms is not None:
            h["cf-aig-retry-delay"] = str(min(int(self.retry_delay_ms), 5000))
        if self.backoff is not None:
            h["cf-aig-backoff"] = self.backoff
        if self.custom_cost is not None:
            cin, cout = self.custom_cost
            h["cf-aig-custom-cost"] = json.dumps({"per_token_in": cin, "per_token_out": cout}, separators=(",", ":"))
        if self.byok_alias is not None:
            h["cf-aig-byok-alias"] = self.byok_alias
        return h


def _bool(v: bool) -> str:
    return "true" if v else "false"


@dataclass(frozen=True, slots=True)
class Route:
    """Where one model string is sent. ``headers`` hold credentials: never printed."""

    model: str  # canonical model string (docs/architecture.md convention)
    provider: str  # "workers-ai" or the gateway provider slug
    provider_model: str  # the id the provider knows
    wire: Wire
    chat_url: str | None
    embed_url: str | None
    body_model: str | None  # the "model" body field (None for Workers AI native)
    via_gateway: bool
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    # For the Universal Endpoint: the provider slug and paths after it, and provider-only headers.
    step_provider: str = ""
    step_chat_endpoint: str | None = None
    step_embed_endpoint: str | None = None
    step_headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_workers_ai(self) -> bool:
        return self.provider == "workers-ai"


def split_model(model: str) -> tuple[str, str]:
    """``(provider, provider_model)`` for a model string."""
    if not model or model != model.strip():
        raise ConfigError(f"model string {model!r} is empty or has surrounding spaces")
    if model.startswith(("@cf/", "@hf/")):
        return "workers-ai", model
    if "/" not in model:
        raise ConfigError(
            f"model {model!r} has no provider: use '@cf/…' for Workers AI or '{{provider}}/{{model}}' "
            f"for a provider behind AI Gateway (e.g. 'openai/{model}')"
        )
    provider, rest = model.split("/", 1)
    if provider == "workers-ai":
        if not rest.startswith(("@cf/", "@hf/")):
            raise ConfigError(f"model {model!r}: after 'workers-ai/' comes a Workers AI id such as '@cf/meta/…'")
        return "workers-ai", rest
    if provider not in PROVIDERS and not provider.startswith("custom-"):
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"model {model!r}: unknown provider {provider!r} (known: {known}, or custom-{{slug}})")
    return provider, rest


def _need(value: str | None, what: str, env: str) -> str:
    if not value:
        raise ConfigError(f"{what} is not set: pass it as an argument or set {env}")
    return value


def _gateway_base(s: Settings) -> str:
    acct = _need(s.account_id, "account id", "CLOUDFLARE_ACCOUNT_ID")
    gw = _need(s.gateway_id, "AI Gateway id", "CLOUDFLARE_AI_GATEWAY_ID")
    return f"{s.gateway_base_url}/{acct}/{gw}"


def _gateway_auth(s: Settings) -> dict[str, str]:
    if s.gateway_token:
        return {"cf-aig-authorization": f"Bearer {s.gateway_token.get_secret_value()}"}
    return {}


def _workers_ai_route(model: str, canonical: str, s: Settings, endpoint: Endpoint) -> Route:
    token = s.api_token.get_secret_value() if s.api_token else ""
    _need(token, "Cloudflare API token", "CLOUDFLARE_API_TOKEN")
    auth = {"Authorization": f"Bearer {token}"}
    openai_wire = endpoint == "openai"
    through_gateway = canonical.startswith("workers-ai/") or endpoint == "gateway"
    through_gateway = through_gateway or (bool(s.gateway_id) and endpoint != "direct")
    if through_gateway:
        base = f"{_gateway_base(s)}/workers-ai"
        headers = {**auth, **_gateway_auth(s)}
    else:
        acct = _need(s.account_id, "account id", "CLOUDFLARE_ACCOUNT_ID")
        base = f"{s.base_url}/accounts/{acct}/ai"
        headers = auth
    native = base if through_gateway else f"{base}/run"
    chat = f"{base}/v1/chat/completions" if openai_wire else f"{native}/{model}"
    embed = f"{base}/v1/embeddings" if openai_wire else f"{native}/{model}"
    return Route(
        model=model,
        provider="workers-ai",
        provider_model=model,
        wire="openai" if openai_wire else "workers-ai",
        chat_url=chat,
        embed_url=embed,
        body_model=model if openai_wire else None,
        via_gateway=through_gateway,
        headers=headers,
        step_provider="workers-ai",
        step_chat_endpoint="v1/chat/completions" if openai_wire else model,
        step_embed_endpoint="v1/embeddings" if openai_wire else model,
        step_headers=auth,
    )


def _provider_headers(provider: str, spec: ProviderSpec | None, s: Settings) -> dict[str, str]:
    key = s.provider_key(provider)
    headers: dict[str, str] = {}
    if key:
        if spec is not None and spec.auth == "x-api-key":
            headers["x-api-key"] = key.get_secret_value()
        else:
            headers["Authorization"] = f"Bearer {key.get_secret_value()}"
    if spec is not None and spec.wire == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    if not key and not s.gateway_token:
        env = PROVIDER_KEY_ENV.get(provider, f"a key for {provider}")
        raise ConfigError(
            f"{provider} is reached through AI Gateway with keys stored in the gateway (BYOK), which needs the "
            f"gateway token: set CLOUDFLARE_AI_GATEWAY_TOKEN (or gateway_token=). To send your own key instead, "
            f"pass byok=False and set {env}."
        )
    return headers


def _provider_route(model: str, provider: str, pmodel: str, s: Settings, endpoint: Endpoint) -> Route:
    base = _gateway_base(s)
    spec = PROVIDERS.get(provider)
    provider_headers = _provider_headers(provider, spec, s)
    headers = {**provider_headers, **_gateway_auth(s)}
    if endpoint == "compat":
        return Route(model, provider, pmodel, "openai", f"{base}/compat/chat/completions", None,
                     model, True, headers, "compat", "chat/completions", None, provider_headers)
    if spec is None:  # custom-{slug}
        prefix = CUSTOM_PREFIXES.get(provider, "")
        pre = f"{prefix}/" if prefix else ""
        chat_ep, embed_ep = f"{pre}chat/completions", f"{pre}embeddings"
        wire: Wire = "openai"
    else:
        chat_ep, embed_ep, wire = spec.chat_path, spec.embed_path, spec.wire  # type: ignore[assignment]
    return Route(
        model=model,
        provider=provider,
        provider_model=pmodel,
        wire=wire,
        chat_url=f"{base}/{provider}/{chat_ep}" if chat_ep else None,
        embed_url=f"{base}/{provider}/{embed_ep}" if embed_ep else None,
        body_model=pmodel,
        via_gateway=True,
        headers=headers,
        step_provider=provider,
        step_chat_endpoint=chat_ep,
        step_embed_endpoint=embed_ep,
        step_headers=provider_headers,
    )


def resolve_route(model: str, settings: Settings, endpoint: Endpoint = "auto") -> Route:
    """The route for ``model``; raises :class:`ConfigError` naming the missing setting."""
    provider, pmodel = split_model(model)
    if provider == "workers-ai":
        canonical = model
        return _workers_ai_route(pmodel, canonical, settings, endpoint)
    return _provider_route(model, provider, pmodel, settings, endpoint)


def universal_url(settings: Settings) -> str:
    return _gateway_base(settings)


def universal_step(
    route: Route, body: dict[str, Any], *, operation: str = "chat", config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One Universal Endpoint step (docs/wire-notes.md §3.4) for ``route``."""
    endpoint = route.step_chat_endpoint if operation == "chat" else route.step_embed_endpoint
    if endpoint is None:
        raise ConfigError(f"{route.model} has no {operation} endpoint for the Universal Endpoint")
    step: dict[str, Any] = {
        "provider": route.step_provider,
        "endpoint": endpoint,
        "headers": {**route.step_headers, "Content-Type": "application/json"},
        "query": body,
    }
    if config:
        step["config"] = dict(config)
    return step


def parse_gateway_headers(headers: Mapping[str, str]) -> GatewayMeta:
    """The ``cf-aig-*`` response headers (docs/wire-notes.md §3.6) as :class:`GatewayMeta`."""
    get = headers.get
    step = get("cf-aig-step")
    return GatewayMeta(
        cache_status=get("cf-aig-cache-status"),
        log_id=get("cf-aig-log-id"),
        event_id=get("cf-aig-event-id"),
        request_id=get("cf-aig-request-id"),
        step=int(step) if step is not None and step.isdigit() else None,
        model=get("cf-aig-model") or get("cf-aig-routed-model"),
        provider=get("cf-aig-provider"),
    )


__all__ = [
    "CUSTOM_PREFIXES",
    "PROVIDERS",
    "GatewayOptions",
    "ProviderSpec",
    "Route",
    "parse_gateway_headers",
    "resolve_route",
    "split_model",
    "universal_step",
    "universal_url",
]
