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
from cfgateway.routing.model_strings import check_model_string, quote_path
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

# Providers the core reaches only through the gateway's unified ``compat/chat/completions`` (§3.3):
# the model string goes in the body unchanged and the answer is OpenAI-shaped. ``perplexity`` and
# ``xai`` are the compat names of ``perplexity-ai`` and ``grok``; ``dynamic/{route}`` names a gateway
# dynamic route. aws-bedrock and google-vertex-ai need keys stored in the gateway (it signs the request).
COMPAT_PROVIDERS: frozenset[str] = frozenset({
    "google-ai-studio", "google-vertex-ai", "aws-bedrock", "azure-openai", "cohere", "huggingface",
    "replicate", "baseten", "saladcloud", "perplexity", "xai", "dynamic",
})
STORED_KEYS_ONLY: frozenset[str] = frozenset({"aws-bedrock", "google-vertex-ai", "dynamic"})

# Gateway providers that serve neither chat nor embeddings: refused before sending (guess for parallel/neon).
NOT_ROUTED: dict[str, str] = {
    "cartesia": "speech synthesis", "deepgram": "speech recognition and synthesis",
    "elevenlabs": "speech synthesis", "fal": "image and video generation", "ideogram": "image generation",
    "parallel": "web search", "neon": "a database service",
}

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


def known_providers() -> list[str]:
    """Every provider slug a model string may start with (besides ``@cf``/``@hf`` and ``custom-{slug}``)."""
    return sorted({"workers-ai", *PROVIDERS, *COMPAT_PROVIDERS})


def split_model(model: str, endpoint: Endpoint = "auto") -> tuple[str, str]:
    """``(provider, provider_model)`` for a model string; refuses strings outside the grammar
    (:mod:`cfgateway.routing.model_strings`) and unknown providers before anything is sent."""
    check_model_string(model)
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
    if provider in NOT_ROUTED:
        raise ConfigError(
            f"model {model!r}: {provider} serves {NOT_ROUTED[provider]}, not chat or embeddings, so cfgateway has "
            f"no route for it; call the gateway's {provider}/ path with your own HTTP client"
        )
    known = provider in PROVIDERS or provider in COMPAT_PROVIDERS or provider.startswith("custom-")
    if not known and endpoint != "compat":
        raise ConfigError(
            f"model {model!r}: unknown provider {provider!r}. Known: {', '.join(known_providers())}, "
            f"custom-{{slug}} (a custom provider) and dynamic/{{route}} (a gateway dynamic route). For a provider "
            f"the gateway serves that is not listed yet, send the model string unchanged through the gateway's "
            f"compat/chat/completions: endpoint='compat' (env CFGATEWAY_ENDPOINT=compat, config key endpoint)"
        )
    return provider, rest


def _need(value: str | None, what: str, env: str, key: str) -> str:
    if not value:
        raise ConfigError(f"{what} is not set: pass {key}=, set {env}, or put {key} in a cfgateway.toml profile")
    return value


def _gateway_base(s: Settings) -> str:
    acct = _need(s.account_id, "account id", "CLOUDFLARE_ACCOUNT_ID", "account_id")
    gw = _need(s.gateway_id, "AI Gateway id", "CLOUDFLARE_AI_GATEWAY_ID", "gateway_id")
    return f"{s.gateway_base_url}/{acct}/{gw}"


def _gateway_auth(s: Settings) -> dict[str, str]:
    if s.gateway_token:
        return {"cf-aig-authorization": f"Bearer {s.gateway_token.get_secret_value()}"}
    return {}


def _workers_ai_route(model: str, canonical: str, s: Settings, endpoint: Endpoint) -> Route:
    token = s.api_token.get_secret_value() if s.api_token else ""
    if not token:
        raise ConfigError(
            "Cloudflare API token is not set: pass api_token=, set CLOUDFLARE_API_TOKEN, or name the variable "
            "holding it with api_token_env in a cfgateway.toml profile"
        )
    auth = {"Authorization": f"Bearer {token}"}
    openai_wire = endpoint == "openai"
    through_gateway = canonical.startswith("workers-ai/") or endpoint == "gateway"
    through_gateway = through_gateway or (bool(s.gateway_id) and endpoint != "direct")
    if through_gateway:
        base = f"{_gateway_base(s)}/workers-ai"
        headers = {**auth, **_gateway_auth(s)}
    else:
        acct = _need(s.account_id, "account id", "CLOUDFLARE_ACCOUNT_ID", "account_id")
        base = f"{s.base_url}/accounts/{acct}/ai"
        headers = auth
    native = base if through_gateway else f"{base}/run"
    path = quote_path(model)
    chat = f"{base}/v1/chat/completions" if openai_wire else f"{native}/{path}"
    embed = f"{base}/v1/embeddings" if openai_wire else f"{native}/{path}"
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


