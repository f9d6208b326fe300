"""The embedding caches themselves (memory, SQLite, a real redis-server): stored vectors come back exactly,
in order; keys keep models, sizes and pooling apart; URLs open the right backend and never print a password."""

from __future__ import annotations

import logging
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _embed_cache import BACKENDS, make_cache, redis_url

from cfgateway import ConfigError
from cfgateway.cache import (
    CacheGuard,
    KeySpace,
    MemoryEmbeddingCache,
    RedisEmbeddingCache,
    SQLiteEmbeddingCache,
    decode_vector,
    encode_vector,
    namespace,
    open_embedding_cache,
    resolve_embed_cache,
    shared_embedding_cache,
)


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    with redis_url() as url:
        yield url


def vec(n: int = 768, seed: int = 0) -> list[float]:
    rnd = random.Random(seed)
    return [rnd.uniform(-1, 1) for _ in range(n)]


@pytest.mark.parametrize("kind", BACKENDS)
def test_vectors_come_back_exactly_in_key_order(kind: str, tmp_path: Path, redis: str) -> None:
    cache = make_cache(kind, tmp_path, redis)
    space = KeySpace("@cf/baai/bge-base-en-v1.5")
    keys = space.keys([f"text {i}" for i in range(1200)])  # more than one Redis MGET / SQLite SELECT chunk
    vectors = [vec(seed=i) for i in range(1200)]
    assert cache.get_many(keys) == [None] * 1200
    cache.put_many(list(zip(keys[::2], vectors[::2], strict=True)))
    got = cache.get_many(list(reversed(keys)))
    expected = [vectors[i] if i % 2 == 0 else None for i in reversed(range(1200))]
    assert got == expected  # float64: bit-for-bit the floats that were stored
    cache.put_many([(keys[1], [0.5, -0.25])])  # a key's entry is replaced
    assert cache.get_many([keys[1]]) == [[0.5, -0.25]]
    cache.close()


@pytest.mark.parametrize("kind", BACKENDS)
def test_float32_halves_the_entry_and_stays_close(kind: str, tmp_path: Path, redis: str) -> None:
    url = {"memory": "memory://?dtype=float32", "sqlite": f"sqlite:///{tmp_path}/f32.db?dtype=float32",
           "redis": f"{redis}?dtype=float32&prefix=f32{time.time_ns()}"}[kind]
    cache = open_embedding_cache(url)
    v = vec(seed=3)
    cache.put_many([("ab" * 32, v)])
    (got,) = cache.get_many(["ab" * 32])
    assert got is not None and got != v and max(abs(a - b) for a, b in zip(got, v, strict=True)) < 1e-6
    assert len(encode_vector(v, "float32")) == 1 + 4 * 768 and len(encode_vector(v)) == 1 + 8 * 768


def test_stored_form_is_checked() -> None:
    v = [0.1, -2.5, 3e-8]
    assert decode_vector(encode_vector(v)) == v
    for bad in (b"", b"x" + bytes(8), b"d" + bytes(7), b"d"):
        with pytest.raises(ValueError):
            decode_vector(bad)


def test_memory_lru_by_entries_and_by_bytes() -> None:
    cache = MemoryEmbeddingCache(max_entries=3, max_bytes=None)
    cache.put_many([("a", [1.0]), ("b", [2.0]), ("c", [3.0])])
    cache.get_many(["a"])  # a is now the most recently used
    cache.put_many([("d", [4.0])])
    assert cache.get_many(["a", "b", "c", "d"]) == [[1.0], None, [3.0], [4.0]] and cache.evictions == 1
    small = MemoryEmbeddingCache(max_bytes=20_000)  # room for three 768-dim float64 vectors (~6.3 KB each)
    small.put_many([(f"k{i}", vec(seed=i)) for i in range(10)])
    assert len(small) == 3 and small.nbytes <= 20_000
    assert small.get_many(["k9", "k0"]) == [vec(seed=9), None]
    with pytest.raises(ConfigError, match="max_entries"):
        MemoryEmbeddingCache(max_entries=0)


def test_a_returned_vector_is_a_copy() -> None:
    cache = MemoryEmbeddingCache()
    cache.put_many([("k", [1.0, 2.0])])
    (got,) = cache.get_many(["k"])
    assert got is not None
    got[0] = 99.0
    assert cache.get_many(["k"]) == [[1.0, 2.0]]


