"""Circuit breaker per route: a route that keeps failing is skipped for a while.

States per key (a route's model string)::

    closed --failure rate over the window, or N consecutive failures--> open
    open --cooldown passed--> half-open (one probe)
    half-open --probe succeeds--> closed            (counts forgotten, cooldown back to its base)
    half-open --probe fails-----> open              (cooldown x cooldown_growth, at most max_cooldown)

A route opens when the last ``window`` seconds hold at least ``min_calls`` attempts and ``failure_rate`` of
them failed, or after ``consecutive_failures`` failed attempts in a row (defaults: 20 calls, 50 %, 60 s, 8 in a
row — one failed request with its retries does not open a route). While open, :meth:`CircuitBreaker.allow`
says no and the caller sends nothing. Settings may differ per route (``routes=``, exact model strings or
globs) and come from ``[breaker]`` in ``cfgateway.toml`` (:meth:`CircuitBreaker.from_settings`).

State lives in this process (one lock, shared safely by threads and asyncio tasks), or in Redis
(``redis=`` a URL or client; one Lua script per event, so every process sees one state and one probe). If
Redis cannot be reached the breaker carries on with this process's own state and logs a warning.
``on_change(model, old_state, new_state)`` hears every transition (in the process that made it).
Share one breaker between chains by passing the same object, or by name through :func:`shared_breaker`.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import Any

from cfgateway.errors import ConfigError
from cfgateway.routing._breaker_state import (
    DEFAULT_CONSECUTIVE_FAILURES,
    DEFAULT_COOLDOWN_S,
    BreakerSettings,
    LocalStates,
    Op,
    State,
    States,
    Step,
)

logger = logging.getLogger("cfgateway.breaker")

DEFAULT_FAILURE_THRESHOLD = DEFAULT_CONSECUTIVE_FAILURES
OnChange = Callable[[str, State, State], None]
RouteSettings = Mapping[str, BreakerSettings | Mapping[str, Any]]


def breaker_settings(values: Mapping[str, Any], base: BreakerSettings | None = None) -> BreakerSettings:
    """``base`` with ``values`` applied, validated (a :class:`ConfigError` names the bad key)."""
    known = {f.name for f in fields(BreakerSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"breaker: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        try:
            out[name] = None if value is None and name == "consecutive_failures" else _number(name, value)
        except (TypeError, ValueError):
            raise ConfigError(f"breaker: {name} must be a number, got {value!r}") from None
    s = replace(base or BreakerSettings(), **out)
    problems = [
        (s.consecutive_failures is not None and s.consecutive_failures < 1, "consecutive_failures must be >= 1"),
        (s.min_calls < 1, "min_calls must be >= 1"),
        (not 0 < s.failure_rate <= 1, "failure_rate must be in (0, 1]"),
        (s.window <= 0, "window must be > 0 seconds"),
        (s.cooldown < 0 or s.max_cooldown < s.cooldown, "cooldown must be >= 0 and <= max_cooldown"),
        (s.cooldown_growth < 1, "cooldown_growth must be >= 1"),
    ]
    for bad, text in problems:
        if bad:
            raise ConfigError(f"breaker: {text} (got {s})")
    return s


def _number(name: str, value: Any) -> int | float:
    if isinstance(value, bool):
        raise TypeError(name)
    return int(value) if name in ("consecutive_failures", "min_calls") else float(value)


class CircuitBreaker:
    """Per-route breaker; thread- and task-safe; optionally shared through Redis.

    ``failure_threshold`` / ``cooldown`` (positional, as before) set ``consecutive_failures`` / ``cooldown`` of
    ``settings``; ``routes`` overrides per model string or glob; ``redis``: a URL or ``redis.Redis`` client
    for shared state (``name`` and ``prefix`` name its keys); ``clock``: seconds (monotonic by default, wall
    clock with Redis).
    """

    def __init__(
        self,
        failure_threshold: int | None = None,
        cooldown: float | None = None,
        *,
        settings: BreakerSettings | Mapping[str, Any] | None = None,
        routes: RouteSettings | None = None,
        redis: Any = None,
        name: str = "default",
        prefix: str = "cfgateway",
        on_change: OnChange | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if failure_threshold is not None and failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown is not None and cooldown < 0:
            raise ValueError("cooldown must be >= 0 seconds")
        base = settings if isinstance(settings, BreakerSettings) else breaker_settings(settings or {})
        given: dict[str, Any] = {"consecutive_failures": failure_threshold, "cooldown": cooldown}
        base = replace(base, **{k: v for k, v in given.items() if v is not None})
        self.settings = breaker_settings({}, base)  # validates the combination
        self.routes: dict[str, BreakerSettings] = {}
        for pattern, value in (routes or {}).items():
            self.routes[pattern] = value if isinstance(value, BreakerSettings) else breaker_settings(value, base)
        self.on_change = on_change
        self._local = LocalStates()
        self._states: States = self._local
        if redis is not None:
            from cfgateway.routing._breaker_redis import RedisStates

            self._states = RedisStates(redis, name=name, prefix=prefix)
        self._clock = clock or (time.time if redis is not None else time.monotonic)
        self._resolved: dict[str, BreakerSettings] = {}
        self._warned = 0.0

    @property
    def failure_threshold(self) -> int | None:
        return self.settings.consecutive_failures

    @property
    def cooldown(self) -> float:
        return self.settings.cooldown

    @property
    def shared(self) -> bool:
        return self._states is not self._local

    def __repr__(self) -> str:
        where = ", shared" if self.shared else ""
        return f"CircuitBreaker({self.settings}{where}, routes={sorted(self.routes)})"

    # -- settings --------------------------------------------------------------------------
    @classmethod
    def from_config(cls, section: Mapping[str, Any], failure_threshold: int | None = None,
                    cooldown: float | None = None, **kw: Any) -> CircuitBreaker:  # fmt: skip
        """From a ``[breaker]`` table: defaults, plus ``routes = {model or glob: {...}}`` and ``shared``
        (``failure_threshold`` / ``cooldown`` given here win over the table's)."""
        values = dict(section)
        routes = values.pop("routes", {})
        values.pop("shared", None)
        if not isinstance(routes, Mapping) or not all(isinstance(v, Mapping) for v in routes.values()):
            raise ConfigError("breaker: routes must be a table of tables ([breaker.routes.\"@cf/...\"])")
        return cls(failure_threshold, cooldown, settings=breaker_settings(values), routes=routes, **kw)

    @classmethod
    def from_settings(cls, settings: Any, *, failure_threshold: int | None = None, cooldown: float | None = None,
                      name: str = "default", on_change: OnChange | None = None) -> CircuitBreaker:  # fmt: skip
        """The breaker ``settings`` (a :class:`~cfgateway.config.Settings`) describe: ``[breaker]`` values, and
        state shared through Redis when the ledger is Redis (unless ``shared = false``)."""
        section: Mapping[str, Any] = getattr(settings, "breaker", None) or {}
        ledger = getattr(settings, "ledger", None) or ""
        shared = section.get("shared", True) and ledger.startswith(("redis://", "rediss://", "unix://"))
        return cls.from_config(section, failure_threshold, cooldown, redis=ledger if shared else None, name=name,
                               on_change=on_change)  # fmt: skip

    def settings_for(self, key: str) -> BreakerSettings:
        """The settings of one route: an exact ``routes`` entry, else the first matching glob, else the default."""
        found = self._resolved.get(key)
        if found is None:
            found = self.routes.get(key)
            if found is None:
                glob = [p for p in self.routes if any(c in p for c in "*?[") and fnmatch.fnmatchcase(key, p)]
                found = self.routes[glob[0]] if glob else self.settings
            self._resolved[key] = found
        return found

    # -- events ----------------------------------------------------------------------------
    def _step(self, key: str, op: Op) -> Step:
        s, now = self.settings_for(key), self._clock()
        try:
            step = self._states.step(key, op, now, s)
        except getattr(self._states, "errors", ()) as exc:  # Redis: carry on with this process's own state
            self._shared_down(exc)
            step = self._local.step(key, op, now, s)
        if step.old != step.new and self.on_change is not None:
            try:
                self.on_change(key, step.old, step.new)
            except Exception:
                logger.exception("the breaker's on_change hook raised for %s (%s -> %s)", key, step.old, step.new)
        return step

    def _shared_down(self, exc: BaseException) -> None:
        if time.monotonic() - self._warned > 60:
            self._warned = time.monotonic()
            logger.warning("breaker state in Redis cannot be reached (%s: %s); using this process's own state "
                           "until it answers", type(exc).__name__, exc)  # fmt: skip

    def state(self, key: str) -> State:
        return self._step(key, "state").new

    def retry_in(self, key: str) -> float:
        """Seconds until an open route may be probed (0 when it may be tried now)."""
        return self._step(key, "state").retry_in

    def allow(self, key: str) -> bool:
        """May a call be sent to ``key`` now? In half-open, True for exactly one caller (the probe)."""
        return self._step(key, "allow").ok

    def success(self, key: str) -> None:
        """The route answered (an attempt succeeded)."""
        self._step(key, "success")

    def failure(self, key: str) -> None:
        """The route failed in a way that says something about its health (one attempt)."""
        self._step(key, "failure")

    def release(self, key: str) -> None:
        """The call ended without telling anything about the route (bad input, cancelled): free the probe."""
        self._step(key, "release")

    def reset(self, key: str | None = None) -> None:
        self._local.reset(key)
        if self._states is not self._local:
            self._states.reset(key)

    def snapshot(self) -> dict[str, State]:
        """Every route the breaker knows with its state (for logs and health pages)."""
        return {k: self.state(k) for k in sorted(self._states.keys())}


_REGISTRY: dict[str, CircuitBreaker] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_breaker(
    name: str = "default",
    *,
    failure_threshold: int | None = None,
    cooldown: float | None = None,
    config: Any = None,
    **kw: Any,
) -> CircuitBreaker:
    """The process-wide breaker called ``name`` (created on first use with these settings).

    Chains that pass the same name share route health, so a dead primary is skipped by all of them.
    ``config``: a :class:`~cfgateway.config.Settings` to build it from (``[breaker]``, Redis ledger: see
    :meth:`CircuitBreaker.from_settings`); ``kw``: the other :class:`CircuitBreaker` keywords otherwise
    (``redis=`` shares it with other processes too).
    """
    with _REGISTRY_LOCK:
        b = _REGISTRY.get(name)
        if b is None:
            if config is not None:
                b = CircuitBreaker.from_settings(config, failure_threshold=failure_threshold, cooldown=cooldown,
                                                 name=name, on_change=kw.get("on_change"))  # fmt: skip
            else:
                kw.setdefault("name", name)
                b = CircuitBreaker(failure_threshold, cooldown, **kw)
            _REGISTRY[name] = b
        return b


def reset_shared_breakers() -> None:
    """Forget every shared breaker (tests, or after a deployment changes the routes)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


__all__ = [
    "DEFAULT_COOLDOWN_S",
    "DEFAULT_FAILURE_THRESHOLD",
    "BreakerSettings",
    "CircuitBreaker",
    "breaker_settings",
    "reset_shared_breakers",
    "shared_breaker",
]
