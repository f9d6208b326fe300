"""An in-process embedding cache: a bounded LRU of stored vectors (bytes, not lists of Python floats)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from cfgateway.cache.base import Dtype, Vector, check_dtype, decode_vector, encode_vector
from cfgateway.errors import ConfigError

DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # ~43,000 768-dim vectors as float64
_KEY_OVERHEAD = 64 + 100  # the hex key and the dict/OrderedDict slot, roughly


class MemoryEmbeddingCache:
    """A least-recently-used cache in this process, bounded by ``max_bytes`` (default 256 MiB) and/or
    ``max_entries``; thread-safe. Vectors are kept in their stored form (6 KB per 768-dim float64 vector,
    a quarter of a list of Python floats) and a fresh list is returned on every hit."""

    blocking = False  # an async client calls it directly (no thread)

    def __init__(self, *, max_entries: int | None = None, max_bytes: int | None = DEFAULT_MAX_BYTES,
                 dtype: Dtype = "float64") -> None:
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive whole number or None, got {value!r}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.dtype = check_dtype(dtype)
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.evictions = 0

    def __repr__(self) -> str:
        return (f"MemoryEmbeddingCache(entries={len(self._data)}, bytes={self._bytes}, "
                f"max_entries={self.max_entries}, max_bytes={self.max_bytes})")

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        """Bytes held (stored vectors plus an estimate per key)."""
        return self._bytes

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        out: list[Vector | None] = []
        with self._lock:
            blobs = []
            for k in keys:
                blob = self._data.get(k)
                if blob is not None:
                    self._data.move_to_end(k)
                blobs.append(blob)
        for blob in blobs:
            out.append(None if blob is None else decode_vector(blob))
        return out

    def put_many(self, items: Sequence[tuple[str, Vector]]) -> None:
        encoded = [(k, encode_vector(v, self.dtype)) for k, v in items]
        with self._lock:
            for k, blob in encoded:
                old = self._data.pop(k, None)
                if old is not None:
                    self._bytes -= len(old) + _KEY_OVERHEAD
                self._data[k] = blob
                self._bytes += len(blob) + _KEY_OVERHEAD
            self._evict()

    def _evict(self) -> None:
        while self._data and (
            (self.max_entries is not None and len(self._data) > self.max_entries)
            or (self.max_bytes is not None and self._bytes > self.max_bytes)
        ):
            _, blob = self._data.popitem(last=False)
            self._bytes -= len(blob) + _KEY_OVERHEAD
            self.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def close(self) -> None:
        """Nothing to release (the entries stay: a memory cache lives as long as the object)."""


__all__ = ["DEFAULT_MAX_BYTES", "MemoryEmbeddingCache"]
