"""The :class:`Settings` value and how each setting is coerced and checked (no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cfgateway.config._values import (
    check_budget,
    check_chat_defaults,
    check_list,
    check_options,
    check_rate_limits,
    check_rollout,
    check_shadow,
)
from cfgateway.errors import ConfigError
from cfgateway.routing.model_strings import check_model_string
from cfgateway.types import Secret

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
DEFAULT_GATEWAY_BASE_URL = "https://gateway.ai.cloudflare.com/v1"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2

# setting -> environment variables, first found wins
ENV_VARS: dict[str, tuple[str, ...]] = {
    "account_id": ("CLOUDFLARE_ACCOUNT_ID",),
    "api_token": ("CLOUDFLARE_API_TOKEN",),
    "gateway_id": ("CLOUDFLARE_AI_GATEWAY_ID",),
    "gateway_token": ("CLOUDFLARE_AI_GATEWAY_TOKEN", "CF_AIG_TOKEN", "CF_GATEWAY_TOKEN"),
    "base_url": ("CLOUDFLARE_API_BASE_URL",),
    "gateway_base_url": ("CLOUDFLARE_AI_GATEWAY_BASE_URL",),
    "timeout": ("CFGATEWAY_TIMEOUT",),
    "max_retries": ("CFGATEWAY_MAX_RETRIES",),
    "ledger": ("CFGATEWAY_LEDGER",),
    "catalog": ("CFGATEWAY_CATALOG",),
    "chat_model": ("CFGATEWAY_CHAT_MODEL",),
    "embed_model": ("CFGATEWAY_EMBED_MODEL",),
    "fallbacks": ("CFGATEWAY_FALLBACKS",),
    "embed_fallbacks": ("CFGATEWAY_EMBED_FALLBACKS",),
    "fallback_mode": ("CFGATEWAY_FALLBACK_MODE",),
    "endpoint": ("CFGATEWAY_ENDPOINT",),
    "rollout": ("CFGATEWAY_ROLLOUT",),
    "shadow": ("CFGATEWAY_SHADOW",),
    "embed_dimensions": ("CFGATEWAY_EMBED_DIMENSIONS",),
    "embed_cache": ("CFGATEWAY_EMBED_CACHE",),
    "byok": ("CFGATEWAY_BYOK",),
    "budget_fail_open": ("CFGATEWAY_BUDGET_FAIL_OPEN",),
    "spool_dir": ("CFGATEWAY_SPOOL_DIR",),
    "alert_webhook": ("CFGATEWAY_ALERT_WEBHOOK",),
    "alert_sinks": ("CFGATEWAY_ALERT_SINKS",),
    "rate_limits": ("CFGATEWAY_RATE_LIMITS",),
}

# Provider keys, read only when byok=False (the gateway stores keys by default).
PROVIDER_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
    "perplexity-ai": "PERPLEXITY_API_KEY",
    "grok": "XAI_API_KEY",
    "custom-deepinfra": "DEEPINFRA_API_KEY",
    "google-ai-studio": "GOOGLE_API_KEY",
    "azure-openai": "AZURE_OPENAI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "huggingface": "HF_TOKEN",
    "replicate": "REPLICATE_API_TOKEN",
    "baseten": "BASETEN_API_KEY",
    "perplexity": "PERPLEXITY_API_KEY",
    "xai": "XAI_API_KEY",
}
ENDPOINTS = ("auto", "native", "openai", "compat", "direct", "gateway")
FALLBACK_MODES = ("client", "gateway")
# Keys only the file has: secrets by reference to an environment variable, never as literals.
FILE_ONLY_KEYS = ("api_token_env", "gateway_token_env", "provider_keys_env")

_SECRETS = ("api_token", "gateway_token")


def redact_url(url: str | None) -> str | None:
    """``url`` with any password (and a user name beside it) replaced by ``***``: the form to print.

    ``redis://:secret@host:6379/0`` -> ``redis://***@host:6379/0``; a URL without credentials is unchanged.
    """
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None and parts.username is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved connection settings. Tokens are :class:`~cfgateway.types.Secret`."""

    account_id: str | None = None
    api_token: Secret | None = field(default=None, repr=False)
    gateway_id: str | None = None
    gateway_token: Secret | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    gateway_base_url: str = DEFAULT_GATEWAY_BASE_URL
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    byok: bool = True
    provider_keys: Mapping[str, Secret] = field(default_factory=dict, repr=False)
    ledger: str | None = field(default=None, repr=False)  # may hold a password: shown redacted by __repr__
    catalog: str | None = None
    profile: str | None = None
    # What the app runs on (used when the code names no model): routes, fallbacks, rollout, options, budgets.
    chat_model: str | None = None
    embed_model: str | None = None
    fallbacks: tuple[str, ...] = ()
    embed_fallbacks: tuple[str, ...] = ()
    fallback_mode: str | None = None  # "client" | "gateway"
    endpoint: str | None = None  # one of ENDPOINTS; None = the caller's default ("auto")
    # fixed shares {"model", "percent", "salt"?}, or a staged rollout {"candidate", "stages", "gates", "auto", ...}
    rollout: tuple[Mapping[str, Any], ...] = ()
    # a shadow comparison {"candidate", "sample", "similarity_model", "max_cost", ...} (routing.shadow.Shadow)
    shadow: Mapping[str, Any] = field(default_factory=dict)
    embed_dimensions: int | None = None
    # An embedding cache URL (memory://, sqlite:///path.db, redis://...): may hold a password, shown redacted.
    embed_cache: str | None = field(default=None, repr=False)
    gateway_options: Mapping[str, Any] = field(default_factory=dict)  # GatewayOptions fields
    budgets: tuple[Mapping[str, Any], ...] = ()  # {"limit", "window", "scope", "key", "alerts"}
    chat_defaults: Mapping[str, Any] = field(default_factory=dict)  # max_tokens, temperature, ... when code sets none
    # Budget checks when the ledger cannot be reached: False (default) refuses calls with
    # LedgerUnavailableError, True sends them unchecked. Usage records are spooled either way.
    budget_fail_open: bool = False
    spool_dir: str | None = None  # where unsent usage records wait (default: default_spool_dir())
    # Circuit breaker settings: defaults for every route plus {"routes": {model: {...}}} (routing.breaker).
    breaker: Mapping[str, Any] = field(default_factory=dict)
    # Alerts (values parsed by cfgateway.costs.alerts):
    alert_webhook: str | None = field(default=None, repr=False)  # a Slack hook URL holds its token: never shown
    alert_sinks: Any = None  # "log,webhook" or ["log", "webhook"]
    # Client-side rate limits by model string or glob: {"custom-deepinfra/*": {"rpm": 60}, "@cf/*": "catalog"}
    rate_limits: Mapping[str, Any] = field(default_factory=dict)
    config_path: str | None = None  # the file that was read, if any
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)  # name -> where from

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"Settings({shown}, ledger={redact_url(self.ledger)!r}, embed_cache={redact_url(self.embed_cache)!r})"

    def with_overrides(self, **kwargs: Any) -> Settings:
        return replace(self, **{k: coerce(k, v) for k, v in kwargs.items() if v is not None})

    def provider_key(self, provider: str) -> Secret | None:
        if provider in self.provider_keys:
            return self.provider_keys[provider]
        return None


