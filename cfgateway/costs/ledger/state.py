"""A small key-value state beside the records, shared the way the ledger is shared.

State several processes must agree on and that is not a record (a rollout's stage and its history,
the recent alerts) lives here: in this process (:class:`MemoryState`), in the SQLite file
(:class:`SQLiteState`, table ``state``) or in Redis (:class:`RedisState`, keys ``{prefix}:state:{key}``).
Values are strings (callers keep JSON in them). ``expires`` is an absolute epoch time: an expired
key reads as missing. :meth:`StateStore.compare_and_set` is atomic across every process sharing
the store, so two processes changing one value cannot both win.

The three shipped ledgers mix these in; a user's own ledger may implement :class:`StateStore` too.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol, runtime_checkable

_CREATE = "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL)"
_LAZY_LOCK = threading.Lock()

# KEYS: the key; ARGV: has expected ("0"/"1"), expected, new value, ttl in ms ("" = none)
_CAS = """
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) else redis.call('SET', KEYS[1], ARGV[3]) end
return 1
"""


@runtime_checkable
class StateStore(Protocol):
    def get_state(self, key: str) -> str | None:
        """The value stored under ``key``, or ``None`` (missing or expired)."""
        ...

    def set_state(self, key: str, value: str, *, expires: float | None = None) -> None:
        """Store ``value`` (until the epoch time ``expires``, or for good)."""
        ...

    def compare_and_set(self, key: str, expected: str | None, value: str, *, expires: float | None = None) -> bool:
        """Atomically: if the value is ``expected`` (``None`` = missing), store ``value``; say whether it did."""
        ...


def _check(key: str, value: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("a state key must be a non-empty string")
    if not isinstance(value, str):
        raise TypeError(f"state values are strings (store JSON text), got {type(value).__name__}")


class MemoryState:
    """State in this process (thread-safe). Mixed into :class:`~cfgateway.costs.ledger.MemoryLedger`."""

    def _state_parts(self) -> tuple[threading.Lock, dict[str, tuple[str, float | None]]]:
        parts: Any = self.__dict__.get("_state_parts_")
        if parts is None:
            with _LAZY_LOCK:
                parts = self.__dict__.setdefault("_state_parts_", (threading.Lock(), {}))
        return parts  # type: ignore[no-any-return]

    @staticmethod
    def _live(entry: tuple[str, float | None] | None) -> str | None:
        if entry is None or (entry[1] is not None and entry[1] <= time.time()):
            return None
        return entry[0]

    def get_state(self, key: str) -> str | None:
        lock, values = self._state_parts()
        with lock:
            return self._live(values.get(key))

    def set_state(self, key: str, value: str, *, expires: float | None = None) -> None:
        _check(key, value)
        lock, values = self._state_parts()
        with lock:
            values[key] = (value, expires)

    def compare_and_set(self, key: str, expected: str | None, value: str, *, expires: float | None = None) -> bool:
        _check(key, value)
        lock, values = self._state_parts()
        with lock:
            if self._live(values.get(key)) != expected:
                return False
            values[key] = (value, expires)
            return True


class SQLiteState:
    """State in the ledger's SQLite file (table ``state``, created on first use); writes are
    ``BEGIN IMMEDIATE`` transactions. Needs the host class's ``_conn()``."""

    def _conn(self) -> Any:  # provided by SQLiteLedger
        raise NotImplementedError

    def _state_conn(self) -> Any:
        conn = self._conn()
        if not self.__dict__.get("_state_ready_"):
            conn.execute(_CREATE)
            self.__dict__["_state_ready_"] = True
        return conn

    @staticmethod
    def _read(conn: Any, key: str) -> str | None:
        row = conn.execute("SELECT value, expires FROM state WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= time.time()):
            return None
        return str(row[0])

    def get_state(self, key: str) -> str | None:
        return self._read(self._state_conn(), key)

    def set_state(self, key: str, value: str, *, expires: float | None = None) -> None:
        _check(key, value)
        self._state_write(key, None, value, expires, check=False)

    def compare_and_set(self, key: str, expected: str | None, value: str, *, expires: float | None = None) -> bool:
        _check(key, value)
        return self._state_write(key, expected, value, expires, check=True)

    def _state_write(self, key: str, expected: str | None, value: str, expires: float | None, *, check: bool) -> bool:
        conn = self._state_conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if check and self._read(conn, key) != expected:
                conn.execute("ROLLBACK")
                return False
            conn.execute(
                "INSERT INTO state (key, value, expires) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
                (key, value, expires),
            )
            conn.execute("COMMIT")
            return True
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


class RedisState:
    """State in Redis under ``{prefix}:state:{key}``; compare-and-set is one Lua script. Needs the
    host class's ``_r`` (a redis client) and ``prefix``."""

    _r: Any
    prefix: str

    def _state_key(self, key: str) -> str:
        return f"{self.prefix}:state:{key}"

    @staticmethod
    def _ttl_ms(expires: float | None) -> str:
        if expires is None:
            return ""
        return str(max(1, int((expires - time.time()) * 1000)))

    def get_state(self, key: str) -> str | None:
        value = self._r.get(self._state_key(key))
        return None if value is None else str(value)

    def set_state(self, key: str, value: str, *, expires: float | None = None) -> None:
        _check(key, value)
        ttl = self._ttl_ms(expires)
        self._r.set(self._state_key(key), value, px=int(ttl) if ttl else None)

    def compare_and_set(self, key: str, expected: str | None, value: str, *, expires: float | None = None) -> bool:
        _check(key, value)
        script = self.__dict__.get("_cas_script_")
        if script is None:
            script = self.__dict__["_cas_script_"] = self._r.register_script(_CAS)
        args = ["0" if expected is None else "1", expected or "", value, self._ttl_ms(expires)]
        return bool(script(keys=[self._state_key(key)], args=args))


__all__ = ["MemoryState", "RedisState", "SQLiteState", "StateStore"]
