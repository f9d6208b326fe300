"""The breaker's state machine, per route, in this process (one lock; no ``await`` under it).

``step(key, op, now, settings)`` applies one event and says what changed; ``_breaker_redis`` runs the same
machine as a Lua script so every process sharing a Redis sees one state. Per route:

- closed: each attempt lands in one of ten buckets spanning ``window`` seconds. A failure opens the circuit when
  ``consecutive_failures`` attempts in a row failed, or when the window holds at least ``min_calls`` attempts
  and ``failure_rate`` of them failed.
- open for the current cooldown (``cooldown`` after a fresh opening, times ``cooldown_growth`` after each
  failed probe, at most ``max_cooldown``); failures of calls that were already in flight change nothing.
- half-open once the cooldown passed: ``allow`` lets one caller through (the probe); its success closes the
  circuit and forgets everything, its failure reopens it for a longer cooldown. A probe that never reports
  frees its slot after one cooldown.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal, Protocol

State = Literal["closed", "open", "half_open"]
Op = Literal["allow", "success", "failure", "release", "state"]
BUCKETS = 10
DEFAULT_CONSECUTIVE_FAILURES = 8
DEFAULT_COOLDOWN_S = 30.0


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """When a route's circuit opens and how long it stays open (see the module docstring)."""

    consecutive_failures: int | None = DEFAULT_CONSECUTIVE_FAILURES
    min_calls: int = 20
    failure_rate: float = 0.5
    window: float = 60.0
    cooldown: float = DEFAULT_COOLDOWN_S
    cooldown_growth: float = 2.0
    max_cooldown: float = 600.0


@dataclass(frozen=True, slots=True)
class Step:
    """What one event did: ``ok`` (allowed / counted), the state before and after, seconds until a probe."""

    ok: bool
    old: State
    new: State
    retry_in: float = 0.0


class States(Protocol):
    def step(self, key: str, op: Op, now: float, s: BreakerSettings) -> Step: ...

    def reset(self, key: str | None = None) -> None: ...

    def keys(self) -> list[str]: ...


@dataclass(slots=True)
class _Entry:
    consec: int = 0
    buckets: dict[int, list[int]] = field(default_factory=dict)  # bucket -> [calls, failures]
    opened: float | None = None
    cooldown: float = 0.0
    trips: int = 0  # failed probes since the circuit last closed
    probe: float | None = None
    announced: bool = False  # on_change heard about this half-open period


def _state(e: _Entry, now: float) -> State:
    if e.opened is None:
        return "closed"
    return "open" if now - e.opened < e.cooldown else "half_open"


def _retry_in(e: _Entry, now: float) -> float:
    return 0.0 if e.opened is None else max(0.0, e.opened + e.cooldown - now)


class LocalStates:
    """Thread- and task-safe states of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def step(self, key: str, op: Op, now: float, s: BreakerSettings) -> Step:
        with self._lock:
            e = self._entries.get(key)
            if e is None:
                if op not in ("success", "failure"):
                    return Step(op != "state", "closed", "closed")
                e = self._entries[key] = _Entry()
            old = _state(e, now)
            ok, shown, new = _apply(e, op, old, now, s)
            if op == "success" and old != "closed":
                del self._entries[key]  # closed again: forget everything
                return Step(ok, shown, new)
            return Step(ok, shown, new, _retry_in(e, now))

    def reset(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)


def _apply(e: _Entry, op: Op, old: State, now: float, s: BreakerSettings) -> tuple[bool, State, State]:
    """``(ok, state before as reported, state after)``."""
    if op == "state":
        return False, old, old
    if op == "release":
        e.probe = None
        return True, old, old
    if op == "allow":
        if old == "closed":
            return True, old, old
        if old == "open" or (e.probe is not None and now - e.probe < max(e.cooldown, 1e-9)):
            return False, old, old
        e.probe = now
        shown: State = old if e.announced else "open"  # the period's first probe reports open -> half_open
        e.announced = True
        return True, shown, "half_open"
    if op == "success":
        if e.opened is not None:  # the probe (or a call in flight) answered: close (the caller forgets)
            return True, old, "closed"
        _count(e, now, s, failed=False)
        e.consec = 0
        return True, old, old
    return _failure(e, old, now, s)


def _failure(e: _Entry, old: State, now: float, s: BreakerSettings) -> tuple[bool, State, State]:
    if e.opened is not None:
        if e.probe is None and old != "half_open":
            return False, old, old  # a call that was in flight when the circuit opened
        e.trips += 1
        e.cooldown = min(s.max_cooldown, s.cooldown * s.cooldown_growth**e.trips)
        e.opened, e.probe, e.announced = now, None, False
        return True, old, "open"
    calls, failures = _count(e, now, s, failed=True)
    e.consec += 1
    by_count = s.consecutive_failures is not None and e.consec >= s.consecutive_failures
    by_rate = calls >= s.min_calls and failures >= s.failure_rate * calls
    if not (by_count or by_rate):
        return True, old, old
    e.consec, e.buckets, e.trips = 0, {}, 0
    e.opened, e.cooldown, e.probe, e.announced = now, s.cooldown, None, False
    return True, old, "open"


def _count(e: _Entry, now: float, s: BreakerSettings, *, failed: bool) -> tuple[int, int]:
    """Count one attempt; drop buckets out of the window; the window's (calls, failures)."""
    width = s.window / BUCKETS
    current = int(now // width) if width > 0 else 0
    bucket = e.buckets.get(current)
    if bucket is None:
        for old in [b for b in e.buckets if b <= current - BUCKETS]:
            del e.buckets[old]
        bucket = e.buckets[current] = [0, 0]
    bucket[0] += 1
    bucket[1] += int(failed)
    if not failed:
        return 0, 0
    live = [v for b, v in e.buckets.items() if b > current - BUCKETS]
    return sum(v[0] for v in live), sum(v[1] for v in live)


__all__ = [
    "BUCKETS",
    "DEFAULT_CONSECUTIVE_FAILURES",
    "DEFAULT_COOLDOWN_S",
    "BreakerSettings",
    "LocalStates",
    "Op",
    "State",
    "States",
    "Step",
]