def coerce(name: str, value: Any) -> Any:
    if name in _SECRETS:
        if isinstance(value, Secret):
            return value
        getter = getattr(value, "get_secret_value", None)  # pydantic SecretStr
        return Secret(getter() if getter else str(value))
    if name == "timeout":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"timeout must be a number of seconds, got {value!r}") from None
    if name == "max_retries":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"max_retries must be a whole number, got {value!r}") from None
    if name in ("base_url", "gateway_base_url"):
        return str(value).rstrip("/")
    if name == "provider_keys":
        return {k: coerce("api_token", v) for k, v in dict(value).items()}
    if name in ("byok", "budget_fail_open"):
        return _bool(name, value)
    if name == "rate_limits":
        return check_rate_limits(value)
    if name == "breaker":
        if not isinstance(value, Mapping):
            raise ConfigError(f"breaker must be a table ([breaker] in cfgateway.toml), got {value!r}")
        return dict(value)
    return _coerce_route(name, value)


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    env = ENV_VARS[name][0]
    raise ConfigError(f"{name} must be true or false ({env}=1 or 0), got {value!r}")


_CACHE_SCHEMES = ("memory://", "sqlite://", "redis://", "rediss://", "unix://")


def _cache_url(value: Any) -> str | None:
    """The ``embed_cache`` URL, its scheme checked here (the options when the cache is opened)."""
    text = str(value).strip() if value is not None else ""
    if not text or text.lower() in ("none", "off"):
        return None
    if text == "memory" or text.startswith(_CACHE_SCHEMES):
        return text
    raise ConfigError(f"embed_cache must be memory://, sqlite:///path.db or redis://host:port/db "
                      f"(CFGATEWAY_EMBED_CACHE), got {redact_url(text)!r}")


def _coerce_route(name: str, value: Any) -> Any:
    """Model strings, lists of them, and the route settings (checked: a bad one never reaches a URL)."""
    if name in ("chat_model", "embed_model"):
        return check_model_string(value)
    if name in ("fallbacks", "embed_fallbacks"):
        return tuple(check_model_string(m) for m in check_list(name, value))
    if name == "fallback_mode" and value not in FALLBACK_MODES:
        raise ConfigError(f"fallback_mode must be one of {', '.join(FALLBACK_MODES)}, got {value!r}")
    if name == "endpoint" and value not in ENDPOINTS:
        raise ConfigError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {value!r}")
    if name == "rollout":
        return check_rollout(value)
    if name == "shadow":
        return check_shadow(value)
    if name == "embed_dimensions":
        try:
            dims = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"embed_dimensions must be a whole number, got {value!r}") from None
        if dims <= 0:
            raise ConfigError(f"embed_dimensions must be positive, got {dims}")
        return dims
    if name == "embed_cache":
        return _cache_url(value)
    if name == "gateway_options":
        return check_options(value)
    if name == "chat_defaults":
        return check_chat_defaults(value)
    if name == "budgets":
        return tuple(check_budget(b) for b in check_list(name, value, split=False))
    return value


__all__ = [
    "ENDPOINTS", "ENV_VARS", "FALLBACK_MODES", "FILE_ONLY_KEYS", "PROVIDER_KEY_ENV", "Settings", "coerce", "redact_url",
]
