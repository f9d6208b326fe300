"""Connection fields shared by :class:`ChatCloudflare` and :class:`CloudflareEmbeddings`.

Everything resolves once, at construction, through the core's :mod:`cfgateway.connection` (the same helper
the LlamaIndex adapter uses): settings (arguments > ``CLOUDFLARE_*`` / ``CFGATEWAY_*`` environment >
``cfgateway.toml`` profile > defaults), and the model, fallbacks, endpoint and gateway options the code
left out (``CFGATEWAY_CHAT_MODEL`` / ``chat_model``, ...). Every route is checked then, so a bad model
string or a missing setting raises :class:`cfgateway.ConfigError` at construction; an unknown argument
raises :class:`TypeError`. The core client is built on first use, once per instance, and pooled.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.embeddings import Embeddings
from pydantic import AliasChoices, BaseModel, Field, PrivateAttr, SecretStr, field_validator, model_validator

from cfgateway.config import Settings, load_settings
from cfgateway.connection import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBED_MODEL,
    Connection,
    Kind,
    refuse_unknown_arguments,
    settle_arguments,
)
from cfgateway.routing.routes import GatewayOptions

if TYPE_CHECKING:
    from cfgateway.costs.catalog import ModelInfo
    from cfgateway.fallback import ModelClient

Endpoint = Literal["auto", "native", "openai", "compat", "direct", "gateway"]
_BUILD_LOCK = threading.Lock()
_FILLED = ("account_id", "api_token", "gateway_id", "gateway_token")
_SECRETS = ("api_token", "gateway_token")
_ARG_ALIASES = {"model_name": "model", "api_key": "api_token", "profile": "config_profile"}


def known_arguments(cls: type[BaseModel]) -> set[str]:
    names = set(cls.model_fields)
    for f in cls.model_fields.values():
        if f.alias:
            names.add(f.alias)
        if isinstance(f.validation_alias, AliasChoices):
            names.update(c for c in f.validation_alias.choices if isinstance(c, str))
    return names


def refuse_unknown(cls: type[BaseModel], data: Any, *, aliases: Mapping[str, str] | None = None) -> Any:
    """A :class:`TypeError` naming the accepted arguments instead of sending unknown ones anywhere."""
    if isinstance(data, dict):
        refuse_unknown_arguments(cls.__name__, [k for k in data if k not in (aliases or {})], known_arguments(cls))
    return data


class CloudflareConnection(BaseModel):
    """Where and how to reach Cloudflare (every field optional: the environment fills the rest)."""

    account_id: str | None = None
    """Cloudflare account id (``CLOUDFLARE_ACCOUNT_ID``)."""
    # validation_alias, not alias: type checkers (dataclass_transform) then see the field name, api_token=;
    # ``str`` is accepted for the same reason and always stored as SecretStr.
    api_token: SecretStr | str | None = Field(default=None, validation_alias=AliasChoices("api_token", "api_key"))
    """Workers AI API token (``CLOUDFLARE_API_TOKEN``); ``api_key=`` is accepted too."""
    gateway_id: str | None = None
    """AI Gateway id (``CLOUDFLARE_AI_GATEWAY_ID``); set = requests go through the gateway."""
    gateway_token: SecretStr | str | None = None
    """Authenticated-gateway token (``CLOUDFLARE_AI_GATEWAY_TOKEN``)."""
    base_url: str | None = None
    gateway_base_url: str | None = None
    gateway_options: GatewayOptions | None = None
    """Default ``cf-aig-*`` options (cache TTL, metadata, custom cost, ...); a dict works too."""
    fallbacks: list[str] | None = None
    """Model strings tried in order when the primary fails with a retryable error."""
    fallback_mode: Literal["client", "gateway"] | None = None
    byok: bool | None = None
    """Provider keys stored in the gateway (default True; ``CFGATEWAY_BYOK``, config key ``byok``); False sends
    your own key from the provider's env var (``OPENAI_API_KEY``, ...)."""
    config_profile: str | None = None
    """A ``cfgateway.toml`` profile (``profile="prod"`` as a string is accepted and lands here)."""
    endpoint: Endpoint = "auto"
    timeout: float | None = None
    """Seconds per request, the same for sync and async (default: cfgateway's 60 s)."""
    max_retries: int | None = None
    tracker: Any = Field(default=None, exclude=True, repr=False)
    """A :class:`cfgateway.costs.budget.CostTracker` (budgets and the shared ledger); never serialised."""
    routing: Any = Field(default=None, exclude=True, repr=False)
    """A :class:`cfgateway.RoutingPolicy` (``RoutingPolicy.build(rollout=..., tiers=...)``): the route per call,
    from the call's user id and metadata (``config={"metadata": {"user_id": ...}}``); never serialised."""

    _settings: Settings | None = PrivateAttr(default=None)
    _conn: Connection | None = PrivateAttr(default=None)
    _cf_client: Any = PrivateAttr(default=None)  # (cache key, client)

    @model_validator(mode="before")
    @classmethod
    def _profile_and_options(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if isinstance(data.get("profile"), str):  # ours, not LangChain's ModelProfile dict
                data = dict(data)
                data["config_profile"] = data.pop("profile")
            opts = data.get("gateway_options")
            if isinstance(opts, Mapping):
                data = {**data, "gateway_options": GatewayOptions(**opts)}
        return data

    @field_validator("api_token", "gateway_token", mode="before")
    @classmethod
    def _secret(cls, value: Any) -> Any:
        return SecretStr(value) if isinstance(value, str) else value

    def __init__(self, **data: Any) -> None:
        # Resolved before pydantic validates, so a ConfigError reaches the caller as itself and the
        # catalog-derived fields (LangChain's model profile) see the configured model.
        refuse_unknown(type(self), data, aliases=_ARG_ALIASES)
        kind: Kind = "embed" if isinstance(self, Embeddings) else "chat"
        default = DEFAULT_EMBED_MODEL if kind == "embed" else DEFAULT_CHAT_MODEL
        data, conn = settle_arguments(kind, data, model_field="model", default_model=default, aliases=_ARG_ALIASES,
                                      profile_field="config_profile")
        super().__init__(**data)
        self._show(conn.settings)
        self._conn = conn

    def _show(self, settings: Settings) -> None:
        for name in _FILLED:  # so the instance shows what it will use (secrets stay SecretStr)
            if getattr(self, name) is None:
                value = getattr(settings, name)
                if value:
                    text = value.get_secret_value() if name in _SECRETS else value
                    object.__setattr__(self, name, SecretStr(text) if name in _SECRETS else text)
        self._settings = settings

    @property
    def settings(self) -> Settings:
        """The resolved :class:`cfgateway.config.Settings` (tokens masked in its repr)."""
        if self._settings is None:  # built without __init__ (model_validate, model_construct)
            self._settings = load_settings(profile=self.config_profile, **self._overrides())
        return self._settings

    def _overrides(self) -> dict[str, Any]:
        names = ("account_id", "api_token", "gateway_id", "gateway_token", "base_url", "gateway_base_url",
                 "timeout", "max_retries", "byok")
        return {name: getattr(self, name) for name in names}

    def _model_string(self) -> str:
        """The model string (each subclass defines a ``model`` field)."""
        return self.model  # type: ignore[attr-defined,no-any-return]

    def _client(self) -> ModelClient:
        """The pooled core client (built once; rebuilt only if the model or fallbacks changed)."""
        cached = self._cf_client  # (key, client): one private-attribute read on the hot path
        fallbacks = self.fallbacks
        if cached is not None and cached[0][0] == self._model_string() and cached[0][1] == fallbacks:
            return cached[1]  # type: ignore[no-any-return]
        with _BUILD_LOCK:
            key = (self._model_string(), list(fallbacks) if fallbacks else None)
            cached = self._cf_client
            if cached is None or cached[0] != key:
                kind: Kind = "embed" if isinstance(self, Embeddings) else "chat"
                base = self._conn or Connection(kind, self.settings, key[0])
                conn = replace(base, model=key[0], fallbacks=tuple(key[1] or ()), endpoint=self.endpoint,
                               fallback_mode=self.fallback_mode, gateway_options=self.gateway_options,
                               dimensions=getattr(self, "dimensions", None))
                from cfgateway.fallback import build_model_client  # deferred: keeps `import` cheap

                client = build_model_client(conn, tracker=self.tracker, routing=self.routing, **self._client_options())
                cached = self._cf_client = (key, client)
            return cached[1]  # type: ignore[no-any-return]

    def _client_options(self) -> dict[str, Any]:
        """Extra core-client keywords of a subclass (the embeddings' ``embed_cache``)."""
        return {}

    def _model_info(self, model: str | None = None) -> ModelInfo | None:
        from cfgateway.costs.catalog import load_catalog

        return load_catalog(self.settings.catalog).get(model or self._model_string())

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        cached, self._cf_client = self._cf_client, None
        if cached is not None:
            cached[1].close()

    async def aclose(self) -> None:
        cached, self._cf_client = self._cf_client, None
        if cached is not None:
            await cached[1].aclose()


__all__ = ["CloudflareConnection", "Endpoint", "known_arguments", "refuse_unknown"]
