"""Model names -> core clients, over ONE shared :class:`~cfgateway.http.transport.Transport`.

Every client the proxy builds gets the same transport (one connection pool per upstream host, whatever
the number of model names), aliases are built once and kept, and other names live in a bounded LRU cache:
20,000 distinct model names cost neither file descriptors nor unbounded memory.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cfgateway import errors
from cfgateway.config import Settings
from cfgateway.connection import Connection, resolve_connection
from cfgateway.costs.budget import CostTracker
from cfgateway.costs.catalog import Catalog, load_catalog
from cfgateway.fallback import ModelClient, build_client, build_model_client
from cfgateway.http._aiohttp import available as aiohttp_available
from cfgateway.http.transport import Transport
from cfgateway.routing.rollout import RoutingPolicy
from cfgateway.routing.routes import Endpoint, split_model
from cfgateway.routing.shadow import Shadow
from cfgateway.wire.openai_server import RequestError

log = logging.getLogger("cfgateway.proxy")


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a requested name stands for: the model strings tried in order (several = a fallback chain)."""

    name: str
    members: tuple[str, ...]
    alias: bool


class ClientPool:
    """Resolves names and hands out clients (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        aliases: Mapping[str, Sequence[str]],
        *,
        tracker: CostTracker | None,
        default_provider: str | None = None,
        max_cached: int = 256,
        transport: Transport | None = None,
        catalog: Catalog | None = None,
        endpoint: Endpoint = "auto",
        shadows: Mapping[str, Shadow] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.shadows = dict(shadows or {})
        self.settings = settings
        self.aliases = {k: tuple(v) for k, v in aliases.items()}
        self.tracker = tracker
        self.default_provider = default_provider
        self.max_cached = max_cached
        self.catalog = catalog or load_catalog(settings.catalog)
        # aiohttp when installed (the proxy extra brings it): a quarter of httpx's CPU per upstream request
        self.transport = transport or Transport(timeout=settings.timeout, max_retries=settings.max_retries,
                                                max_connections=256,
                                                async_backend="aiohttp" if aiohttp_available() else "httpx")
        self._aliased: dict[str, ModelClient] = {}
        self._lru: OrderedDict[str, ModelClient] = OrderedDict()
        self.configured = self._configured_aliases()

    def _configured_aliases(self) -> dict[str, Connection]:
        """``default`` / ``default-embedding``: what the configuration names (``chat_model`` with its
        fallbacks, rollout and shadow; ``embed_model`` with its fallbacks), unless an alias has the name."""
        out: dict[str, Connection] = {}
        for name, kind, model in (("default", "chat", self.settings.chat_model),
                                  ("default-embedding", "embed", self.settings.embed_model)):
            if model and name not in self.aliases:
                conn = out[name] = resolve_connection(kind, settings=self.settings)  # type: ignore[arg-type]
                self.aliases[name] = (conn.model, *conn.fallbacks)
        return out

    def default_for(self, kind: str) -> str:
        """The alias a request without a model runs on, or a 400 saying how to configure one."""
        name = "default" if kind == "chat" else "default-embedding"
        if name in self.aliases:
            return name
        setting = "chat_model (CFGATEWAY_CHAT_MODEL)" if kind == "chat" else "embed_model (CFGATEWAY_EMBED_MODEL)"
        raise RequestError(f"model is required: name a model or an alias (GET /v1/models lists them); the "
                           f"operator can set {setting} so requests without a model run on it", "model",
                           code="model_required")

    def resolve(self, name: str) -> Resolved:
        """The route(s) behind ``name``; a 400 naming ``model`` when it is neither an alias nor a model string."""
        if name in self.aliases:
            return Resolved(name, self.aliases[name], True)
        model = name
        if "/" not in name and not name.startswith("@"):
            if self.default_provider is None:
                raise RequestError(
                    f"model {name!r} is not an alias of this proxy and has no provider: use '@cf/…' for Workers AI, "
                    f"'{{provider}}/{{model}}' (e.g. 'openai/{name}'), or an alias; the operator can set "
                    "--default-provider so bare names work", "model", code="model_not_found")
            model = f"{self.default_provider}/{name}"
        try:
            split_model(model)
        except errors.ConfigError as exc:
            raise RequestError(str(exc), "model", code="model_not_found") from None
        return Resolved(name, (model,), False)

    def shadow_of(self, r: Resolved) -> Shadow | None:
        """The shadow configured for this name (an alias's name, or the model string a name resolves to)."""
        return self.shadows.get(r.name if r.alias else r.members[0])

    def get(self, resolved: Resolved) -> ModelClient:
        if resolved.alias or self.shadow_of(resolved) is not None:  # kept: never evicted from the cache
            key = resolved.name if resolved.alias else resolved.members[0]
            client = self._aliased.get(key)
            if client is None:
                client = self._aliased[key] = self._build(resolved)
            return client
        key = resolved.members[0]
        client = self._lru.get(key)
        if client is not None:
            self._lru.move_to_end(key)
            return client
        client = self._lru[key] = self._build(resolved)
        if len(self._lru) > self.max_cached:
            self._lru.popitem(last=False)  # never closed: the transport it shares stays open
        return client

    def _build(self, r: Resolved) -> ModelClient:
        conn = self.configured.get(r.name) if r.alias else None
        if conn is not None:
            extra = {"endpoint": self.endpoint} if self.endpoint != "auto" else {}  # the proxy's --endpoint wins
            return build_model_client(conn, tracker=self.tracker, transport=self.transport, catalog=self.catalog,
                                      **extra)
        try:
            shadow = self.shadow_of(r)
            return build_client(r.members[0], list(r.members[1:]) or None, settings=self.settings,
                                tracker=self.tracker, transport=self.transport, catalog=self.catalog,
                                endpoint=self.endpoint, routing=RoutingPolicy(shadow=shadow) if shadow else None)
        except errors.ConfigError as exc:
            log.warning("model %r cannot be served: %s", r.name, exc)
            raise RequestError(
                f"model {r.name!r} is not available on this proxy (its route is not configured here; the operator "
                "can see why in the proxy's log)", "model", code="model_not_available") from None

    @property
    def cached(self) -> int:
        return len(self._lru) + len(self._aliased)

    async def aclose(self) -> None:
        await self.transport.aclose()


__all__ = ["ClientPool", "Resolved"]
