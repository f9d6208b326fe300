"""CloudflareEmbedding(cache=...): the second run of the same 1,000 texts sends 0 requests and the cost handler
shows $0 (memory, SQLite, Redis; sync and async; one route and a fallback chain); an IngestionPipeline with
LlamaIndex's own IngestionCache sends 0 embedding requests on its second run."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _embed_cache import BACKENDS, cache_url, embed_requests, redis_url
from llama_index.core import Document
from llama_index.core.callbacks import CallbackManager
from llama_index.core.ingestion import IngestionCache, IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter

from cfgateway import ConfigError
from cfgateway.cache import MemoryEmbeddingCache, namespace
from llama_index_cfgateway import CloudflareCostHandler, CloudflareEmbedding

BGE = "@cf/baai/bge-base-en-v1.5"
TEXTS = [f"node {i}: a paragraph an ingestion job embeds again on every run" for i in range(1000)]


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    with redis_url() as url:
        yield url


def batch(emb: CloudflareEmbedding, texts: list[str], run_async: bool) -> list[list[float]]:
    if run_async:
        return asyncio.run(emb.aget_text_embedding_batch(texts))
    return emb.get_text_embedding_batch(texts)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("run_async", [False, True])
@pytest.mark.parametrize("chain", [False, True])
def test_second_run_sends_nothing(
    kind: str, run_async: bool, chain: bool, conn: Any, emu: Any, tmp_path: Path, redis: str
) -> None:
    extra: dict[str, Any] = {"model_name": "@cf/baai/bge-m3", "fallbacks": ["@cf/baai/bge-large-en-v1.5"]} if chain \
        else {"model_name": BGE}
    handler = CloudflareCostHandler()
    emb = CloudflareEmbedding(cache=cache_url(kind, tmp_path, redis), callback_manager=CallbackManager([handler]),
                              **extra, **conn(max_retries=0))
    first = batch(emb, TEXTS, run_async)
    assert len(embed_requests(emu)) == 10 and handler.embedding_requests == 10
    paid = handler.total_cost
    assert paid > 0
    handler.reset()
    second = batch(emb, TEXTS, run_async)
    assert len(embed_requests(emu)) == 10 and second == first  # 0 requests on the second run
    assert handler.embedding_requests == 0 and handler.embedding_tokens == 0
    assert handler.total_cost == Decimal(0) and handler.embedding_cache_hits == 1000


def test_ingestion_pipeline_with_ingestion_cache(conn: Any, emu: Any) -> None:
    docs = [Document(text=t) for t in TEXTS[:200]]
    cache = IngestionCache()

    def pipeline() -> IngestionPipeline:  # a new embedding object each run: its serialised form must not vary
        return IngestionPipeline(transformations=[SentenceSplitter(chunk_size=512), CloudflareEmbedding(
            model_name=BGE, **conn())], cache=cache)

    first = pipeline().run(documents=docs)
    sent = len(embed_requests(emu))
    assert sent == 2 and all(n.embedding is not None for n in first)
    second = pipeline().run(documents=docs)
    assert len(embed_requests(emu)) == sent  # the second run sends 0 embedding requests
    assert [n.embedding for n in second] == [n.embedding for n in first]
    secret = CloudflareEmbedding(model_name=BGE, cache="redis://:pw-hidden@127.0.0.1:1/0", **conn()).to_dict()
    assert "pw-hidden" not in str(secret) and "cache" not in secret and "api_token" not in secret


def test_ingestion_pipeline_with_our_cache_alone(conn: Any, emu: Any) -> None:
    docs = [Document(text=t) for t in TEXTS[:150]]
    cache = MemoryEmbeddingCache()
    for _ in range(2):
        IngestionPipeline(transformations=[CloudflareEmbedding(model_name=BGE, cache=cache, **conn())]).run(
            documents=docs)
    assert len(embed_requests(emu)) == 2 and len(cache) == 150  # 2 batches the first time, none the second


def test_namespace_and_refusals(conn: Any) -> None:
    emb = CloudflareEmbedding(model_name=BGE, pooling="cls", **conn())
    assert emb.cache_namespace() == namespace(BGE, None, "cls")
    with pytest.raises(ConfigError, match="unknown embedding cache URL"):
        CloudflareEmbedding(model_name=BGE, cache="nope://x", **conn())


def test_a_pickled_copy_keeps_its_cache_url(conn: Any, emu: Any, tmp_path: Path) -> None:
    emb = CloudflareEmbedding(model_name=BGE, cache=f"sqlite:///{tmp_path}/pickled.db", **conn())
    vectors = emb.get_text_embedding_batch(TEXTS[:5])
    copy = pickle.loads(pickle.dumps(emb))  # what IngestionPipeline(num_workers=...) does to reach its workers
    assert copy.get_text_embedding_batch(TEXTS[:5]) == vectors and len(embed_requests(emu)) == 1
