"""Redis ledger: many processes and hosts share one spend.

Keys (under ``prefix``, default ``cfgateway``):

- ``{p}:days``          sorted set of the UTC day numbers that have records
- ``{p}:rec:{day}``     list of the day's records (JSON)
- ``{p}:spend:{day}``   hash scope -> spend in pico-USD (integers, ``HINCRBY``)
- ``{p}:neurons``       hash day -> neurons (``HINCRBYFLOAT``)
- ``{p}:res``           hash reservation id -> ``{"u": "units", "s": [scopes], "e": "expires"}``
- ``{p}:alert:{key}``   alert marks (``SET NX`` with an expiry)
- ``{p}:state:{key}``   key-value state (:mod:`cfgateway.costs.ledger.state`)

A record, its aggregates and its reservation's release go in one Lua script (atomic, one round
trip); a reservation is checked and stored by another, so concurrent callers cannot overshoot.
``redis`` is imported only when a ledger is opened. guess: Redis Cluster is not supported
(the script derives day keys from the prefix).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
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

# KEYS: rec list, days zset, spend hash, neurons hash, reservations hash
# ARGV: record JSON, day, units, neurons, reservation id ("" = none), scopes...
_SETTLE = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[2])
if ARGV[3] ~= '0' then
  for i = 6, #ARGV do redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[3]) end
end
if ARGV[4] ~= '0' then redis.call('HINCRBYFLOAT', KEYS[4], ARGV[2], ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HDEL', KEYS[5], ARGV[5]) end
return 1
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
    """A ledger in Redis (``redis://host:port/db``, ``rediss://``, ``unix://``)."""

    def __init__(self, url: str, *, prefix: str = "cfgateway", max_connections: int = 50, client: Any = None) -> None:
        redis = _import_redis()
        self.url = url
        self.prefix = prefix
        if client is None:
            # A blocking pool: more threads than connections wait for one instead of failing.
            pool = redis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=30, decode_responses=True
            )
            client = redis.Redis(connection_pool=pool)
            self._own_pool: Any = pool
        else:
            self._own_pool = None
        self._r = client
        self._reserve = self._r.register_script(_RESERVE)
        self._settle = self._r.register_script(_SETTLE)
        self._spent = self._r.register_script(_SPENT)
        self._days_key = f"{prefix}:days"
        self._res_key = f"{prefix}:res"

    def __repr__(self) -> str:
        return f"RedisLedger({redact_url(self.url)!r}, prefix={self.prefix!r})"

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
        out = self._day_records(self._r.zrangebyscore(self._days_key, low, "+inf"))
        if since is not None:
            out = [r for r in out if r.ts >= since]
        out.sort(key=lambda r: r.ts)
        return out

    def spent(self, *, since: float, user: str | None = None, provider: str | None = None) -> Decimal:
        first, aligned = split_since(since)
        units = self._spent_units(scope_key(user, provider), first if aligned else first + 1)
        total = from_units(units)
        if not aligned:
            for r in self._day_records([str(first)]):
                if r.cost and r.ts >= since and matches(r, user, provider):
                    total += from_units(to_units(r.cost))  # the same rounding as the aggregates
        return total

    def _spent_units(self, scope: str, first_day: int) -> int:
        values = self._spent(keys=[self._days_key], args=[self.prefix, first_day, scope])
        return sum(int(v) for v in values)

    def neurons(self, *, since: float) -> float:
        first, aligned = split_since(since)
        start = first if aligned else first + 1
        per_day = self._r.hgetall(f"{self.prefix}:neurons")
        total = sum(float(v) for d, v in per_day.items() if int(d) >= start)
        if not aligned:
            total += sum(r.neurons or 0.0 for r in self._day_records([str(first)]) if r.ts >= since)
        return float(total)

    def close(self) -> None:
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
        out = self._reserve(keys=[self._res_key, self._days_key], args=args)
        if out == "ok":
            return rid
        index, spent, reserved = out
        return Rejection(int(index), from_units(int(spent)), from_units(int(reserved)))

    def settle(self, record: UsageRecord, reservation_id: str | None) -> None:
        r, px = record, self.prefix
        day = day_of(r.ts)
        keys = [f"{px}:rec:{day}", self._days_key, f"{px}:spend:{day}", f"{px}:neurons", self._res_key]
        body = json.dumps(r.to_dict(), default=str, separators=(",", ":"))
        units = to_units(r.cost) if r.cost else 0
        neurons = repr(float(r.neurons)) if r.neurons else "0"
        args = [body, day, units, neurons, reservation_id or "", *scopes_of(r.user, r.provider)]
        self._settle(keys=keys, args=args)

    def release_reservation(self, reservation_id: str) -> None:
        self._r.hdel(self._res_key, reservation_id)

    def mark_alert(self, key: str, *, expires: float) -> bool:
        # Keys name their window, so keeping a mark longer than its window is harmless; a week's
        # slack keeps marks made under a skewed (or injected) clock from vanishing at once.
        ttl = max(int(expires - time.time()), 0) + 7 * 86400
        return bool(self._r.set(f"{self.prefix}:alert:{key}", "1", nx=True, ex=ttl))

    def clear(self) -> None:
        """Delete every key under this ledger's prefix (tests, resets)."""
        keys = list(self._r.scan_iter(match=f"{self.prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            self._r.delete(*keys[i : i + 500])


__all__ = ["RedisLedger"]
