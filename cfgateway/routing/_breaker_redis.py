"""Breaker states in Redis: the machine of ``_breaker_state`` as one Lua script, so every process (and host)
sharing the server sees one state per route and exactly one of them gets a half-open probe.

One hash per route, ``{prefix}:breaker:{name}:{route}``: ``opened``, ``cd`` (current cooldown), ``trips``,
``probe``, ``ann`` (half-open announced), ``consec``, ``c:{bucket}`` / ``f:{bucket}`` (attempts / failures),
``lc`` (last bucket clean-up). Idle hashes expire after ``window + 2 x max_cooldown``. Times are wall-clock
seconds (processes on several hosts share them). ``redis`` is imported only when such a breaker is made.
"""

from __future__ import annotations

from typing import Any, cast

from cfgateway.routing._breaker_state import BUCKETS, BreakerSettings, Op, State, Step

# KEYS[1]: the route's hash. ARGV: op, now, consecutive (0 = off), min_calls, rate, window, cooldown, growth,
# max cooldown, ttl ms, buckets. Returns {ok, shown old state, new state, retry_in as text}.
_STEP = """
local op, now = ARGV[1], tonumber(ARGV[2])
local n_consec, min_calls, rate = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local window, base, growth, maxcd = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local ttl, nb = tonumber(ARGV[10]), tonumber(ARGV[11])
local h = KEYS[1]
local v = redis.call('HMGET', h, 'opened', 'cd', 'trips', 'probe', 'consec', 'ann', 'lc')
local opened, cd, trips = tonumber(v[1]), tonumber(v[2]) or base, tonumber(v[3]) or 0
local probe, consec, ann, lc = tonumber(v[4]), tonumber(v[5]) or 0, v[6], tonumber(v[7]) or 0
local function state()
  if not opened then return 'closed' end
  if now - opened < cd then return 'open' end
  return 'half_open'
end
local old = state()
local function out(ok, shown, new)
  if op ~= 'state' then redis.call('PEXPIRE', h, ttl) end
  local wait = 0
  if opened then wait = math.max(0, opened + cd - now) end
  return {ok, shown, new, tostring(wait)}
end
local width = window / nb
local cur = 0
if width > 0 then cur = math.floor(now / width) end
local function window_counts()
  local calls, fails = 0, 0
  local all = redis.call('HGETALL', h)
  for i = 1, #all, 2 do
    local kind, b = string.match(all[i], '^([cf]):(-?%d+)$')
    if kind then
      b = tonumber(b)
      if b <= cur - nb then redis.call('HDEL', h, all[i])
      elseif kind == 'c' then calls = calls + tonumber(all[i + 1])
      else fails = fails + tonumber(all[i + 1]) end
    end
  end
  redis.call('HSET', h, 'lc', cur)
  return calls, fails
end
if op == 'state' then return out(0, old, old) end
if op == 'release' then redis.call('HDEL', h, 'probe') return out(1, old, old) end
if op == 'allow' then
  if old == 'closed' then return out(1, old, old) end
  if old == 'open' or (probe and now - probe < math.max(cd, 1e-9)) then return out(0, old, old) end
  redis.call('HSET', h, 'probe', ARGV[2], 'ann', '1')
  if ann then return out(1, old, 'half_open') end
  return out(1, 'open', 'half_open')
end
if op == 'success' then
  if opened then redis.call('DEL', h) opened = nil return out(1, old, 'closed') end
  redis.call('HINCRBY', h, 'c:' .. cur, 1)
  redis.call('HSET', h, 'consec', 0)
  if cur - lc >= nb then window_counts() end
  return out(1, old, old)
end
-- failure
if opened then
  if not probe and old ~= 'half_open' then return out(0, old, old) end
  trips = trips + 1
  cd = math.min(maxcd, base * growth ^ trips)
  opened = now
  redis.call('HSET', h, 'opened', ARGV[2], 'cd', tostring(cd), 'trips', trips)
  redis.call('HDEL', h, 'probe', 'ann')
  return out(1, old, 'open')
end
redis.call('HINCRBY', h, 'c:' .. cur, 1)
redis.call('HINCRBY', h, 'f:' .. cur, 1)
consec = consec + 1
local calls, fails = window_counts()
if (n_consec > 0 and consec >= n_consec) or (calls >= min_calls and fails >= rate * calls) then
  redis.call('DEL', h)
  opened, cd = now, base
  redis.call('HSET', h, 'opened', ARGV[2], 'cd', tostring(base), 'trips', 0)
  return out(1, old, 'open')
end
redis.call('HSET', h, 'consec', consec)
return out(1, old, old)
"""


class RedisStates:
    """Breaker states shared through one Redis (a URL, or a ``redis.Redis`` client with ``decode_responses``)."""

    def __init__(self, redis: Any, *, name: str = "default", prefix: str = "cfgateway") -> None:
        if isinstance(redis, str):
            import redis as redis_mod  # lazy: only shared breakers need it
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry

            redis = redis_mod.Redis.from_url(
                redis, decode_responses=True, socket_timeout=1.0, socket_connect_timeout=0.5,
                retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
            )  # fmt: skip
        self._r = redis
        self._script = redis.register_script(_STEP)
        self._base = f"{prefix}:breaker:{name}:"
        self.errors: tuple[type[BaseException], ...] = (_redis_error(),)

    def __repr__(self) -> str:
        return f"RedisStates({self._base!r})"

    def step(self, key: str, op: Op, now: float, s: BreakerSettings) -> Step:
        ttl_ms = int((s.window + 2 * s.max_cooldown) * 1000) + 1000
        args = [op, repr(now), s.consecutive_failures or 0, s.min_calls, repr(s.failure_rate), repr(s.window),
                repr(s.cooldown), repr(s.cooldown_growth), repr(s.max_cooldown), ttl_ms, BUCKETS]  # fmt: skip
        ok, old, new, wait = self._script(keys=[self._base + key], args=args)
        return Step(bool(int(ok)), cast(State, old), cast(State, new), float(wait))

    def reset(self, key: str | None = None) -> None:
        if key is not None:
            self._r.delete(self._base + key)
            return
        keys = list(self._r.scan_iter(match=self._base + "*", count=500))
        for i in range(0, len(keys), 500):
            self._r.delete(*keys[i : i + 500])

    def keys(self) -> list[str]:
        return [k[len(self._base) :] for k in self._r.scan_iter(match=self._base + "*", count=500)]


def _redis_error() -> type[BaseException]:
    import redis

    return cast(type[BaseException], redis.exceptions.RedisError)


__all__ = ["RedisStates"]
