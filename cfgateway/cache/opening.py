"""From a URL (or the ``embed_cache`` setting) to an embedding cache.

- ``memory://`` (``memory://name`` for a separate one; ``?max_entries=N&max_bytes=N``) -> :class:`MemoryEmbeddingCache`
- ``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` -> :class:`SQLiteEmbeddingCache`
- ``redis://[:password@]host:port/db`` (``rediss://``, ``unix://``; ``?ttl=SECONDS&prefix=NAME``) ->
  :class:`RedisEmbeddingCache`

Every backend also takes ``dtype=float32`` (half the size; float64, exact, by default). An unknown option
or scheme is a :class:`~cfgateway.errors.ConfigError` naming the accepted ones.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cfgateway.cache.base import EmbeddingCache
from cfgateway.cache.flow import CacheGuard, guard_for
from cfgateway.cache.memory import MemoryEmbeddingCache
from cfgateway.config import redact_url
from cfgateway.errors import ConfigError

_SQLITE = "sqlite://"
_REDIS = ("redis://", "rediss://", "unix://")
_OURS = {"memory": ("max_entries", "max_bytes", "dtype"), "sqlite": ("dtype",), "redis": ("ttl", "prefix", "dtype")}
_INTS = ("max_entries", "max_bytes", "ttl")
_SHARED: dict[str, EmbeddingCache] = {}
_SHARED_LOCK = threading.Lock()


def _options(url: str, kind: str, *, keep_others: bool = False) -> tuple[dict[str, Any], str]:
    """Our options from the URL's query, and the URL without them (Redis keeps its own, e.g. ``ssl_cert_reqs``)."""
    base, _, query = url.partition("?")
    ours: dict[str, Any] = {}
    others = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in _OURS[kind]:
            if name in _INTS:
                try:
                    ours[name] = int(value)
                except ValueError:
                    raise ConfigError(f"embedding cache URL option {name}={value!r} is not a whole number") from None
            else:
                ours[name] = value
        elif keep_others:
            others.append((name, value))
        else:
            raise ConfigError(f"unknown option {name!r} in embedding cache URL {redact_url(url)!r}; "
                              f"{kind} takes: {', '.join(_OURS[kind])}")
    return ours, base + ("?" + urlencode(others) if others else "")


def open_embedding_cache(url: str) -> EmbeddingCache:
    """A new cache for ``url`` (see the module docstring). ``sqlite3`` / ``redis`` load only when named."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("an embedding cache URL is needed: memory://, sqlite:///path.db or redis://host:port/db")
    url = url.strip()
    if url == "memory" or url.startswith("memory://"):
        opts, _ = _options(url, "memory")
        return MemoryEmbeddingCache(**opts)
    if url.startswith(_SQLITE):
        opts, bare = _options(url, "sqlite")
        path = bare[len(_SQLITE) :]
        path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db
        if not path or path == ":memory:":
            raise ConfigError(f"embedding cache URL {url!r} has no file path: use sqlite:///cache.db (relative) "
                              "or sqlite:////abs/cache.db")
        from cfgateway.cache.sqlite_cache import SQLiteEmbeddingCache

        return SQLiteEmbeddingCache(path, **opts)
    if url.startswith(_REDIS):
        opts, bare = _options(url, "redis", keep_others=True)
        from cfgateway.cache.redis_cache import RedisEmbeddingCache

        return RedisEmbeddingCache(bare, **opts)
    raise ConfigError(f"unknown embedding cache URL {redact_url(url)!r}: use memory://, sqlite:///path.db or "
                      "redis://host:port/db (CFGATEWAY_EMBED_CACHE / embed_cache= setting)")


def shared_embedding_cache(url: str) -> EmbeddingCache:
    """The process's one cache for ``url`` (opened on first use): what clients given a URL string, or the
    ``embed_cache`` setting, use, so every client of a process shares ``memory://`` and one Redis pool."""
    key = url.strip() if isinstance(url, str) else url
    with _SHARED_LOCK:
        cache = _SHARED.get(key)
        if cache is None:
            cache = _SHARED[key] = open_embedding_cache(key)
        return cache


def resolve_embed_cache(value: Any, configured: str | None = None) -> CacheGuard | None:
    """What a client's ``embed_cache=`` (or a call's ``cache=``) means: ``False`` no cache; ``None`` the
    ``embed_cache`` setting (``configured``), if any; a URL the process's shared cache for it; a cache object
    (anything with ``get_many`` / ``put_many`` / ``close``) itself. Wrapped in its :class:`CacheGuard`."""
    if value is False:
        return None
    if value is None:
        return guard_for(shared_embedding_cache(configured)) if configured else None
    if isinstance(value, str):
        return guard_for(shared_embedding_cache(value))
    if isinstance(value, CacheGuard | EmbeddingCache) and not isinstance(value, type):
        return guard_for(value)
    raise ConfigError(
        f"embed cache must be a URL (memory://, sqlite:///path.db, redis://host:port/db), an object with "
        f"get_many/put_many/close, None (the embed_cache setting) or False (none), not {type(value).__name__}"
    )


__all__ = ["open_embedding_cache", "resolve_embed_cache", "shared_embedding_cache"]
