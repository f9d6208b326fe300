"""The embedding cache through the core clients and a fallback chain, against the emulator's request log:
the second run of the same 1,000 texts sends 0 requests and costs $0 in the ledger (memory, SQLite and Redis,
sync and async); partial hits send only the misses, in order; sizes, pooling and models never share entries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _embed_cache import BACKENDS, embed_requests, make_cache, redis_url, sent_texts
from _emu import emulator_fixtures

from cfgateway import AsyncClient, Client, CostTracker, build_client
from cfgateway.cache import HITS_TAG, MISSES_TAG, KeySpace, MemoryEmbeddingCache, SQLiteEmbeddingCache
from cfgateway.costs.ledger import MemoryLedger, RedisLedger, SQLiteLedger
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer

BGE = "@cf/baai/bge-base-en-v1.5"
TEXTS = [f"passage {i} about caching embeddings on Cloudflare" for i in range(1000)]


server, emu = emulator_fixtures(EmulatorConfig(api_token="tok", gateways={"gw": GatewayConfig(auth_token="gw-tok")}))


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    with redis_url() as url:
        yield url


def conn(emu: EmulatorServer, **extra: Any) -> dict[str, Any]:
    return {"account_id": "acct", "api_token": "tok", "base_url": emu.base_url, "endpoint": "direct",
            "max_retries": 0, **extra}


def ledger_of(kind: str, tmp_path: Path, redis: str) -> Any:
    if kind == "memory":
        return MemoryLedger()
    if kind == "sqlite":
        return SQLiteLedger(tmp_path / "ledger.db")
    return RedisLedger(redis, prefix=f"l{uuid.uuid4().hex[:8]}")


def run(client: Any, texts: list[str], *, run_async: bool, **kw: Any) -> Any:
    if isinstance(client, AsyncClient):
        return asyncio.run(client.embed(texts, **kw))
    return asyncio.run(client.aembed(texts, **kw)) if run_async else client.embed(texts, **kw)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("flavour", ["sync", "async", "AsyncClient", "chain"])
def test_second_run_sends_nothing_and_costs_nothing(
    kind: str, flavour: str, emu: EmulatorServer, tmp_path: Path, redis: str
) -> None:
    ledger = ledger_of(kind, tmp_path, redis)
    kw = conn(emu, embed_cache=make_cache(kind, tmp_path, redis), tracker=CostTracker(ledger))
    if flavour == "chain":
        client: Any = build_client("@cf/baai/bge-m3", ["@cf/baai/bge-large-en-v1.5"], **kw)
    else:
        client = (AsyncClient if flavour == "AsyncClient" else Client)(BGE, **kw)
    run_async = flavour == "async"
    first = run(client, TEXTS, run_async=run_async)
    first_requests = len(embed_requests(emu))
    assert first_requests == 10 and first.cached == 0 and first.cost > 0
    second = run(client, TEXTS, run_async=run_async)
    assert len(embed_requests(emu)) == first_requests  # the acceptance: 0 requests on the second run
    assert second.cached == 1000 and second.cost == Decimal(0) and second.vectors == first.vectors
    (hit,) = second.records
    assert hit.cost == Decimal(0) and hit.input_tokens == 0 and hit.cache_status == "HIT"
    assert hit.tags[HITS_TAG] == 1000 and hit.tags[MISSES_TAG] == 0
    stored = ledger.records()
    assert len(stored) == 11  # 10 batches, then one record for the cached call
    last = stored[-1]
    assert (last.cost, last.operation, last.cache_status, last.tags[HITS_TAG], last.tags[MISSES_TAG]) == (
        Decimal(0), "embed", "HIT", 1000, 0)  # the counts round-trip through the ledger's backend
    assert sum((r.cost for r in stored), Decimal(0)) == first.cost


@pytest.mark.parametrize("run_async", [False, True])
def test_half_cached_sends_only_the_misses_in_order(run_async: bool, emu: EmulatorServer) -> None:
    cache = MemoryEmbeddingCache()
    client = Client(BGE, embed_cache=cache, **conn(emu))
    evens = TEXTS[0:200:2]
    reference = Client(BGE, embed_cache=False, **conn(emu)).embed(TEXTS[:200]).vectors
    run(client, evens, run_async=run_async)
    emu.state.clear()
    resp = run(client, TEXTS[:200], run_async=run_async)
    assert sent_texts(emu) == TEXTS[1:200:2]  # only the odd ones, in order
    assert resp.vectors == reference and resp.cached == 100
    hit, *batches = resp.records
    assert (hit.tags[HITS_TAG], hit.tags[MISSES_TAG]) == (100, 100) and len(batches) == 1
    assert resp.cost == batches[0].cost > 0  # the cost covers what was sent, nothing else


def test_a_text_repeated_in_one_call_is_sent_once(emu: EmulatorServer) -> None:
    client = Client(BGE, embed_cache=MemoryEmbeddingCache(), **conn(emu))
    resp = client.embed(["alpha", "beta", "alpha", "alpha"])
    assert sent_texts(emu) == ["alpha", "beta"]
    assert resp.vectors[0] == resp.vectors[2] == resp.vectors[3] != resp.vectors[1]


def test_a_cached_vector_is_exactly_the_one_answered(emu: EmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "exact.db"
    client = Client(BGE, embed_cache=SQLiteEmbeddingCache(path), **conn(emu))
    answered = client.embed(["exact floats please"]).vectors[0]
    fresh = SQLiteEmbeddingCache(path)  # another object on the same file: read back from disk
    assert fresh.get_many(KeySpace(BGE).keys(["exact floats please"])) == [answered]
    again = Client(BGE, embed_cache=fresh, **conn(emu)).embed(["exact floats please"])
    assert again.vectors[0] == answered and again.cached == 1 and len(embed_requests(emu)) == 1


def test_sizes_pooling_and_models_never_share(emu: EmulatorServer) -> None:
    cache = MemoryEmbeddingCache()
    qwen = Client("openai/text-embedding-3-small", embed_cache=cache,
                  **conn(emu, gateway_id="gw", gateway_token="gw-tok", gateway_base_url=emu.gateway_base_url))
    bge = Client(BGE, embed_cache=cache, **conn(emu))
    large = Client("@cf/baai/bge-large-en-v1.5", embed_cache=cache, **conn(emu))
    texts = ["same words", "other words"]
    asked = [lambda: bge.embed(texts), lambda: bge.embed(texts, pooling="cls"), lambda: bge.embed(texts, pooling="mean"),
             lambda: large.embed(texts), lambda: qwen.embed(texts, dimensions=256),
             lambda: qwen.embed(texts, dimensions=512), lambda: qwen.embed(texts)]
    sizes = []
    for i, call in enumerate(asked):
        resp = call()
        assert resp.cached == 0, f"call {i} was answered from another call's entries"
        sizes.append(len(resp.vectors[0]))
    assert len(embed_requests(emu)) == len(asked) and sizes == [768, 768, 768, 1024, 256, 512, 1536]
    assert len(cache) == 2 * len(asked)
    for call in asked:  # and each is cached under its own key
        assert call().cached == 2
    assert len(embed_requests(emu)) == len(asked)
    # a size equal to the native one sends nothing extra: the same vectors, the same entries
    assert bge.embed(texts, dimensions=768).cached == 2


def test_a_fallback_stores_under_its_own_model(emu: EmulatorServer) -> None:
    cache = MemoryEmbeddingCache()
    chain = build_client("@cf/baai/bge-m3", ["@cf/baai/bge-large-en-v1.5"], embed_cache=cache, **conn(emu))
    down = Fault("*bge-m3", "error", status=500)
    emu.state.add_fault(down)
    first = chain.embed(TEXTS[:10])
    assert first.model == "@cf/baai/bge-large-en-v1.5" and first.cached == 0
    emu.state.clear()
    second = chain.embed(TEXTS[:10])  # the primary is back: its vectors are not the fallback's
    assert second.model == "@cf/baai/bge-m3" and second.cached == 0 and len(embed_requests(emu)) == 1
    emu.state.clear()
    emu.state.add_fault(down)
    third = chain.embed(TEXTS[:10])  # the primary is down, but its own entries answer: nothing is sent
    assert third.model == "@cf/baai/bge-m3" and third.cached == 10 and third.vectors == second.vectors
    assert embed_requests(emu) == []
    again = chain.embed(TEXTS[:10], model="@cf/baai/bge-large-en-v1.5")  # the fallback's entries are its own
    assert again.cached == 10 and again.vectors == first.vectors and embed_requests(emu) == []


def test_setting_and_per_call_override(emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CFGATEWAY_EMBED_CACHE", f"sqlite:///{tmp_path}/from-env.db")
    client = Client(BGE, **conn(emu))
    assert client.embed(["from the setting"]).cached == 0
    assert client.embed(["from the setting"]).cached == 1
    assert Client(BGE, **conn(emu)).embed(["from the setting"]).cached == 1  # another client, the same file
    assert client.embed(["from the setting"], cache=False).cached == 0  # per call: no cache
    assert Client(BGE, embed_cache=False, **conn(emu)).embed(["from the setting"]).cached == 0
    other = MemoryEmbeddingCache()
    assert client.embed(["from the setting"], cache=other).cached == 0 and len(other) == 1
    assert len(embed_requests(emu)) == 4


def test_refused_inputs_are_refused_before_any_lookup(emu: EmulatorServer) -> None:
    class Counting(MemoryEmbeddingCache):
        reads = 0

        def get_many(self, keys: Any) -> Any:
            Counting.reads += 1
            return super().get_many(keys)

    client = Client(BGE, embed_cache=Counting(), **conn(emu))
    with pytest.raises(Exception, match="input 1 is empty"):
        client.embed(["fine", "  "])
    assert Counting.reads == 0 and embed_requests(emu) == []
    assert client.embed([]).vectors == [] and Counting.reads == 0
