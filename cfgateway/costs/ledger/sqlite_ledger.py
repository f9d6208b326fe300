"""SQLite ledger: persistent, one machine, many threads and processes.

WAL mode, ``synchronous=NORMAL``, one connection per thread (and per process: a forked child
opens its own). Every write is a ``BEGIN IMMEDIATE`` transaction, so a reservation's check and
insert, or a record and its reservation's release, are atomic across processes. A record whose
``record_id`` is already stored is skipped (a replayed spool counts once). Errors that mean "the file
cannot be used now" (locked past ``timeout``, I/O, read-only, full) are :class:`LedgerUnavailableError`.
``sqlite3`` is imported only when a ledger is opened.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from cfgateway.costs.ledger._sqlite_shadow import SHADOW_COLUMNS, add_shadow_columns, shadow_values, with_shadow
from cfgateway.costs.ledger.base import Rejection, SpendCheck, new_reservation_id
from cfgateway.costs.ledger.record import (
    DAY_S,
    UsageRecord,
    day_of,
    from_units,
    scope_key,
    scopes_of,
    split_since,
    to_units,
)
from cfgateway.costs.ledger.state import SQLiteState
from cfgateway.errors import LedgerUnavailableError

if TYPE_CHECKING:
    import sqlite3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  id INTEGER PRIMARY KEY, ts REAL NOT NULL, day INTEGER NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,
  operation TEXT NOT NULL, input_tokens INTEGER, output_tokens INTEGER, cached_tokens INTEGER, neurons REAL,
  cost TEXT, cost_units INTEGER, latency_s REAL, ttft_s REAL, outcome TEXT, attempt INTEGER, fallback INTEGER,
  cache_status TEXT, log_id TEXT, stream INTEGER, stream_complete INTEGER, user_id TEXT, tags TEXT, call_id TEXT);
CREATE INDEX IF NOT EXISTS records_ts ON records(ts);
CREATE TABLE IF NOT EXISTS spend (scope TEXT NOT NULL, day INTEGER NOT NULL, units INTEGER NOT NULL,
  neurons REAL NOT NULL, PRIMARY KEY (scope, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, units INTEGER NOT NULL, scopes TEXT NOT NULL,
  expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (key TEXT PRIMARY KEY, expires REAL NOT NULL);
"""
# Added after the first release: files made before get the column on open.
_RECORD_ID = "CREATE UNIQUE INDEX IF NOT EXISTS records_record_id ON records(record_id)"

_COLUMNS = (
    "ts, day, model, provider, operation, input_tokens, output_tokens, cached_tokens, neurons, cost, cost_units, "
    "latency_s, ttft_s, outcome, attempt, fallback, cache_status, log_id, stream, stream_complete, user_id, tags, "
    "call_id, record_id, " + ", ".join(name for name, _ in SHADOW_COLUMNS)
)
# A record already counted (a spooled record replayed after a write whose answer was lost) is skipped.
_INSERT = (f"INSERT INTO records ({_COLUMNS}) VALUES ({', '.join('?' * (24 + len(SHADOW_COLUMNS)))}) "
           "ON CONFLICT(record_id) DO NOTHING")
_SELECT = f"SELECT {_COLUMNS} FROM records"
# One row per (scope, UTC day): pico-USD spent and (on the "g" scope row) neurons used.
_UPSERT_SPEND = (
    "INSERT INTO spend (scope, day, units, neurons) VALUES (?, ?, ?, ?) ON CONFLICT(scope, day) "
    "DO UPDATE SET units = units + excluded.units, neurons = neurons + excluded.neurons"
)


def _row(r: UsageRecord, day: int, units: int) -> tuple[Any, ...]:
    cost = r.cost
    return (
        r.ts, day, r.model, r.provider, r.operation, r.input_tokens, r.output_tokens, r.cached_tokens, r.neurons,
        None if cost is None else str(cost), None if cost is None else units,
        r.latency_s, r.ttft_s, r.outcome, r.attempt, int(r.fallback), r.cache_status, r.log_id, int(r.stream),
        None if r.stream_complete is None else int(r.stream_complete), r.user,
        json.dumps(r.tags, default=str, separators=(",", ":")) if r.tags else None, r.call_id, r.record_id or None,
        *shadow_values(r),
    )  # fmt: skip


