"""Settings: constructor arguments > environment > ``cfgateway.toml`` profile > defaults.

This module is the only reader of ``os.environ`` and of the config file.

``cfgateway.toml`` (path from ``CFGATEWAY_CONFIG``, else ``./cfgateway.toml``)::

    account_id = "abc123"          # top-level keys apply to every profile
    timeout = 30

    [profiles.prod]                # chosen by profile="prod" or CFGATEWAY_PROFILE=prod
    gateway_id = "prod-gw"
    ledger = "sqlite:///var/lib/cfgateway/costs.db"

Tokens may live in the file but are better left to the environment.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cfgateway.errors import ConfigError
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
    "budget_fail_open": ("CFGATEWAY_BUDGET_FAIL_OPEN",),
    "spool_dir": ("CFGATEWAY_SPOOL_DIR",),
    "alert_webhook": ("CFGATEWAY_ALERT_WEBHOOK",),
    "alert_sinks": ("CFGATEWAY_ALERT_SINKS",),
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
}

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
    # Budget checks when the ledger cannot be reached: False (default) refuses calls with
    # LedgerUnavailableError, True sends them unchecked. Usage records are spooled either way.
    budget_fail_open: bool = False
    spool_dir: str | None = None  # where unsent usage records wait (default: default_spool_dir())
    # Circuit breaker settings: defaults for every route plus {"routes": {model: {...}}} (routing.breaker).
    breaker: Mapping[str, Any] = field(default_factory=dict)
    # Alerts and rollouts (values parsed by cfgateway.costs.alerts / cfgateway.routing.rollout):
    alert_webhook: str | None = field(default=None, repr=False)  # a Slack hook URL holds its token: never shown
    alert_sinks: Any = None  # "log,webhook" or ["log", "webhook"]
    rollout: Mapping[str, Any] | None = None  # {candidate, stages, auto, gates...} for rollout_from_settings

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"Settings({shown}, ledger={redact_url(self.ledger)!r})"

    def with_overrides(self, **kwargs: Any) -> Settings:
        return replace(self, **{k: _coerce(k, v) for k, v in kwargs.items() if v is not None})

    def provider_key(self, provider: str) -> Secret | None:
        if provider in self.provider_keys:
            return self.provider_keys[provider]
        return None


def _coerce(name: str, value: Any) -> Any:
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
        return {k: _coerce("api_token", v) for k, v in dict(value).items()}
    if name == "byok" and isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off")
    if name == "budget_fail_open":
        return _flag(name, value)
    if name == "breaker":
        if not isinstance(value, Mapping):
            raise ConfigError(f"breaker must be a table ([breaker] in cfgateway.toml), got {value!r}")
        return dict(value)
    return value


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def default_spool_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where unsent usage records wait: ``$CFGATEWAY_SPOOL_DIR``, else ``$XDG_CACHE_HOME/cfgateway/spool``,
    else ``~/.cache/cfgateway/spool``; ``<tmp>/cfgateway-spool-<uid>`` when there is no home directory."""
    environ = os.environ if env is None else env
    if environ.get("CFGATEWAY_SPOOL_DIR"):
        return Path(environ["CFGATEWAY_SPOOL_DIR"])
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "cfgateway" / "spool"
    try:
        return Path.home() / ".cache" / "cfgateway" / "spool"
    except RuntimeError:  # no home directory
        uid = os.getuid() if hasattr(os, "getuid") else 0
        return Path(tempfile.gettempdir()) / f"cfgateway-spool-{uid}"


def _read_toml(path: Path, profile: str | None) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    profiles = data.pop("profiles", {})
    if profile is not None:
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"profile {profile!r} is not in {path} (profiles there: {known})")
        data.update(profiles[profile])
    known_names = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known_names)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known_names))}")
    return data


def load_settings(
    *,
    profile: str | None = None,
    config_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings: ``overrides`` (non-None) > ``env`` > config-file profile > defaults."""
    environ = os.environ if env is None else env
    profile = profile or environ.get("CFGATEWAY_PROFILE") or None
    path_str = config_path or environ.get("CFGATEWAY_CONFIG")
    path = Path(path_str) if path_str else Path("cfgateway.toml")
    values: dict[str, Any] = {}
    if path.is_file():
        values.update(_read_toml(path, profile))
    elif path_str:
        raise ConfigError(f"config file {path} (from CFGATEWAY_CONFIG or config_path) does not exist")
    elif profile is not None:
        raise ConfigError(f"profile {profile!r} was asked for but there is no cfgateway.toml; set CFGATEWAY_CONFIG")
    for name, names in ENV_VARS.items():
        for var in names:
            if environ.get(var):
                values[name] = environ[var]
                break
    byok = _coerce("byok", overrides.get("byok", values.get("byok", True)))
    keys = dict(values.get("provider_keys", {}))
    if not byok:
        for provider, var in PROVIDER_KEY_ENV.items():
            if environ.get(var):
                keys.setdefault(provider, environ[var])
    keys.update(overrides.pop("provider_keys", None) or {})
    values["provider_keys"] = keys
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["profile"] = profile
    return Settings(**{k: _coerce(k, v) for k, v in values.items()})


__all__ = ["ENV_VARS", "PROVIDER_KEY_ENV", "Settings", "default_spool_dir", "load_settings", "redact_url"]
