"""An embedding cache in Redis (``redis://``, ``rediss://``, ``unix://``): shared by every host.

Each vector is one string key ``{prefix}:{hex key}`` holding its stored form; reads are ``MGET`` and
writes ``SET`` (with ``EX`` when a ``ttl`` is given), sent in pipelines of up to 1,000 keys. ``redis``
is imported only when a cache is opened. The URL's password is never printed (``redact_url``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cfgateway.cache.base import Dtype, Vector, check_dtype, decode_vector, encode_vector
from cfgateway.config import redact_url
from cfgateway.errors import ConfigError

DEFAULT_PREFIX = "cfgateway:embed"
_CHUNK = 1000


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the Redis embedding cache needs the redis package: pip install 'cfgateway[redis]'") from exc
    return redis


class RedisEmbeddingCache:
    """Vectors in Redis. ``ttl``: seconds an entry lives (``None``: until Redis evicts it, e.g. under an
    ``allkeys-lru`` policy). ``socket_timeout`` / ``connect_timeout`` bound how long a call waits on a stopped
    server before the client embeds without the cache."""

    blocking = True

    def __init__(
        self, url: str, *, prefix: str = DEFAULT_PREFIX, ttl: int | None = None, dtype: Dtype = "float64",
        socket_timeout: float = 2.0, connect_timeout: float = 1.0, max_connections: int = 50, client: Any = None,
    ) -> None:
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
            raise ConfigError(f"ttl must be a positive whole number of seconds or None, got {ttl!r}")
        if not prefix or any(c.isspace() for c in prefix):
            raise ConfigError(f"prefix must be a non-empty string without spaces, got {prefix!r}")
        self.url, self.prefix, self.ttl, self.dtype = url, prefix, ttl, check_dtype(dtype)
        if client is None:
            redis = _import_redis()
            pool = redis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=socket_timeout, socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
            )  # fmt: skip
            client = redis.Redis(connection_pool=pool)
            self._own = True
        else:
            self._own = False
        self._r = client

    def __repr__(self) -> str:
        return f"RedisEmbeddingCache({redact_url(self.url)!r}, prefix={self.prefix!r}, ttl={self.ttl})"

    @property
    def redis(self) -> Any:
        """The underlying ``redis.Redis`` client."""
        return self._r

    def _name(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        if not keys:
            return []
        pipe = self._r.pipeline(transaction=False)
        for start in range(0, len(keys), _CHUNK):
            pipe.mget([self._name(k) for k in keys[start : start + _CHUNK]])
        blobs = [b for chunk in pipe.execute() for b in chunk]
        return [None if b is None else decode_vector(bytes(b)) for b in blobs]

    def put_many(self, items: Sequence[tuple[str, Vector]]) -> None:
        for start in range(0, len(items), _CHUNK):
            pipe = self._r.pipeline(transaction=False)
            for k, v in items[start : start + _CHUNK]:
                pipe.set(self._name(k), encode_vector(v, self.dtype), ex=self.ttl)
            pipe.execute()

    def clear(self) -> None:
        """Delete every entry under this cache's prefix (``SCAN`` + ``UNLINK``)."""
        batch: list[Any] = []
        for name in self._r.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(name)
            if len(batch) >= _CHUNK:
                self._r.unlink(*batch)
                batch = []
        if batch:
            self._r.unlink(*batch)

    def close(self) -> None:
        if self._own:
            self._r.connection_pool.disconnect()


__all__ = ["DEFAULT_PREFIX", "RedisEmbeddingCache"]
