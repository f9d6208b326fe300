"""Embedding caches (layer 4): a text embedded once is not sent again.

>>> from cfgateway import Client
>>> client = Client("@cf/baai/bge-base-en-v1.5", embed_cache="sqlite:///embeddings.db")   # doctest: +SKIP
>>> client.embed(texts).cached          # second run: every input from the cache, 0 requests, $0  # doctest: +SKIP

- :class:`EmbeddingCache`: the protocol (``get_many``, ``put_many``, ``close``); backends
  :class:`MemoryEmbeddingCache` (bounded LRU), :class:`SQLiteEmbeddingCache` (one machine),
  :class:`RedisEmbeddingCache` (every host; optional TTL); :func:`open_embedding_cache` opens one from a URL
  (``memory://``, ``sqlite:///path.db``, ``redis://host:port/db``: the ledger's URL style). ``sqlite3`` and
  ``redis`` are imported only when such a cache is opened.
- :class:`KeySpace`: the keys, a hash of (model string of the answering route, dimensions or native,
  pooling, text); see :mod:`cfgateway.cache.base` for why each field is there.
- :func:`namespace`: a key-safe name (letters, digits, ``-``, ``_``, ``.``) for LangChain's
  ``CacheBackedEmbeddings`` and LlamaIndex's ``IngestionCache``.
- :mod:`cfgateway.cache.flow`: how a client uses a cache (misses only are sent; a broken cache never fails a
  call; hits are booked at $0). Clients take ``embed_cache=`` (or the ``embed_cache`` setting,
  ``CFGATEWAY_EMBED_CACHE``); see docs/embedding-cache.md.
"""

from cfgateway.cache.base import EmbeddingCache, KeySpace, Vector, decode_vector, encode_vector, namespace
from cfgateway.cache.flow import HITS_TAG, MISSES_TAG, CacheGuard, is_cache_record
from cfgateway.cache.memory import MemoryEmbeddingCache
from cfgateway.cache.opening import open_embedding_cache, resolve_embed_cache, shared_embedding_cache
from cfgateway.cache.redis_cache import RedisEmbeddingCache
from cfgateway.cache.sqlite_cache import SQLiteEmbeddingCache

__all__ = [
    "HITS_TAG",
    "MISSES_TAG",
    "CacheGuard",
    "EmbeddingCache",
    "KeySpace",
    "MemoryEmbeddingCache",
    "RedisEmbeddingCache",
    "SQLiteEmbeddingCache",
    "Vector",
    "decode_vector",
    "encode_vector",
    "is_cache_record",
    "namespace",
    "open_embedding_cache",
    "resolve_embed_cache",
    "shared_embedding_cache",
]