def test_keys_keep_every_field_apart() -> None:
    base = KeySpace("@cf/baai/bge-base-en-v1.5")
    others = [KeySpace("@cf/baai/bge-large-en-v1.5"), KeySpace("@cf/baai/bge-base-en-v1.5", 256),
              KeySpace("@cf/baai/bge-base-en-v1.5", pooling="cls"), KeySpace("@cf/baai/bge-base-en-v1.5", pooling="mean")]
    keys = {base.key("hello")} | {s.key("hello") for s in others}
    assert len(keys) == 5
    assert base.key("hello") != base.key("hello ") != base.key("Hello")
    assert base.keys(["a", "b"]) == [base.key("a"), base.key("b")]
    assert re.fullmatch("[0-9a-f]{64}", base.key("a"))
    # stable across processes and versions of Python: a fixed input has a fixed key
    assert KeySpace("m").key("t") == KeySpace("m").key("t")
    out = subprocess.run([sys.executable, "-c", "from cfgateway.cache import KeySpace; print(KeySpace('m').key('t'))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == KeySpace("m").key("t")


def test_namespace_is_key_safe_and_distinct() -> None:
    names = [namespace("@cf/baai/bge-base-en-v1.5"), namespace("@cf/baai/bge-base-en-v1.5", 256),
             namespace("@cf/baai/bge-base-en-v1.5", pooling="cls"), namespace("cf/baai/bge-base-en-v1.5"),
             namespace("custom-deepinfra/Qwen/Qwen3-Embedding-8B", 1024), namespace("openai/text-embedding-3-small")]
    assert len(set(names)) == len(names)  # "@cf/x" and "cf/x" read the same once @ and / go; the hash differs
    for n in names:
        assert re.fullmatch(r"[A-Za-z0-9._-]+", n), n
    assert names[0].startswith("cf-baai-bge-base-en-v1.5.native.")
    assert names[1].startswith("cf-baai-bge-base-en-v1.5.d256.")
    assert namespace("@cf/baai/bge-base-en-v1.5") == names[0]  # deterministic
    with pytest.raises(ConfigError, match="dimensions"):
        namespace("m", 0)


def test_open_urls(tmp_path: Path, redis: str) -> None:
    assert isinstance(open_embedding_cache("memory://"), MemoryEmbeddingCache)
    m = open_embedding_cache("memory://?max_entries=5&max_bytes=1000")
    assert isinstance(m, MemoryEmbeddingCache) and m.max_entries == 5 and m.max_bytes == 1000
    s = open_embedding_cache(f"sqlite:///{tmp_path}/sub/e.db")
    assert isinstance(s, SQLiteEmbeddingCache) and s.path == f"{tmp_path}/sub/e.db"
    assert not Path(s.path).exists()  # opened on first use
    assert s.get_many(["ab"]) == [None] and Path(s.path).exists()
    r = open_embedding_cache(f"{redis}?ttl=60&prefix=pfx")
    assert isinstance(r, RedisEmbeddingCache) and r.ttl == 60 and r.prefix == "pfx" and "?" not in r.url
    for bad, words in [("ftp://x", "unknown embedding cache URL"), ("sqlite://", "no file path"),
                       ("memory://?ttl=5", "memory takes: max_entries"), ("memory://?max_entries=x", "whole number"),
                       ("sqlite:///a.db?dtype=float16", "dtype"), ("", "URL is needed")]:
        with pytest.raises(ConfigError, match=words):
            open_embedding_cache(bad)
    assert shared_embedding_cache("memory://shared-test") is shared_embedding_cache("memory://shared-test")
    assert shared_embedding_cache("memory://shared-test") is not shared_embedding_cache("memory://other-test")


def test_resolve_arguments(tmp_path: Path) -> None:
    cache = MemoryEmbeddingCache()
    assert resolve_embed_cache(False, "memory://") is None
    assert resolve_embed_cache(None, None) is None
    guard = resolve_embed_cache(cache)
    assert isinstance(guard, CacheGuard) and guard.cache is cache and resolve_embed_cache(cache) is guard
    assert resolve_embed_cache(None, "memory://resolve-test") is resolve_embed_cache("memory://resolve-test")
    for bad in (True, 3, object(), MemoryEmbeddingCache):
        with pytest.raises(ConfigError, match="embed cache must be a URL"):
            resolve_embed_cache(bad)


def test_redis_ttl_and_prefix(redis: str) -> None:
    cache = RedisEmbeddingCache(redis, prefix="ttl-test", ttl=100)
    cache.put_many([("k1", [1.0]), ("k2", [2.0])])
    assert 0 < cache.redis.ttl("ttl-test:k1") <= 100
    assert sorted(cache.redis.keys("ttl-test:*")) == [b"ttl-test:k1", b"ttl-test:k2"]
    cache.clear()
    assert cache.redis.keys("ttl-test:*") == [] and cache.get_many(["k1"]) == [None]
    with pytest.raises(ConfigError, match="ttl"):
        RedisEmbeddingCache(redis, ttl=0)


def test_sqlite_is_shared_between_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SQLiteEmbeddingCache(path).put_many([("aa" * 32, [1.5, 2.5])])
    code = (f"from cfgateway.cache import SQLiteEmbeddingCache as S; c = S({str(path)!r}); "
            f"print(c.get_many(['{'aa' * 32}', '{'bb' * 32}'])); c.put_many([('{'cc' * 32}', [3.0])])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[[1.5, 2.5], None]"
    assert SQLiteEmbeddingCache(path).get_many(["cc" * 32]) == [[3.0]]


def test_a_password_is_never_printed(caplog: pytest.LogCaptureFixture) -> None:
    url = "redis://:hunter2secret@127.0.0.1:1/0"
    cache = open_embedding_cache(url)
    assert "hunter2secret" not in repr(cache) and "***" in repr(cache)
    guard = CacheGuard(cache)
    with caplog.at_level(logging.DEBUG, logger="cfgateway.cache"):
        assert guard.get_many(["k"]) == [None]  # port 1: refused
    assert "hunter2secret" not in caplog.text and "failed while reading" in caplog.text
    with pytest.raises(ConfigError) as err:
        open_embedding_cache("redis://:hunter2secret@host/0?bogus=1&dtype=x")
    assert "hunter2secret" not in str(err.value)
    with pytest.raises(ConfigError) as err2:
        open_embedding_cache("bogus://:hunter2secret@host/0")
    assert "hunter2secret" not in str(err2.value)


def test_importing_the_cache_loads_neither_sqlite3_nor_redis() -> None:
    code = "import sys, cfgateway.cache, cfgateway.client; print([m for m in ('sqlite3', 'redis') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
