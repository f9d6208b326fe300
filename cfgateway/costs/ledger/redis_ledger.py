"""Redis ledger: many processes and hosts share one spend.

Keys (under ``prefix``, default ``cfgateway``):

- ``{p}:days``          sorted set of the UTC day numbers that have records
- ``{p}:rec:{day}``     list of the day's records (JSON)
- ``{p}:spend:{day}``   hash scope -> spend in pico-USD (integers, ``HINCRBY``)
- ``{p}:neurons``       hash day -> neurons (``HINCRBYFLOAT``)
- ``{p}:res``           hash reservation id -> ``{"u": "units", "s": [scopes], "e": "expires"}``
- ``{p}:alert:{key}``   alert marks (``SET NX`` with an expiry)
- ``{p}:rids:{day}``    set of the record ids counted that day (a replayed record counts once)
- ``{p}:state:{key}``   key-value state (:mod:`cfgateway.costs.ledger.state`)

A record, its aggregates and its reservation's release go in one Lua script (atomic, one round
trip); a reservation is checked and stored by another, so concurrent callers cannot overshoot.
``redis`` is imported only when a ledger is opened. guess: Redis Cluster is not supported
(the script derives day keys from the prefix).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from typing import Any

from cfgateway.config import redact_url
from cfgateway.costs.ledger.base import Rejection, SpendCheck, new_reservation_id
from cfgateway.costs.ledger.record import (
    UsageRecord,
    day_of,
    from_units,
    matches,
    scope_key,
    scopes_of,
    split_since,
    to_units,
)
from cfgateway.costs.ledger.state import RedisState
from cfgateway.errors import LedgerUnavailableError

_RESERVE = """
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local amount = tonumber(ARGV[4])
local live = {}
local res = redis.call('HGETALL', KEYS[1])
for i = 1, #res, 2 do
  local r = cjson.decode(res[i + 1])
  if tonumber(r.e) <= now then redis.call('HDEL', KEYS[1], res[i]) else live[#live + 1] = r end
end
local c = 0
local a = 7
while a + 2 <= #ARGV do
  local scope, since, limit = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local spent = 0
  for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], since, '+inf')) do
    spent = spent + tonumber(redis.call('HGET', prefix .. ':spend:' .. d, scope) or '0')
  end
  local reserved = 0
  for _, r in ipairs(live) do
    for _, s in ipairs(r.s) do if s == scope then reserved = reserved + tonumber(r.u) end end
  end
  if spent + reserved + amount > limit then
    return {tostring(c), string.format('%.0f', spent), string.format('%.0f', reserved)}
  end
  c = c + 1
  a = a + 3
end
-- amounts and times stay strings: cjson would print numbers with only 14 significant digits
redis.call('HSET', KEYS[1], ARGV[3], cjson.encode({u = ARGV[4], s = cjson.decode(ARGV[6]), e = ARGV[5]}))
return 'ok'
"""

# KEYS: rec list, days zset, spend hash, neurons hash, reservations hash, record-id set
# ARGV: record JSON, day, units, neurons, reservation id ("" = none), record id ("" = none), scopes...
# A record id already in the day's set was counted before (a replayed spool): only its reservation goes.
_SETTLE = """
if ARGV[5] ~= '' then redis.call('HDEL', KEYS[5], ARGV[5]) end
if ARGV[6] ~= '' and redis.call('SADD', KEYS[6], ARGV[6]) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[2])
if ARGV[3] ~= '0' then
  for i = 7, #ARGV do redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[3]) end
end
if ARGV[4] ~= '0' then redis.call('HINCRBYFLOAT', KEYS[4], ARGV[2], ARGV[4]) end
return 1
"""

# KEYS: reservations hash; ARGV: new expiry, ids... -> how many were still held
_RENEW = """
local n = 0
for i = 2, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local r = cjson.decode(raw)
    r.e = ARGV[1]
    redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(r))
    n = n + 1
  end
