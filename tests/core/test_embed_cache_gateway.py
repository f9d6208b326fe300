"""The embedding cache in gateway mode (one Universal Endpoint request for every route): the second run sends
nothing and costs $0; vectors are kept under the model that answered; one call never mixes two models'
vectors (cached ones of the primary with a fallback's)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from _emu import emulator_fixtures

from cfgateway import Client, CostTracker, build_client
from cfgateway.cache import HITS_TAG, KeySpace, MemoryEmbeddingCache
from cfgateway.costs.ledger import MemoryLedger
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer

PRIMARY, FALLBACK = "@cf/baai/bge-m3", "@cf/baai/bge-large-en-v1.5"
TEXTS = [f"passage {i} about caching embeddings behind a gateway" for i in range(300)]


server, emu = emulator_fixtures(EmulatorConfig(api_token="tok", gateways={"gw": GatewayConfig()}))


def conn(emu: EmulatorServer) -> dict[str, Any]:
    return {"account_id": "acct", "api_token": "tok", "gateway_id": "gw", "base_url": emu.base_url,
            "gateway_base_url": emu.gateway_base_url, "max_retries": 0}


def universal_posts(emu: EmulatorServer) -> list[Any]:
    """The gateway-mode requests: POSTs of a list of steps."""
    return [r for r in emu.state.requests if r.method == "POST" and isinstance(r.json, list)]


def direct(emu: EmulatorServer, model: str, texts: list[str]) -> list[list[float]]:
    return Client(model, **conn(emu), embed_cache=False).embed(texts).vectors


def chain_of(emu: EmulatorServer, cache: Any, tracker: Any = None) -> Any:
    return build_client(PRIMARY, [FALLBACK], fallback_mode="gateway", embed_cache=cache, tracker=tracker,
                        **conn(emu))


@pytest.mark.parametrize("run_async", [False, True])
def test_second_run_sends_nothing_and_costs_nothing(emu: EmulatorServer, run_async: bool) -> None:
    ledger = MemoryLedger()
    chain = chain_of(emu, MemoryEmbeddingCache(), CostTracker(ledger))

    def embed() -> Any:
        return asyncio.run(chain.aembed(TEXTS)) if run_async else chain.embed(TEXTS)

    first = embed()
    sent = len(universal_posts(emu))
    assert sent >= 1 and first.cached == 0 and first.model == PRIMARY and first.cost > 0
    second = embed()
    assert len(universal_posts(emu)) == sent  # nothing sent
    assert second.cached == len(TEXTS) and second.vectors == first.vectors and second.cost == Decimal(0)
    (hit,) = second.records
    assert hit.cache_status == "HIT" and hit.tags[HITS_TAG] == len(TEXTS)
    assert ledger.records()[-1].cache_status == "HIT"


def test_partial_hits_send_only_the_misses(emu: EmulatorServer) -> None:
    chain = chain_of(emu, MemoryEmbeddingCache())
    chain.embed(TEXTS[:100:2])
    emu.state.clear()
    resp = chain.embed(TEXTS[:100])
    (post,) = universal_posts(emu)
    assert post.json[0]["query"]["text"] == TEXTS[1:100:2]  # only the misses, in order
    assert resp.cached == 50 and resp.vectors == direct(emu, PRIMARY, TEXTS[:100])


def test_a_fallbacks_vectors_are_kept_under_its_own_model(emu: EmulatorServer) -> None:
    cache = MemoryEmbeddingCache()
    chain = chain_of(emu, cache)
    emu.state.add_fault(Fault(f"*{PRIMARY}", "error", status=500))
    resp = chain.embed(TEXTS[:20])
    assert resp.model == FALLBACK and resp.vectors == direct(emu, FALLBACK, TEXTS[:20])
    assert cache.get_many(KeySpace(FALLBACK).keys(TEXTS[:20])) == resp.vectors
    assert cache.get_many(KeySpace(PRIMARY).keys(TEXTS[:20])) == [None] * 20  # never under the primary


@pytest.mark.parametrize("run_async", [False, True])
def test_a_call_never_mixes_two_models_vectors(emu: EmulatorServer, run_async: bool) -> None:
    """Half the texts are cached from the primary; the primary then fails and the fallback answers the
    misses: the call is sent again whole, so every vector comes from the fallback."""
    chain = chain_of(emu, MemoryEmbeddingCache())
    chain.embed(TEXTS[:40:2])  # the primary's vectors of the even texts, cached
    emu.state.clear()
    emu.state.add_fault(Fault(f"*{PRIMARY}", "error", status=500))
    resp = asyncio.run(chain.aembed(TEXTS[:40])) if run_async else chain.embed(TEXTS[:40])
    assert resp.model == FALLBACK and resp.cached == 0
    assert resp.vectors == direct(emu, FALLBACK, TEXTS[:40])
    answers = [r for r in resp.records if r.outcome == "ok"]
    assert [r.model for r in answers] == [FALLBACK, FALLBACK]  # the misses' answer (billed, kept) and the whole call
    assert resp.cost == sum((r.cost for r in answers), Decimal(0)) > 0  # both were billed: both are counted


@pytest.mark.parametrize("run_async", [False, True])
def test_repeated_texts_keep_one_vector_each_when_a_fallback_answers(emu: EmulatorServer, run_async: bool) -> None:
    """Repeated texts are sent once; every input still gets its vector when the fallback answers a cold call."""
    chain = chain_of(emu, MemoryEmbeddingCache())
    emu.state.add_fault(Fault(f"*{PRIMARY}", "error", status=500))
    texts = ["same", "same", "other", "same"]
    resp = asyncio.run(chain.aembed(texts)) if run_async else chain.embed(texts)
    (post,) = universal_posts(emu)
    assert post.json[0]["query"]["text"] == ["same", "other"]  # each distinct text sent once
    assert resp.model == FALLBACK and resp.vectors == direct(emu, FALLBACK, texts)