def _record(row: tuple[Any, ...]) -> UsageRecord:
    (ts, _day, model, provider, operation, inp, out, cached, neurons, cost, _units, latency, ttft, outcome, attempt,
     fallback, cache_status, log_id, stream, complete, user, tags, call_id, record_id) = row[:24]  # fmt: skip
    return with_shadow(row[24:], UsageRecord(
        ts=ts, model=model, provider=provider, operation=operation, input_tokens=inp or 0, output_tokens=out or 0,
        cached_tokens=cached or 0, neurons=neurons, cost=None if cost is None else Decimal(cost), latency_s=latency,
        ttft_s=ttft, outcome=outcome, attempt=attempt or 0, fallback=bool(fallback), cache_status=cache_status,
        log_id=log_id, stream=bool(stream), stream_complete=None if complete is None else bool(complete), user=user,
        tags=json.loads(tags) if tags else {}, call_id=call_id or "", record_id=record_id or "",
    ))  # fmt: skip


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _mapped(fn: Callable[Concatenate[SQLiteLedger, _P], _T]) -> Callable[Concatenate[SQLiteLedger, _P], _T]:
    """Turn "the database cannot be used now" errors (locked past the timeout, I/O, read-only, disk full,
    not a database) into :class:`LedgerUnavailableError`; programming errors stay what they are."""

    @functools.wraps(fn)
    def wrapper(self: SQLiteLedger, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(self, *args, **kwargs)
        except self._sqlite3.DatabaseError as exc:
            sq = self._sqlite3
            if isinstance(exc, sq.IntegrityError | sq.ProgrammingError | sq.DataError | sq.NotSupportedError):
                raise
            raise LedgerUnavailableError(f"{self!r} cannot be used: {exc}", ledger=repr(self)) from exc

    return wrapper


class SQLiteLedger(SQLiteState):
    """A ledger in one SQLite file (created with its parent folders when missing)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        import sqlite3  # lazy: keeps `import cfgateway` fast

        self._sqlite3 = sqlite3
        self.path = str(path)
        if self.path == ":memory:" or not self.path:
            raise ValueError("SQLiteLedger needs a file path (one connection per thread cannot share :memory:)")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._create()

    def __repr__(self) -> str:
        return f"SQLiteLedger({self.path!r})"

    @property
    def spool_key(self) -> str:
        """Names this ledger's spool files (the same file from any process: same key)."""
        return "sqlite-" + hashlib.sha256(os.path.realpath(self.path).encode()).hexdigest()[:16]

    @_mapped
    def _create(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            if "record_id" not in {row[1] for row in conn.execute("PRAGMA table_info(records)")}:
                conn.execute("ALTER TABLE records ADD COLUMN record_id TEXT")
            conn.execute(_RECORD_ID)
            add_shadow_columns(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        conn = self._sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        local.conn, local.pid = conn, os.getpid()
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _write(self, items: Sequence[tuple[UsageRecord | None, str | None]]) -> None:
        """One transaction: insert each record and its aggregates, delete each reservation."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for r, reservation_id in items:
                if r is not None:
                    self._insert(conn, r)
                if reservation_id is not None:
                    conn.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _insert(conn: sqlite3.Connection, r: UsageRecord) -> None:
        day = day_of(r.ts)
        units = 0 if r.cost is None else to_units(r.cost)
        if conn.execute(_INSERT, _row(r, day, units)).rowcount == 0:
            return  # already counted
        neurons = r.neurons or 0.0
        if units:
            rows = [(scope, day, units, 0.0) for scope in scopes_of(r.user, r.provider)]
            rows[0] = ("g", day, units, neurons)
            conn.executemany(_UPSERT_SPEND, rows)
        elif neurons:
            conn.execute(_UPSERT_SPEND, ("g", day, 0, neurons))

    # -- Ledger ----------------------------------------------------------------------------
    @_mapped
    def add(self, record: UsageRecord) -> None:
        self._write([(record, None)])

    @_mapped
    def records(self, *, since: float | None = None) -> list[UsageRecord]:
        conn = self._conn()
        if since is None:
            rows = conn.execute(_SELECT + " ORDER BY ts, id").fetchall()
        else:
            rows = conn.execute(_SELECT + " WHERE ts >= ? ORDER BY ts, id", (since,)).fetchall()
        return [_record(row) for row in rows]

    @_mapped
    def spent(self, *, since: float, user: str | None = None, provider: str | None = None) -> Decimal:
        first, aligned = split_since(since)
        conn = self._conn()
        units = self._spent_units(conn, scope_key(user, provider), first if aligned else first + 1)
        if not aligned:  # the part of the first day after `since`, from the records
            sql = "SELECT COALESCE(SUM(cost_units), 0) FROM records WHERE ts >= ? AND ts < ?"
            params: list[Any] = [since, (first + 1) * DAY_S]
            if user is not None:
                sql, params = sql + " AND user_id = ?", [*params, user]
            if provider is not None:
                sql, params = sql + " AND provider = ?", [*params, provider]
            units += conn.execute(sql, params).fetchone()[0]
        return from_units(units)

    @staticmethod
    def _spent_units(conn: sqlite3.Connection, scope: str, first_day: int) -> int:
        row = conn.execute("SELECT COALESCE(SUM(units), 0) FROM spend WHERE scope = ? AND day >= ?", (scope, first_day))
        return int(row.fetchone()[0])

    @_mapped
    def neurons(self, *, since: float) -> float:
        first, aligned = split_since(since)
        conn = self._conn()
        start = first if aligned else first + 1
        sql = "SELECT COALESCE(SUM(neurons), 0) FROM spend WHERE scope = 'g' AND day >= ?"
        total = conn.execute(sql, (start,)).fetchone()[0]
        if not aligned:
            sql = "SELECT COALESCE(SUM(neurons), 0) FROM records WHERE ts >= ? AND ts < ?"
            total += conn.execute(sql, (since, (first + 1) * DAY_S)).fetchone()[0]
        return float(total)

    def close(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except self._sqlite3.Error:
                pass
        self._local = threading.local()

    # -- BudgetStore -----------------------------------------------------------------------
    @_mapped
    def try_reserve(
        self, checks: Sequence[SpendCheck], amount: Decimal, scopes: tuple[str, ...], *, now: float, ttl: float
    ) -> str | Rejection:
        conn = self._conn()
        amount_units = to_units(amount, rounding="up")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM reservations WHERE expires <= ?", (now,))
            live = [(u, json.loads(s)) for u, s in conn.execute("SELECT units, scopes FROM reservations")]
            for i, check in enumerate(checks):
                spent = self._spent_units(conn, check.scope, check.since_day)
                reserved = sum(u for u, sc in live if check.scope in sc)
                if spent + reserved + amount_units > to_units(check.limit, rounding="down"):
                    conn.execute("ROLLBACK")
                    return Rejection(i, from_units(spent), from_units(reserved))
            rid = new_reservation_id()
            conn.execute(
                "INSERT INTO reservations (id, units, scopes, expires) VALUES (?, ?, ?, ?)",
                (rid, amount_units, json.dumps(scopes), now + ttl),
            )
            conn.execute("COMMIT")
            return rid
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @_mapped
    def settle(self, record: UsageRecord, reservation_id: str | None) -> None:
        self._write([(record, reservation_id)])

    @_mapped
    def settle_many(self, items: Sequence[tuple[UsageRecord, str | None]]) -> None:
        """:meth:`settle` for each ``(record, reservation id)``, in order, in one transaction."""
        self._write(items)

    @_mapped
    def release_reservation(self, reservation_id: str) -> None:
        self._write([(None, reservation_id)])

    @_mapped
    def renew_reservations(self, reservation_ids: Sequence[str], *, expires: float) -> int:
        if not reservation_ids:
            return 0
        conn = self._conn()
        marks = ", ".join("?" * len(reservation_ids))
        cur = conn.execute(f"UPDATE reservations SET expires = ? WHERE id IN ({marks})", (expires, *reservation_ids))
        return int(cur.rowcount)

    @_mapped
    def mark_alert(self, key: str, *, expires: float) -> bool:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute("INSERT OR IGNORE INTO alerts (key, expires) VALUES (?, ?)", (key, expires))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return cur.rowcount == 1


__all__ = ["SQLiteLedger"]