end
return n
"""

# KEYS: days zset; ARGV: prefix, first day, scope -> the scope's per-day spend values (summed in Python, exactly)
_SPENT = """
local out = {}
for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
  local v = redis.call('HGET', ARGV[1] .. ':spend:' .. d, ARGV[3])
  if v then out[#out + 1] = v end
end
return out
"""


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the Redis ledger needs the redis package: pip install 'cfgateway[redis]'") from exc
    return redis


class RedisLedger(RedisState):
    """A ledger in Redis (``redis://host:port/db``, ``rediss://``, ``unix://``).

    Any Redis error (refused, reset, timed out, loading, read-only replica, script error) is raised as
    :class:`LedgerUnavailableError`: no ``redis.exceptions`` class reaches a caller. ``socket_timeout`` and
    ``connect_timeout`` bound how long one command may hang on a stopped server; ``retries`` quick retries
    (10-80 ms apart) ride over a connection reset.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cfgateway",
        max_connections: int = 50,
        client: Any = None,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retries: int = 3,
    ) -> None:
        redis = _import_redis()
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError,)
        self.url = url
        self.prefix = prefix
        if client is None:
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry

            retry = Retry(ExponentialBackoff(cap=0.08, base=0.01), retries)
            # A blocking pool: more threads than connections wait for one instead of failing.
            pool = redis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=30, decode_responses=True,
                socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout, retry=retry,
            )  # fmt: skip
            client = redis.Redis(connection_pool=pool, retry=retry)
            self._own_pool: Any = pool
        else:
            self._own_pool = None
        self._r = client
        self._reserve = self._r.register_script(_RESERVE)
        self._settle = self._r.register_script(_SETTLE)
        self._spent = self._r.register_script(_SPENT)
        self._renew = self._r.register_script(_RENEW)
        self._days_key = f"{prefix}:days"
        self._res_key = f"{prefix}:res"

    def __repr__(self) -> str:
        return f"RedisLedger({redact_url(self.url)!r}, prefix={self.prefix!r})"

    @property
    def spool_key(self) -> str:
        """Names this ledger's spool files (the same server and prefix from any process: same key)."""
        where = f"{redact_url(self.url)}|{self.prefix}"
        return "redis-" + hashlib.sha256(where.encode()).hexdigest()[:16]

    @property
    def redis(self) -> Any:
        """The underlying ``redis.Redis`` client (shared breaker state uses it)."""
        return self._r

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise LedgerUnavailableError(
                f"{self!r} cannot be reached: {type(exc).__name__}: {exc}", ledger=repr(self)
            ) from exc

    def _day_records(self, days: Sequence[str]) -> list[UsageRecord]:
        if not days:
            return []
        pipe = self._r.pipeline(transaction=False)
        for d in days:
            pipe.lrange(f"{self.prefix}:rec:{d}", 0, -1)
        return [UsageRecord.from_dict(json.loads(item)) for items in pipe.execute() for item in items]

    # -- Ledger ----------------------------------------------------------------------------
    def add(self, record: UsageRecord) -> None:
        self.settle(record, None)

    def records(self, *, since: float | None = None) -> list[UsageRecord]:
        low = "-inf" if since is None else day_of(since)
        with self._guard():
            out = self._day_records(self._r.zrangebyscore(self._days_key, low, "+inf"))
        if since is not None:
            out = [r for r in out if r.ts >= since]
        out.sort(key=lambda r: r.ts)
        return out

    def spent(self, *, since: float, user: str | None = None, provider: str | None = None) -> Decimal:
        first, aligned = split_since(since)
        with self._guard():
            units = self._spent_units(scope_key(user, provider), first if aligned else first + 1)
            first_day = [] if aligned else self._day_records([str(first)])
        total = from_units(units)
        for r in first_day:
            if r.cost and r.ts >= since and matches(r, user, provider):
                total += from_units(to_units(r.cost))  # the same rounding as the aggregates
        return total

    def _spent_units(self, scope: str, first_day: int) -> int:
        values = self._spent(keys=[self._days_key], args=[self.prefix, first_day, scope])
        return sum(int(v) for v in values)

    def neurons(self, *, since: float) -> float:
        first, aligned = split_since(since)
        start = first if aligned else first + 1
        with self._guard():
            per_day = self._r.hgetall(f"{self.prefix}:neurons")
            first_day = [] if aligned else self._day_records([str(first)])
        total = sum(float(v) for d, v in per_day.items() if int(d) >= start)
        total += sum(r.neurons or 0.0 for r in first_day if r.ts >= since)
        return float(total)

    def close(self) -> None:
        with suppress(*self._errors):
            self._r.close()
            if self._own_pool is not None:
                self._own_pool.disconnect()

    # -- BudgetStore -----------------------------------------------------------------------
    def try_reserve(
        self, checks: Sequence[SpendCheck], amount: Decimal, scopes: tuple[str, ...], *, now: float, ttl: float
    ) -> str | Rejection:
        rid = new_reservation_id()
        args: list[Any] = [self.prefix, repr(now), rid, to_units(amount, rounding="up"), repr(now + ttl)]
        args.append(json.dumps(list(scopes)))
        for check in checks:
            args.extend((check.scope, check.since_day, to_units(check.limit, rounding="down")))
        with self._guard():
            out = self._reserve(keys=[self._res_key, self._days_key], args=args)
        if out == "ok":
            return rid
        index, spent, reserved = out
        return Rejection(int(index), from_units(int(spent)), from_units(int(reserved)))

    def _settle_call(self, r: UsageRecord, reservation_id: str | None, client: Any = None) -> Any:
        px = self.prefix
        day = day_of(r.ts)
        keys = [f"{px}:rec:{day}", self._days_key, f"{px}:spend:{day}", f"{px}:neurons", self._res_key,
                f"{px}:rids:{day}"]  # fmt: skip
        body = json.dumps(r.to_dict(), default=str, separators=(",", ":"))
        units = to_units(r.cost) if r.cost else 0
        neurons = repr(float(r.neurons)) if r.neurons else "0"
        args = [body, day, units, neurons, reservation_id or "", r.record_id, *scopes_of(r.user, r.provider)]
        return self._settle(keys=keys, args=args, client=client)

    def settle(self, record: UsageRecord, reservation_id: str | None) -> None:
        with self._guard():
            self._settle_call(record, reservation_id)

    def settle_many(self, items: Sequence[tuple[UsageRecord, str | None]]) -> None:
        """:meth:`settle` for each ``(record, reservation id)``, in order, in one pipelined round trip."""
        if not items:
            return
        with self._guard():
            pipe = self._r.pipeline(transaction=False)
            for record, reservation_id in items:
                self._settle_call(record, reservation_id, client=pipe)
            pipe.execute()

    def release_reservation(self, reservation_id: str) -> None:
        with self._guard():
            self._r.hdel(self._res_key, reservation_id)

    def renew_reservations(self, reservation_ids: Sequence[str], *, expires: float) -> int:
        if not reservation_ids:
            return 0
        with self._guard():
            return int(self._renew(keys=[self._res_key], args=[repr(expires), *reservation_ids]))

    def mark_alert(self, key: str, *, expires: float) -> bool:
        # Keys name their window, so keeping a mark longer than its window is harmless; a week's
        # slack keeps marks made under a skewed (or injected) clock from vanishing at once.
        ttl = max(int(expires - time.time()), 0) + 7 * 86400
        with self._guard():
            return bool(self._r.set(f"{self.prefix}:alert:{key}", "1", nx=True, ex=ttl))

    def clear(self) -> None:
        """Delete every key under this ledger's prefix (tests, resets)."""
        with self._guard():
            keys = list(self._r.scan_iter(match=f"{self.prefix}:*", count=1000))
            for i in range(0, len(keys), 500):
                self._r.delete(*keys[i : i + 500])


__all__ = ["RedisLedger"]
