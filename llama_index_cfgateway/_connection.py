"""Connection fields shared by :class:`CloudflareLLM` and :class:`CloudflareEmbedding`.

Everything resolves once, at construction, through the core's :mod:`cfgateway.connection` (the same helper
the LangChain adapter uses): settings (arguments > ``CLOUDFLARE_*`` / ``CFGATEWAY_*`` environment >
``cfgateway.toml`` profile > defaults), and the model, fallbacks, endpoint and gateway options the code
left out (``CFGATEWAY_CHAT_MODEL`` / ``chat_model``, ...). Every route is checked then, so a bad model
string or a missing setting raises :class:`cfgateway.ConfigError` at construction with the setting's name;
an unknown argument raises :class:`TypeError`. The core client is built on first use, once per instance,
and pooled. Tokens are ``SecretStr`` fields excluded from ``repr``, ``to_dict``/``to_json`` and the payloads
LlamaIndex puts in its events.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, field_validator

if TYPE_CHECKING:
    from cfgateway.client import Client
    from cfgateway.config import Settings
    from cfgateway.connection import Connection, Kind
    from cfgateway.costs.catalog import Catalog, ModelInfo

Endpoint = Literal["auto", "native", "openai", "compat", "direct", "gateway"]
_BUILD_LOCK = threading.Lock()
_SETTING_FIELDS = ("account_id", "api_token", "gateway_id", "gateway_token", "base_url", "gateway_base_url",
                   "timeout", "max_retries", "byok")


def _known(cls: type[BaseModel]) -> set[str]:
    known = set(cls.model_fields)
    known.update(f.alias for f in cls.model_fields.values() if f.alias)
    return known | {"class_name"}


def refuse_unknown(cls: type[BaseModel], data: Any, aliases: Mapping[str, str] | None = None) -> Any:
    """A :class:`TypeError` naming the accepted arguments, instead of keeping (or sending) unknown ones."""
    if not isinstance(data, dict):
        return data
    from cfgateway.connection import refuse_unknown_arguments

    refuse_unknown_arguments(cls.__name__, [k for k in data if k not in (aliases or {})], _known(cls))
    if aliases:
        data = dict(data)
        for alias, name in aliases.items():
            if alias in data:
                value = data.pop(alias)
                data.setdefault(name, value)
    return data


class CloudflareConnection(BaseModel):
    """Where and how to reach Cloudflare (every field optional: the environment fills the rest)."""

    account_id: str | None = Field(default=None, description="Cloudflare account id (CLOUDFLARE_ACCOUNT_ID).")
    # ``str`` is accepted (so type checkers take ``api_token="..."``) and always stored as SecretStr.
    api_token: SecretStr | str | None = Field(
        default=None, exclude=True, repr=False, description="Workers AI API token (CLOUDFLARE_API_TOKEN)."
    )
    gateway_id: str | None = Field(
        default=None, description="AI Gateway id (CLOUDFLARE_AI_GATEWAY_ID); set = requests go through the gateway."
    )
    gateway_token: SecretStr | str | None = Field(
        default=None, exclude=True, repr=False,
        description="Authenticated-gateway token (CLOUDFLARE_AI_GATEWAY_TOKEN).",
    )
    base_url: str | None = Field(default=None, description="Cloudflare API base URL (CLOUDFLARE_API_BASE_URL).")
    gateway_base_url: str | None = Field(default=None, description="AI Gateway base URL.")
    # Typed Any so cfgateway.routing.routes loads at construction, not at import; always a GatewayOptions or None.
    gateway_options: Any = Field(
        default=None,
        description="Default cf-aig-* options: a cfgateway.GatewayOptions (cache TTL, metadata, custom cost, "
        "...) or a dict of its fields.",
    )
    fallbacks: list[str] | None = Field(
        default=None, description="Model strings tried in order when the primary fails with a retryable error."
    )
    fallback_mode: Literal["client", "gateway"] | None = None
    byok: bool | None = Field(
        default=None, description="Provider keys stored in the gateway (default True; CFGATEWAY_BYOK, config key "
        "byok); False sends your own key from the provider's env var (OPENAI_API_KEY, ...).",
    )
    profile: str | None = Field(default=None, description="A cfgateway.toml profile (CFGATEWAY_PROFILE).")
    endpoint: Endpoint = "auto"
    timeout: float | None = Field(
        default=None, description="Seconds per request, the same sync and async (default: cfgateway's 60 s)."
    )
    max_retries: int | None = Field(default=None, ge=0)
    tracker: Any = Field(
        default=None, exclude=True, repr=False,
        description="A cfgateway.costs.budget.CostTracker (budgets, shared ledger); never serialised.",
    )
    routing: Any = Field(
        default=None, exclude=True, repr=False,
        description="A cfgateway RoutingPolicy (RoutingPolicy.build(rollout=..., tiers=...)) choosing the route per "
                    "call from its user id and metadata; never serialised.",
    )

    _settings: Settings | None = PrivateAttr(default=None)
    _cf_client: Any = PrivateAttr(default=None)
    _cf_client_key: Any = PrivateAttr(default=None)

    @field_validator("api_token", "gateway_token", mode="before")
    @classmethod
    def _secret(cls, value: Any) -> Any:
        return SecretStr(value) if isinstance(value, str) else value

    @field_validator("gateway_options", mode="before")
    @classmethod
    def _options_from_dict(cls, value: Any) -> Any:
        from cfgateway.routing.routes import GatewayOptions

        if isinstance(value, Mapping):
            return GatewayOptions(**value)
        if value is not None and not isinstance(value, GatewayOptions):
            raise TypeError(f"gateway_options must be a GatewayOptions or a dict, not {type(value).__name__}")
        return value

    _conn: Connection | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        # Resolved before pydantic validates, so a ConfigError reaches the caller as itself
        # (pydantic would wrap it in a ValidationError) and the fields show the configured model.
        from llama_index.core.base.embeddings.base import BaseEmbedding

        from cfgateway.connection import DEFAULT_CHAT_MODEL, DEFAULT_EMBED_MODEL, settle_arguments

        aliases = getattr(type(self), "_ALIASES", {})
        data = refuse_unknown(type(self), data, aliases)
        embed = isinstance(self, BaseEmbedding)
        field = "model_name" if embed else "model"
        data, conn = settle_arguments("embed" if embed else "chat", data, model_field=field,
                                      default_model=DEFAULT_EMBED_MODEL if embed else DEFAULT_CHAT_MODEL)
        super().__init__(**data)
        self._conn = conn
        self._settings = self._show(conn.settings)

    def _show(self, settings: Settings) -> Settings:
        """Show what will be used (tokens stay SecretStr, never printed or serialised)."""
        for name in ("account_id", "gateway_id"):
            if getattr(self, name) is None and getattr(settings, name):
                object.__setattr__(self, name, getattr(settings, name))
        for name in ("api_token", "gateway_token"):
            secret = getattr(settings, name)
            if getattr(self, name) is None and secret:
                object.__setattr__(self, name, SecretStr(secret.get_secret_value()))
        return settings

    def _resolve_settings(self) -> Settings:
        from cfgateway.config import load_settings

        overrides = {name: getattr(self, name) for name in _SETTING_FIELDS}
        return self._show(load_settings(profile=self.profile, **overrides))

    # Each subclass names its model string.
    def _model_string(self) -> str:
        raise NotImplementedError

    @property
    def settings(self) -> Settings:
        """The resolved :class:`cfgateway.config.Settings` (tokens masked in its repr)."""
        if self._settings is None:  # built without __init__ (model_validate, model_construct)
            self._settings = self._resolve_settings()
        return self._settings

    def _client(self) -> Client:
        """The pooled core client (built once; rebuilt only when the model or fallbacks change)."""
        key = (self._model_string(), tuple(self.fallbacks or ()))
        client = self._cf_client
        if client is not None and self._cf_client_key == key:
            return client  # type: ignore[no-any-return]
        with _BUILD_LOCK:
            if self._cf_client is None or self._cf_client_key != key:
                from dataclasses import replace

                from llama_index.core.base.embeddings.base import BaseEmbedding

                from cfgateway.connection import Connection
                from cfgateway.fallback import build_model_client  # deferred: keeps `import` cheap

                kind: Kind = "embed" if isinstance(self, BaseEmbedding) else "chat"
                base = self._conn or Connection(kind, self.settings, key[0])
                conn = replace(base, model=key[0], fallbacks=key[1], endpoint=self.endpoint,
                               fallback_mode=self.fallback_mode, gateway_options=self.gateway_options,
                               dimensions=getattr(self, "dimensions", None))
                self._cf_client = build_model_client(conn, tracker=self.tracker, routing=self.routing,
                                                     **self._client_options())
                self._cf_client_key = key
            return self._cf_client  # type: ignore[no-any-return]

    def _client_options(self) -> dict[str, Any]:
        """Extra core-client keywords of a subclass (the embedding's ``embed_cache``)."""
        return {}

    def _catalog(self) -> Catalog:
        from cfgateway.costs.catalog import load_catalog

        return load_catalog(self.settings.catalog)

    def _model_info(self, model: str | None = None) -> ModelInfo | None:
        return self._catalog().get(model or self._model_string())

    def _safe_payload(self) -> dict[str, Any]:
        """Non-secret facts for LlamaIndex's event payloads."""
        out: dict[str, Any] = {"model": self._model_string(), "endpoint": self.endpoint}
        if self.gateway_id:
            out["gateway_id"] = self.gateway_id
        if self.fallbacks:
            out["fallbacks"] = list(self.fallbacks)
        return out

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        client, self._cf_client = self._cf_client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        client, self._cf_client = self._cf_client, None
        if client is not None:
            await client.aclose()

    # Private attributes holding sockets, locks or loop-bound objects: never pickled (rebuilt on use).
    _TRANSIENT: ClassVar[tuple[str, ...]] = ("_cf_client", "_cf_client_key")

    def __getstate__(self) -> dict[Any, Any]:
        private = self.__pydantic_private__ or {}
        saved = {k: private[k] for k in self._TRANSIENT if k in private}
        for k in saved:
            private[k] = None
        try:
            state: dict[Any, Any] = super().__getstate__()
            return state
        finally:
            private.update(saved)


__all__ = ["CloudflareConnection", "Endpoint", "refuse_unknown"]
