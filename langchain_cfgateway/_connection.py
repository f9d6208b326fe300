"""Connection fields shared by :class:`ChatCloudflare` and :class:`CloudflareEmbeddings`.

Settings resolve through :func:`cfgateway.config.load_settings` (arguments > ``CLOUDFLARE_*`` /
``CFGATEWAY_*`` environment > ``cfgateway.toml`` profile > defaults) once, at construction; the
core client is built on first use, once per instance, and pooled.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, PrivateAttr, SecretStr, field_validator, model_validator

from cfgateway.config import Settings, load_settings
from cfgateway.routing.routes import GatewayOptions

if TYPE_CHECKING:
    from cfgateway.costs.catalog import ModelInfo
    from cfgateway.fallback import ModelClient

Endpoint = Literal["auto", "native", "openai", "compat", "direct", "gateway"]
_BUILD_LOCK = threading.Lock()
_SETTING_FIELDS = ("account_id", "api_token", "gateway_id", "gateway_token", "base_url", "gateway_base_url",
                   "timeout", "max_retries")
_FILLED = ("account_id", "api_token", "gateway_id", "gateway_token")
_SECRETS = ("api_token", "gateway_token")


def known_arguments(cls: type[BaseModel]) -> set[str]:
    names = set(cls.model_fields)
    for f in cls.model_fields.values():
        if f.alias:
            names.add(f.alias)
        if isinstance(f.validation_alias, AliasChoices):
            names.update(c for c in f.validation_alias.choices if isinstance(c, str))
    return names


def refuse_unknown(cls: type[BaseModel], data: Any, *, aliases: Mapping[str, str] | None = None) -> Any:
    """A clear error naming the accepted arguments instead of sending unknown ones anywhere."""
    if not isinstance(data, dict):
        return data
    known = known_arguments(cls)
    unknown = sorted(k for k in data if k not in known and k not in (aliases or {}))
    if unknown:
        public = sorted(k for k in known if not k.startswith("_"))
        raise ValueError(
            f"{cls.__name__} got unknown argument(s) {', '.join(unknown)}; it takes: {', '.join(public)}"
        )
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

    @model_validator(mode="after")
    def _resolve_settings(self) -> CloudflareConnection:
        overrides = {name: getattr(self, name) for name in _SETTING_FIELDS}
        settings = load_settings(profile=self.config_profile, **overrides)
        for name in _FILLED:  # so the instance shows what it will use (secrets stay SecretStr)
            if getattr(self, name) is None:
                value = getattr(settings, name)
                if value:
                    text = value.get_secret_value() if name in _SECRETS else value
                    object.__setattr__(self, name, SecretStr(text) if name in _SECRETS else text)
        self._settings = settings
        return self

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
                from cfgateway.fallback import build_client  # deferred: keeps `import` cheap

                kwargs: dict[str, Any] = {
                    "settings": self._settings or load_settings(profile=self.config_profile),
                    "endpoint": self.endpoint,
                    "gateway_options": self.gateway_options,
                    "tracker": self.tracker,
                }
                if fallbacks and self.fallback_mode is not None:
                    kwargs["fallback_mode"] = self.fallback_mode
                if self.routing is not None:
                    kwargs["routing"] = self.routing
                cached = self._cf_client = (key, build_client(key[0], key[1], **kwargs))
            return cached[1]  # type: ignore[no-any-return]

    def _model_info(self, model: str | None = None) -> ModelInfo | None:
        from cfgateway.costs.catalog import load_catalog

        settings = self._settings
        return load_catalog(settings.catalog if settings else None).get(model or self._model_string())

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
