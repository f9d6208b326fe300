"""CloudflareEmbeddings(cache=...): the second run of the same 1,000 texts sends 0 requests and the cost callback
shows $0 (memory, SQLite, Redis; sync and async; one route and a fallback chain; from the setting too); and
LangChain's own CacheBackedEmbeddings over a LocalFileStore works with our namespace helper."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _embed_cache import BACKENDS, cache_url, embed_requests, redis_url
from langchain_classic.embeddings import CacheBackedEmbeddings
from langchain_classic.storage import LocalFileStore
from langchain_classic.storage.exceptions import InvalidKeyException

from cfgateway import ConfigError
from cfgateway.cache import MemoryEmbeddingCache, namespace
from cfgateway.emulator.config import Fault
from langchain_cfgateway import CloudflareEmbeddings, get_cloudflare_callback

BGE = "@cf/baai/bge-base-en-v1.5"
TEXTS = [f"chunk {i} of a document re-embedded by every deploy" for i in range(1000)]


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    with redis_url() as url:
        yield url


def documents(emb: CloudflareEmbeddings, texts: list[str], run_async: bool) -> list[list[float]]:
    return asyncio.run(emb.aembed_documents(texts)) if run_async else emb.embed_documents(texts)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("run_async", [False, True])
@pytest.mark.parametrize("chain", [False, True])
def test_second_run_sends_nothing(
    kind: str, run_async: bool, chain: bool, conn: Any, emu: Any, tmp_path: Path, redis: str
) -> None:
    extra: dict[str, Any] = {"fallbacks": ["@cf/baai/bge-large-en-v1.5"], "model": "@cf/baai/bge-m3"} if chain else {
        "model": BGE}
    emb = CloudflareEmbeddings(cache=cache_url(kind, tmp_path, redis), **extra, **conn(max_retries=0))
    with get_cloudflare_callback() as first_cb:
        first = documents(emb, TEXTS, run_async)
    assert len(embed_requests(emu)) == 10 and first_cb.embedding_requests == 10 and first_cb.total_cost > 0
    with get_cloudflare_callback() as cb:
        second = documents(emb, TEXTS, run_async)
    assert len(embed_requests(emu)) == 10 and second == first  # 0 requests on the second run
    assert cb.embedding_requests == 0 and cb.embedding_tokens == 0 and cb.total_tokens == 0
    assert cb.total_cost == cb.embedding_cost == Decimal(0) and cb.embedding_cache_hits == 1000
    # a new instance on the same (non-memory) store starts warm
    if kind != "memory":
        again = CloudflareEmbeddings(cache=emb.cache, **extra, **conn(max_retries=0))
        assert documents(again, TEXTS[:5], run_async) == first[:5] and len(embed_requests(emu)) == 10


def test_fallback_answers_are_cached_under_the_fallback(conn: Any, emu: Any) -> None:
    cache = MemoryEmbeddingCache()
    emb = CloudflareEmbeddings(model="@cf/baai/bge-m3", fallbacks=["@cf/baai/bge-large-en-v1.5"], cache=cache,
                               **conn(max_retries=0))
    emu.state.add_fault(Fault("*bge-m3", "error", status=500))
    first = emb.embed_documents(TEXTS[:20])
    assert len(cache) == 20
    emu.state.clear()
    emu.state.add_fault(Fault("*bge-m3", "error", status=500))
    with get_cloudflare_callback() as cb:
        assert emb.embed_documents(TEXTS[:20]) == first
    # the primary was tried (and failed: it has no entries of its own), the fallback answered from the cache
    assert [r.path.rsplit("/", 1)[-1] for r in embed_requests(emu)] == ["bge-m3"]
    assert cb.embedding_cache_hits == 20 and cb.total_cost == 0


def test_the_setting_names_the_cache(conn: Any, emu: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CFGATEWAY_EMBED_CACHE", f"sqlite:///{tmp_path}/lc-setting.db")
    emb = CloudflareEmbeddings(model=BGE, **conn())
    assert emb.cache is None  # not given: the client takes the setting
    vector = emb.embed_query("from the setting")
    assert CloudflareEmbeddings(model=BGE, **conn()).embed_query("from the setting") == vector
    assert len(embed_requests(emu)) == 1
    assert CloudflareEmbeddings(model=BGE, cache=False, **conn()).embed_query("from the setting") == vector
    assert len(embed_requests(emu)) == 2  # cache=False: no cache, even with the setting


def test_a_bad_cache_is_refused_at_construction_and_never_shown(conn: Any) -> None:
    with pytest.raises(ConfigError, match="unknown embedding cache URL"):
        CloudflareEmbeddings(model=BGE, cache="ftp://x", **conn())
    with pytest.raises(ConfigError, match="embed cache must be a URL"):
        CloudflareEmbeddings(model=BGE, cache=42, **conn())
    emb = CloudflareEmbeddings(model=BGE, cache="redis://:pw-not-shown@127.0.0.1:1/0", **conn())
    assert "pw-not-shown" not in repr(emb) and "pw-not-shown" not in str(emb.model_dump())


def test_cache_backed_embeddings_with_our_namespace(conn: Any, emu: Any, tmp_path: Path) -> None:
    emb = CloudflareEmbeddings(model=BGE, **conn())
    # what a new user tries first: the model string as the namespace; LocalFileStore refuses its "@"
    raw = CacheBackedEmbeddings.from_bytes_store(emb, LocalFileStore(tmp_path / "raw"), namespace=emb.model,
                                                 key_encoder="sha256")
    with pytest.raises(InvalidKeyException):
        raw.embed_documents(["hello"])
    store = tmp_path / "store"
    ns = emb.cache_namespace()
    assert ns == namespace(BGE) and "@" not in ns and "/" not in ns
    for run in range(2):
        emu.state.clear()
        cached = CacheBackedEmbeddings.from_bytes_store(
            CloudflareEmbeddings(model=BGE, **conn()), LocalFileStore(store), namespace=ns, key_encoder="sha256")
        vectors = cached.embed_documents(TEXTS[:300])
        assert len(vectors) == 300 and len(vectors[0]) == 768
        assert len(embed_requests(emu)) == (3 if run == 0 else 0)
    emu.state.clear()
    async_cached = CacheBackedEmbeddings.from_bytes_store(emb, LocalFileStore(store), namespace=ns,
                                                          key_encoder="sha256")
    assert asyncio.run(async_cached.aembed_documents(TEXTS[:300])) == vectors and embed_requests(emu) == []
    files = [p.name for p in store.iterdir()]
    assert len(files) == 300 and all(f.startswith(ns) for f in files)


def test_namespaces_differ_by_size_and_pooling(conn: Any) -> None:
    names = {CloudflareEmbeddings(model=BGE, **conn()).cache_namespace(),
             CloudflareEmbeddings(model=BGE, pooling="cls", **conn()).cache_namespace(),
             CloudflareEmbeddings(model="openai/text-embedding-3-small", dimensions=256, **conn(gateway=True)
                                  ).cache_namespace(),
             CloudflareEmbeddings(model="openai/text-embedding-3-small", **conn(gateway=True)).cache_namespace()}
    assert len(names) == 4


def test_memory_url_is_shared_by_instances_of_a_process(conn: Any, emu: Any) -> None:
    url = f"memory://lc-{uuid.uuid4().hex[:8]}"
    CloudflareEmbeddings(model=BGE, cache=url, **conn()).embed_documents(TEXTS[:3])
    CloudflareEmbeddings(model=BGE, cache=url, **conn()).embed_documents(TEXTS[:3])
    assert len(embed_requests(emu)) == 1
