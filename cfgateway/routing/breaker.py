"""Circuit breaker per route: a route that keeps failing is skipped for a while.

States per key (a route's model string)::

    closed --N consecutive failures--> open --cooldown passed--> half-open
    half-open --probe succeeds--> closed
    half-open --probe fails-----> open (a new cooldown)

While open, :meth:`CircuitBreaker.allow` says no and the caller sends nothing. In half-open
one caller gets the probe; the others are refused until it reports. One lock guards the state,
so a breaker is shared safely between threads and asyncio tasks (no ``await`` happens under it).
Share one breaker between chains by passing the same object, or by name through
:func:`shared_breaker`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]

DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_COOLDOWN_S = 30.0


@dataclass(slots=True)
class _Entry:
    failures: int = 0
    opened_at: float | None = None  # set while open or half-open
    probe_started: float | None = None  # a half-open probe is in flight since then


class CircuitBreaker:
    """Consecutive-failure breaker keyed by route model string; thread- and task-safe.

    ``failure_threshold`` consecutive failures open a route for ``cooldown`` seconds; then one
    probe call is let through (half-open). A probe that never reports (its caller vanished) frees
    the slot again after another ``cooldown``.
    """

    def __init__(
        self,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cooldown: float = DEFAULT_COOLDOWN_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown < 0:
            raise ValueError("cooldown must be >= 0 seconds")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def __repr__(self) -> str:
        return f"CircuitBreaker(failure_threshold={self.failure_threshold}, cooldown={self.cooldown})"

    def _state(self, e: _Entry, now: float) -> State:
        if e.opened_at is None:
            return "closed"
        return "open" if now - e.opened_at < self.cooldown else "half_open"

    def state(self, key: str) -> State:
        with self._lock:
            e = self._entries.get(key)
            return "closed" if e is None else self._state(e, self._clock())

    def retry_in(self, key: str) -> float:
        """Seconds until an open route may be probed (0 when it may be tried now)."""
        with self._lock:
            e = self._entries.get(key)
            if e is None or e.opened_at is None:
                return 0.0
            return max(0.0, e.opened_at + self.cooldown - self._clock())

    def allow(self, key: str) -> bool:
        """May a call be sent to ``key`` now? In half-open, True for exactly one caller (the probe)."""
        with self._lock:
            e = self._entries.get(key)
            if e is None or e.opened_at is None:
                return True
            now = self._clock()
            if self._state(e, now) == "open":
                return False
            if e.probe_started is not None and now - e.probe_started < max(self.cooldown, 1e-9):
                return False  # another caller is probing
            e.probe_started = now
            return True

    def success(self, key: str) -> None:
        """The route answered: close it and forget its failures."""
        with self._lock:
            self._entries.pop(key, None)

    def failure(self, key: str) -> None:
        """The route failed in a way that says something about its health."""
        with self._lock:
            e = self._entries.setdefault(key, _Entry())
            now = self._clock()
            if e.opened_at is not None:
                if e.probe_started is not None or self._state(e, now) == "half_open":
                    e.opened_at, e.probe_started = now, None  # the probe failed: a new cooldown
                return
            e.failures += 1
            if e.failures >= self.failure_threshold:
                e.opened_at, e.probe_started = now, None

    def release(self, key: str) -> None:
        """The call ended without telling anything about the route (bad input, cancelled): free the probe."""
        with self._lock:
            e = self._entries.get(key)
            if e is not None:
                e.probe_started = None

    def reset(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)

    def snapshot(self) -> dict[str, State]:
        """Every route the breaker knows with its state (for logs and health pages)."""
        with self._lock:
            now = self._clock()
            return {k: self._state(e, now) for k, e in self._entries.items()}


_REGISTRY: dict[str, CircuitBreaker] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_breaker(
    name: str = "default",
    *,
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
    cooldown: float = DEFAULT_COOLDOWN_S,
) -> CircuitBreaker:
    """The process-wide breaker called ``name`` (created on first use with these settings).

    Chains that pass the same name share route health, so a dead primary is skipped by all of them.
    """
    with _REGISTRY_LOCK:
        b = _REGISTRY.get(name)
        if b is None:
            b = _REGISTRY[name] = CircuitBreaker(failure_threshold, cooldown)
        return b


def reset_shared_breakers() -> None:
    """Forget every shared breaker (tests, or after a deployment changes the routes)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


__all__ = [
    "CircuitBreaker",
    "shared_breaker",
    "reset_shared_breakers",
]
