"""Client-side rate limits per route: calls wait their turn instead of drawing 429s.

A :class:`Rate` says "at most ``requests`` requests (and ``tokens`` tokens) per ``per`` seconds". Each limit is
a sliding log, so no window of ``per`` seconds ever holds more than the limit (a token bucket would allow a
burst of twice the limit across a window edge). The logs live in this process (:class:`LocalWindows`) or in
Redis (:class:`RedisWindows`, shared by every process and host that uses the same Redis).

The transport asks a route's :class:`Pace` before each attempt (``delay``) and tells it about a 429
(``pause``): then every call on that route — every batch of an embedding job included — waits out the
``Retry-After`` together. A wait that would pass the call's deadline is not taken: the transport raises
``RateLimitError`` (a chain falls back).
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cfgateway.costs.catalog import Catalog, default_catalog
from cfgateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``requests`` requests and ``tokens`` input tokens per ``per`` seconds (None: no such limit)."""

    requests: int | None = None
    tokens: int | None = None
    per: float = 60.0

    def __post_init__(self) -> None:
        if self.requests is None and self.tokens is None:
            raise ConfigError("a rate limit needs requests (rpm=) or tokens (tpm=)")
        for name in ("requests", "tokens"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"rate limit {name} must be a positive whole number, got {v!r}")
        if not self.per > 0:
            raise ConfigError(f"rate limit window must be a positive number of seconds, got {self.per!r}")

    @classmethod
    def parse(cls, value: Rate | Mapping[str, Any]) -> Rate:
        """A :class:`Rate` from config: ``{rpm = 60}``, ``{tpm = 100000}``, ``{rps = 5}`` or
        ``{requests = 10, per = 1.0}`` (keys may be combined: ``{rpm = 60, tpm = 200000}``)."""
        if isinstance(value, Rate):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"a rate limit is a table like {{rpm = 60}}, got {value!r}")
        known = {"rpm", "tpm", "rps", "requests", "tokens", "per"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"unknown rate limit key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "rps" in value:
            return cls(requests=value["rps"], per=1.0)
        if "rpm" in value or "tpm" in value:
            return cls(requests=value.get("rpm"), tokens=value.get("tpm"), per=60.0)
        return cls(requests=value.get("requests"), tokens=value.get("tokens"), per=float(value.get("per", 60.0)))


class Windows(Protocol):
    """Where the sliding logs live."""

    def reserve(self, key: str, limit: int, weight: int, per: float, now: float) -> float:
        """Add ``weight`` to ``key``'s log if the last ``per`` seconds leave room (return 0), else return how many
        seconds until they would (nothing added)."""
        ...

    def pause(self, key: str, until: float) -> None:
        """Nothing is admitted on ``key`` before ``until`` (epoch seconds)."""
        ...

    def paused_until(self, key: str) -> float: ...


class LocalWindows:
    """Sliding logs in this process (thread-safe; no ``await`` under the lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, deque[tuple[float, int]]] = {}
        self._pauses: dict[str, float] = {}

    def reserve(self, key: str, limit: int, weight: int, per: float, now: float) -> float:
        with self._lock:
            log = self._logs.setdefault(key, deque())
            while log and log[0][0] <= now - per:
                log.popleft()
            used = sum(w for _, w in log)
            if used + weight <= limit or not log:  # an empty log always admits (one call above a tiny limit)
                log.append((now, weight))
                return 0.0
            # wait until enough of the oldest entries have left the window
            freed, need = 0, used + weight - limit
            for t, w in log:
                freed += w
                if freed >= need:
                    return max(t + per - now, 1e-3)
            return per  # pragma: no cover - unreachable: the whole log frees everything

    def pause(self, key: str, until: float) -> None:
        with self._lock:
            self._pauses[key] = max(until, self._pauses.get(key, 0.0))

    def paused_until(self, key: str) -> float:
        return self._pauses.get(key, 0.0)


# KEYS[1] = log (sorted set: score = time, member = time:weight:nonce); ARGV = limit, weight, per, now, nonce
_RESERVE = """
local key, limit, weight, per, now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - per)
local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #entries, 2 do
  used = used + tonumber(string.match(entries[i], ':(%d+):'))
end
if used + weight <= limit or #entries == 0 then
  redis.call('ZADD', key, now, now .. ':' .. weight .. ':' .. ARGV[5])
  redis.call('PEXPIRE', key, math.ceil(per * 1000) + 1000)
  return '0'
end
local need, freed = used + weight - limit, 0
for i = 1, #entries, 2 do
  freed = freed + tonumber(string.match(entries[i], ':(%d+):'))
  if freed >= need then
    return tostring(math.max(tonumber(entries[i + 1]) + per - now, 0.001))
  end
