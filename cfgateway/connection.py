"""From arguments and configuration to what a model client runs on: the one helper both adapters (and the
examples, the CLI) use, so that they behave the same. The client itself is built one layer up, by
:func:`cfgateway.fallback.build_model_client` (``connect`` = resolve + build), so this module imports no client.

>>> conn = resolve_connection("chat")     # model, fallbacks, ... from args > env > profile  # doctest: +SKIP
>>> client = build_model_client(conn)     # cfgateway.fallback: a Client, or a FallbackChain  # doctest: +SKIP

- the model: the argument, else ``chat_model`` / ``embed_model`` (``CFGATEWAY_CHAT_MODEL``,
  ``CFGATEWAY_EMBED_MODEL``, a profile), else the caller's default;
- fallbacks: the argument (``[]`` means none), else ``fallbacks`` / ``embed_fallbacks``;
- ``fallback_mode``, ``endpoint``, ``gateway_options``, ``rollout`` (chat), ``embed_dimensions`` (embed) likewise;
- ``shadow`` (chat): a :class:`~cfgateway.routing.shadow.Shadow` added to the routing policy (the caller's
  policy keeps its own shadow when it has one);
- ``budgets`` from the profile become one :class:`~cfgateway.costs.budget.CostTracker` per (ledger, budgets),
  shared by every client of the process, unless a tracker is passed.

Every route is resolved at once, so a bad model string or a missing setting fails before anything is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from cfgateway.config import Settings, load_settings
from cfgateway.errors import ConfigError
from cfgateway.routing.ratelimit import RateLimiter, RedisWindows
from cfgateway.routing.rollout import Rollout, RoutingPolicy
from cfgateway.routing.routes import Endpoint, GatewayOptions, resolve_route
from cfgateway.routing.shadow import Shadow

if TYPE_CHECKING:  # the call path loads on first use, not at import (adapters import this module)
    from cfgateway.costs.budget import Budget, CostTracker

Kind = Literal["chat", "embed"]
DEFAULT_CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
DEFAULT_EMBED_MODEL = "@cf/baai/bge-base-en-v1.5"
SETTING_ARGUMENTS = ("account_id", "api_token", "gateway_id", "gateway_token", "base_url", "gateway_base_url",
                     "timeout", "max_retries", "byok", "ledger", "catalog")
_TRACKERS: dict[tuple[Any, ...], Any] = {}
_LIMITERS: dict[tuple[Any, ...], RateLimiter] = {}
_TRACKERS_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Connection:
    """What one model client runs on, resolved: settings, model, fallbacks and the options around them."""

    kind: Kind
    settings: Settings
    model: str
    fallbacks: tuple[str, ...] = ()
    endpoint: Endpoint = "auto"
    fallback_mode: str | None = None
    gateway_options: GatewayOptions | None = None
    dimensions: int | None = None
    rollout: tuple[Rollout, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)  # model / fallbacks -> argument, env ..., default
    shadow: Shadow | None = None


def refuse_unknown_arguments(owner: str, given: Iterable[str], known: Iterable[str]) -> None:
    """A :class:`TypeError` (as for any unexpected keyword) naming the accepted arguments."""
    known_set = set(known)
    unknown = sorted(k for k in given if k not in known_set)
    if unknown:
        public = ", ".join(sorted(k for k in known_set if not k.startswith("_")))
        raise TypeError(f"{owner} got unknown argument(s) {', '.join(unknown)}; it takes: {public}")


def gateway_options_from(value: Any) -> GatewayOptions | None:
    if value is None or isinstance(value, GatewayOptions):
        return value
    if isinstance(value, Mapping):
        data = dict(value)
        if isinstance(data.get("custom_cost"), list):
            data["custom_cost"] = tuple(data["custom_cost"])
        try:
            return GatewayOptions(**data)
        except TypeError as exc:
            raise ConfigError(f"gateway_options: {exc}") from None
    raise TypeError(f"gateway_options must be a GatewayOptions or a dict, not {type(value).__name__}")


def _pick(kind: Kind, model: str | None, fallbacks: Sequence[str] | None, s: Settings,
          default_model: str | None) -> tuple[str, tuple[str, ...], dict[str, str]]:
    conf_model, conf_fallbacks = (s.chat_model, s.fallbacks) if kind == "chat" else (s.embed_model, s.embed_fallbacks)
    key, fb_key = ("chat_model", "fallbacks") if kind == "chat" else ("embed_model", "embed_fallbacks")
    sources: dict[str, str] = {}
    if model:
        chosen, sources["model"] = model, "argument"
    elif conf_model:
        chosen, sources["model"] = conf_model, s.sources.get(key, "configuration")
    elif default_model:
        chosen, sources["model"] = default_model, "default"
    else:
        env = "CFGATEWAY_CHAT_MODEL" if kind == "chat" else "CFGATEWAY_EMBED_MODEL"
        raise ConfigError(f"no {kind} model: pass model=, set {env}, or put {key} in a cfgateway.toml profile")
    if fallbacks is not None:
        chain, sources["fallbacks"] = tuple(fallbacks), "argument"
    else:
        chain, sources["fallbacks"] = conf_fallbacks, s.sources.get(fb_key, "default")
    return chosen, chain, sources


def resolve_connection(
    kind: Kind,
    *,
    model: str | None = None,
    fallbacks: Sequence[str] | None = None,
    default_model: str | None = None,
    settings: Settings | None = None,
    profile: str | None = None,
    config_path: str | None = None,
    endpoint: Endpoint | None = None,
    fallback_mode: str | None = None,
    gateway_options: Any = None,
    dimensions: int | None = None,
    check_routes: bool = True,
    **setting_overrides: Any,
) -> Connection:
    """Resolve everything a model client needs; ``None`` arguments defer to env, profile, then defaults."""
    unknown = set(setting_overrides) - set(SETTING_ARGUMENTS)
    if unknown:
        refuse_unknown_arguments("resolve_connection", unknown, SETTING_ARGUMENTS)
    s = settings or load_settings(profile=profile, config_path=config_path, **setting_overrides)
    chosen, chain, sources = _pick(kind, model, fallbacks, s, default_model)
    route_endpoint: Endpoint = endpoint or s.endpoint or "auto"  # type: ignore[assignment]
    if check_routes:
        for name in (chosen, *chain):
            resolve_route(name, s, route_endpoint)  # fail now, naming the missing setting
    rollout: tuple[Rollout, ...] = ()
    shadow: Shadow | None = None
    if kind == "chat":
        rollout = tuple(Rollout(r["model"], r["percent"], salt=r.get("salt", "")) for r in s.rollout if "model" in r)
        shadow = Shadow.from_dict(s.shadow) if s.shadow else None
        extra = [stage.new_route for stage in rollout]
        extra += [shadow.candidate, shadow.similarity_model] if shadow is not None else []
        for name in extra if check_routes else ():
            resolve_route(name, s, route_endpoint)
    options = gateway_options_from(gateway_options if gateway_options is not None else (s.gateway_options or None))
    dims = dimensions if dimensions is not None else (s.embed_dimensions if kind == "embed" else None)
    if dims is not None and kind == "chat":
        raise ConfigError("dimensions= applies to embedding models only")
    return Connection(kind, s, chosen, chain, route_endpoint, fallback_mode or s.fallback_mode, options, dims,
                      rollout, sources, shadow)


def settle_arguments(
    kind: Kind, data: Mapping[str, Any], *, model_field: str, default_model: str,
    aliases: Mapping[str, str] | None = None, profile_field: str = "profile",
) -> tuple[dict[str, Any], Connection]:
    """An adapter's constructor arguments with what the configuration supplies filled in, and the connection.

    ``aliases`` maps accepted alternative names to field names (``api_key`` -> ``api_token``). The model,
    fallbacks, endpoint, fallback mode, gateway options and (embeddings) dimensions the caller left out come
    from the settings, so the instance shows what it runs on. Raises :class:`ConfigError` as itself.
    """
    alias_map = dict(aliases or {})
    canon: dict[str, Any] = {}
    for key, value in data.items():
        name = alias_map.get(key, key)
        if name not in canon or key == name:
            canon[name] = value
    profile = canon.get(profile_field)
    overrides = {k: canon[k] for k in SETTING_ARGUMENTS if canon.get(k) is not None}
    conn = resolve_connection(
        kind, model=canon.get(model_field), fallbacks=canon.get("fallbacks"), default_model=default_model,
        profile=profile if isinstance(profile, str) else None, endpoint=canon.get("endpoint"),
        fallback_mode=canon.get("fallback_mode"), gateway_options=canon.get("gateway_options"),
        dimensions=canon.get("dimensions"), **overrides,
    )
    out = dict(data)
    given = set(canon)
    filled: dict[str, Any] = {model_field: conn.model, "fallbacks": list(conn.fallbacks) or None,
                              "endpoint": conn.endpoint, "fallback_mode": conn.fallback_mode,
                              "gateway_options": conn.gateway_options}
    if kind == "embed":
        filled["dimensions"] = conn.dimensions
    else:
        filled.update(conn.settings.chat_defaults)  # completion defaults (max_tokens, temperature, ...)
    for name, value in filled.items():
        if name not in given and value is not None:
            out[name] = value
    return out, conn


def _budget(spec: Mapping[str, Any]) -> Budget:
    from cfgateway.costs.budget import Budget

    return Budget(
        limit=Decimal(spec["limit"]) if spec.get("limit") is not None else None,
        window=spec.get("window", "daily"), scope=spec.get("scope", "global"), key=spec.get("key"),
        alerts=[Decimal(a) for a in spec.get("alerts", ())], name=spec.get("name", ""),
    )


def tracker_for(settings: Settings, catalog: Any = None) -> CostTracker | None:
    """The process-wide tracker for the settings' ledger and budgets (one per ledger URL, budgets and catalog
    file: every client of the process books into it); None when neither a ledger nor a budget is set."""
    if not settings.budgets and not settings.ledger:
        return None
    budgets = tuple(tuple(sorted((k, str(v)) for k, v in b.items())) for b in settings.budgets)
    key = (settings.ledger, budgets, settings.catalog, settings.alert_webhook, str(settings.alert_sinks))
    with _TRACKERS_LOCK:
        tracker = _TRACKERS.get(key)
        if tracker is None:
            from cfgateway.costs.alerts import alerts_from_settings
            from cfgateway.costs.budget import CostTracker
            from cfgateway.costs.ledger import open_ledger

            ledger = open_ledger(settings.ledger) if settings.ledger else None
            on_alert = None
            if settings.alert_webhook or settings.alert_sinks:  # else budget alerts go to the log, as ever
                on_alert = alerts_from_settings(settings, store=ledger).budget_hook()
            tracker = _TRACKERS[key] = CostTracker(ledger, [_budget(b) for b in settings.budgets], on_alert,
                                                   catalog=catalog, settings=settings)
        return tracker


def limiter_for(rate_limits: Any, settings: Settings, catalog: Any = None) -> RateLimiter | None:
    """The rate limiter for ``rate_limits`` (a :class:`RateLimiter` as it is, or rules by model string) or the
    settings' ``rate_limits``: one per process for the same rules, its windows in Redis when the ledger is Redis
    (every process and host then shares each limit)."""
    if isinstance(rate_limits, RateLimiter):
        return rate_limits
    rules = rate_limits if rate_limits else settings.rate_limits
    if not rules:
        return None
    redis_url = settings.ledger if (settings.ledger or "").startswith(("redis://", "rediss://", "unix://")) else None
    key = (redis_url, settings.catalog, repr(sorted((str(k), repr(v)) for k, v in dict(rules).items())))
    with _TRACKERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            windows = RedisWindows(redis_url) if redis_url else None
            limiter = _LIMITERS[key] = RateLimiter(rules, windows, catalog)
        return limiter


def client_keywords(conn: Connection, *, tracker: Any = None, routing: Any = None) -> dict[str, Any]:
    """The ``build_client`` keywords for ``conn`` (besides the model and its fallbacks)."""
    kwargs: dict[str, Any] = {
        "settings": conn.settings, "endpoint": conn.endpoint, "gateway_options": conn.gateway_options,
        "tracker": tracker if tracker is not None else tracker_for(conn.settings),
    }
    if conn.fallbacks and conn.fallback_mode is not None:
        kwargs["fallback_mode"] = conn.fallback_mode
    if conn.shadow is not None:
        routing = with_shadow(routing, conn.rollout, conn.shadow)
    if routing is not None:
        kwargs["routing"] = routing
    elif conn.rollout:
        kwargs["rollout"] = list(conn.rollout) if len(conn.rollout) > 1 else conn.rollout[0]
    if conn.dimensions is not None:
        kwargs["dimensions"] = conn.dimensions
    return kwargs


def with_shadow(routing: Any, rollout: Sequence[Rollout], shadow: Shadow) -> RoutingPolicy:
    """``routing`` (a policy, a route function, or ``None``: the configured rollout) with ``shadow`` added,
    unless the policy has a shadow of its own."""
    if isinstance(routing, RoutingPolicy):
        return routing if routing.shadow is not None else replace(routing, shadow=shadow)
    if routing is not None:
        return RoutingPolicy(custom=routing, shadow=shadow)
    return RoutingPolicy(rollouts=tuple(rollout), shadow=shadow)


__all__ = [
    "DEFAULT_CHAT_MODEL",
    "DEFAULT_EMBED_MODEL",
    "SETTING_ARGUMENTS",
    "Connection",
    "client_keywords",
    "gateway_options_from",
    "limiter_for",
    "refuse_unknown_arguments",
    "resolve_connection",
    "settle_arguments",
    "tracker_for",
    "with_shadow",
]
