"""An embedding cache in one SQLite file: one machine, many threads and processes.

One table ``embeddings(key BLOB PRIMARY KEY, vector BLOB, created REAL)``; the key is the 32-byte digest of
the hex key, the vector is its stored form (:func:`cfgateway.cache.base.encode_vector`). WAL mode, one
connection per thread (and per process). ``sqlite3`` is imported only when a cache is opened.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfgateway.cache.base import Dtype, Vector, check_dtype, decode_vector, encode_vector

if TYPE_CHECKING:
    import sqlite3

_SCHEMA = ("CREATE TABLE IF NOT EXISTS embeddings (key BLOB PRIMARY KEY, vector BLOB NOT NULL, created REAL NOT NULL)"
           " WITHOUT ROWID")
_CHUNK = 500  # bound variables per SELECT (SQLite before 3.32 allows 999)


class SQLiteEmbeddingCache:
    """Vectors in a SQLite file (created with its parent folders when missing). Entries never expire;
    :meth:`clear` empties the file's table."""

    blocking = True

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0, dtype: Dtype = "float64") -> None:
        import sqlite3  # lazy: keeps `import cfgateway` fast

        self._sqlite3 = sqlite3
        self.path = str(path)
        if self.path in ("", ":memory:"):
            raise ValueError("SQLiteEmbeddingCache needs a file path (each thread has its own connection)")
        self.timeout = timeout
        self.dtype = check_dtype(dtype)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # The file is opened on first use: a file that cannot be used then fails that read or write (which the
        # client logs and embeds without), never the construction of a client.

    def __repr__(self) -> str:
        return f"SQLiteEmbeddingCache({self.path!r})"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = self._sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                         check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._conns.append(conn)
        return conn

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        conn = self._conn()
        raw = [bytes.fromhex(k) for k in keys]
        found: dict[bytes, Any] = {}
        for start in range(0, len(raw), _CHUNK):
            chunk = raw[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(conn.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk))
        return [None if (blob := found.get(k)) is None else decode_vector(blob) for k in raw]

    def put_many(self, items: Sequence[tuple[str, Vector]]) -> None:
        now = time.time()
        rows = [(bytes.fromhex(k), encode_vector(v, self.dtype), now) for k, v in items]
        if not rows:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO embeddings (key, vector, created) VALUES (?, ?, ?)", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def clear(self) -> None:
        self._conn().execute("DELETE FROM embeddings")

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


__all__ = ["SQLiteEmbeddingCache"]