end
return tostring(per)
"""


class RedisWindows:
    """Sliding logs in Redis: every process and host on the same Redis shares each limit (a Lua script keeps
    the check and the insert atomic). Uses the Redis clock-free scheme: callers pass wall-clock ``now``."""

    def __init__(self, url: str, prefix: str = "cfgateway:rate:") -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - the extra is installed with the Redis ledger
            raise ImportError("shared rate limits need the redis package: pip install 'cfgateway[redis]'") from exc
        self._r = redis.Redis.from_url(url)
        self._script = self._r.register_script(_RESERVE)
        self.prefix = prefix
        self._nonce = iter(range(1 << 62))

    def reserve(self, key: str, limit: int, weight: int, per: float, now: float) -> float:
        nonce = f"{threading.get_ident()}-{next(self._nonce)}"
        wait = self._script(keys=[self.prefix + key], args=[limit, weight, per, now, nonce])
        return float(wait)

    def pause(self, key: str, until: float) -> None:
        k = self.prefix + "pause:" + key
        current = self._r.get(k)
        if current is None or float(current) < until:
            self._r.set(k, repr(until), px=max(1, int((until - time.time()) * 1000)) + 1000)

    def paused_until(self, key: str) -> float:
        v = self._r.get(self.prefix + "pause:" + key)
        return float(v) if v is not None else 0.0


# The client's window is longer than the limit's by 10 % of it, at least 0.25 s and at most 1 s: room for the
# network and for a busy server's queue between taking a slot and arriving (measured here: up to ~0.25 s).
MIN_MARGIN_S, MAX_MARGIN_S = 0.25, 1.0


class Pace:
    """One route's limits, as the transport sees them."""

    __slots__ = ("key", "rate", "windows")

    def __init__(self, key: str, rate: Rate, windows: Windows) -> None:
        self.key, self.rate, self.windows = key, rate, windows

    def delay(self, tokens: int = 0, now: float | None = None) -> float:
        """0 when a request of ``tokens`` may go now (its slot is taken); else seconds to wait, then ask again."""
        now = time.time() if now is None else now
        paused = self.windows.paused_until(self.key) - now
        if paused > 0:
            return paused
        r = self.rate
        # A request reaches the server a little after its slot is taken, and not always as soon as the one before:
        # the window kept here is a little longer than the server's, so the server never sees a window over it.
        per = r.per + min(max(0.1 * r.per, MIN_MARGIN_S), MAX_MARGIN_S)
        if r.requests is not None:
            wait = self.windows.reserve(f"{self.key}:req", r.requests, 1, per, now)
            if wait:
                return wait
        if r.tokens is not None and tokens:
            # guess: a request larger than the whole token budget goes alone in an empty window rather than never
            wait = self.windows.reserve(f"{self.key}:tok", r.tokens, min(tokens, r.tokens), per, now)
            if wait:
                return wait
        return 0.0

    def pause(self, seconds: float) -> None:
        """The route answered 429: nobody sends on it for ``seconds``."""
        self.windows.pause(self.key, time.time() + seconds)


Rule = Rate | Mapping[str, Any] | str  # a Rate, a config table ({rpm = 60}), or "catalog"


class RateLimiter:
    """Limits by model string or glob (``"custom-deepinfra/*"``); the first matching rule wins, an exact model
    string before any glob. A rule ``"catalog"`` takes the model's published requests per minute from the
    catalog (``rpm``: Workers AI's per-model limits). ``pace(model)`` is None for a model without a limit.
    Each matched model keeps its own window (the limits are per model, as Workers AI's are)."""

    def __init__(self, rules: Mapping[str, Rule] | None = None, windows: Windows | None = None,
                 catalog: Catalog | None = None) -> None:
        self.rules: dict[str, Rate | str] = {}
        for pattern, rule in (rules or {}).items():
            self.rules[pattern] = rule if rule == "catalog" else Rate.parse(rule)  # type: ignore[arg-type]
        self.windows: Windows = windows or LocalWindows()
        self.catalog = catalog
        self._paces: dict[str, Pace | None] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def rate_for(self, model: str) -> Rate | None:
        rule = self.rules.get(model)
        if rule is None:
            rule = next((r for p, r in self.rules.items() if fnmatch.fnmatchcase(model, p)), None)
        if rule == "catalog":
            info = (self.catalog or default_catalog()).get(model)
            return Rate(requests=info.rpm) if info is not None and info.rpm else None
        return rule if isinstance(rule, Rate) else None

    def pace(self, model: str) -> Pace | None:
        pace = self._paces.get(model, False)
        if pace is False:
            with self._lock:
                rate = self.rate_for(model)
                pace = self._paces[model] = Pace(model, rate, self.windows) if rate is not None else None
        return pace  # type: ignore[return-value]


__all__ = ["LocalWindows", "Pace", "Rate", "RateLimiter", "RedisWindows", "Windows"]