def _missing_key(provider: str, s: Settings) -> ConfigError:
    env = PROVIDER_KEY_ENV.get(provider)
    if provider in STORED_KEYS_ONLY:
        return ConfigError(
            f"{provider} is reached with keys stored in the gateway, which signs the request: keep byok on "
            f"(byok=True, CFGATEWAY_BYOK=1, config key byok = true), store the keys in the gateway and set the "
            f"gateway token (gateway_token=, CLOUDFLARE_AI_GATEWAY_TOKEN, config key gateway_token_env)"
        )
    if not s.byok:
        var = env or f"a key for {provider} in provider_keys"
        return ConfigError(
            f"{provider}: byok is off (byok=False, CFGATEWAY_BYOK=0 or config key byok = false), so cfgateway sends "
            f"your own key, but {var} is not set. Set {var} (or provider_keys_env in a cfgateway.toml profile), "
            f"or turn byok on and set the gateway token (CLOUDFLARE_AI_GATEWAY_TOKEN) to use keys stored in the gateway"
        )
    own = f"set {env}" if env else f"put a key for {provider} in provider_keys"
    return ConfigError(
        f"{provider} is reached through AI Gateway with keys stored in the gateway (BYOK), which needs the gateway "
        f"token: pass gateway_token=, set CLOUDFLARE_AI_GATEWAY_TOKEN, or name its variable with gateway_token_env "
        f"in a cfgateway.toml profile. To send your own key instead, pass byok=False (CFGATEWAY_BYOK=0, config key "
        f"byok = false) and {own}."
    )


def _provider_headers(provider: str, spec: ProviderSpec | None, s: Settings) -> dict[str, str]:
    key = s.provider_key(provider) if provider not in STORED_KEYS_ONLY else None
    headers: dict[str, str] = {}
    if key:
        if spec is not None and spec.auth == "x-api-key":
            headers["x-api-key"] = key.get_secret_value()
        else:
            headers["Authorization"] = f"Bearer {key.get_secret_value()}"
    if spec is not None and spec.wire == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    if not key and (not s.gateway_token or (provider in STORED_KEYS_ONLY and not s.byok)):
        raise _missing_key(provider, s)
    return headers


def _compat_route(model: str, provider: str, pmodel: str, base: str, s: Settings) -> Route:
    provider_headers = _provider_headers(provider, PROVIDERS.get(provider), s)
    provider_headers.pop("anthropic-version", None)  # compat speaks OpenAI's wire
    if "x-api-key" in provider_headers:
        provider_headers["Authorization"] = f"Bearer {provider_headers.pop('x-api-key')}"
    headers = {**provider_headers, **_gateway_auth(s)}
    return Route(model, provider, pmodel, "openai", f"{base}/compat/chat/completions", None,
                 model, True, headers, "compat", "chat/completions", None, provider_headers)


def _provider_route(model: str, provider: str, pmodel: str, s: Settings, endpoint: Endpoint) -> Route:
    base = _gateway_base(s)
    spec = PROVIDERS.get(provider)
    if endpoint == "compat" or (spec is None and not provider.startswith("custom-")):
        return _compat_route(model, provider, pmodel, base, s)
    provider_headers = _provider_headers(provider, spec, s)
    headers = {**provider_headers, **_gateway_auth(s)}
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
    provider, pmodel = split_model(model, endpoint)
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
    "COMPAT_PROVIDERS",
    "CUSTOM_PREFIXES",
    "NOT_ROUTED",
    "STORED_KEYS_ONLY",
    "PROVIDERS",
    "GatewayOptions",
    "ProviderSpec",
    "Route",
    "known_providers",
    "parse_gateway_headers",
    "resolve_route",
    "split_model",
    "universal_step",
    "universal_url",
]
