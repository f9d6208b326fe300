"""CloudflareVectorize beyond the standard suite: metrics and relevance scores, MMR, filters in both syntaxes,
k above 50, namespaces, from_texts, the write delay made visible (wait=False), costs in the same tracker as the
embeddings, big writes in batches, settings from the environment, and clear errors."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from cfgateway import CostTracker, InvalidInputError, open_ledger
from cfgateway.emulator import EmulatorServer
from cfgateway.vectorize import WaitPolicy
from langchain_cfgateway import CloudflareEmbeddings, CloudflareVectorize

FAST = WaitPolicy(timeout=5.0, poll_initial=0.01, poll_max=0.05)
FACTS = {"pricing": "A neuron costs $0.011 per 1,000 and 10,000 neurons a day are free.",
         "vectorize": "Vectorize is Cloudflare's vector database.",
         "gateway": "AI Gateway adds caching, rate limits and fallbacks."}


def store(conn: Any, name: str = "docs", embedding: Any = None, **kw: Any) -> CloudflareVectorize:
    kw.setdefault("wait_policy", FAST)
    settings = {k: v for k, v in conn().items() if k in ("account_id", "api_token", "base_url")}
    return CloudflareVectorize(name, embedding, **settings, **kw)


def test_default_embeddings_retrieval_and_relevance(emu: EmulatorServer, conn: Any) -> None:
    s = store(conn)
    assert isinstance(s.embeddings, CloudflareEmbeddings) and s.embeddings.model == "@cf/baai/bge-base-en-v1.5"
    s.create_index(metric="cosine")  # dimensions from one embedding call: 768
    assert s.describe().config.dimensions == 768
    ids = s.add_texts(list(FACTS.values()), [{"topic": k} for k in FACTS], ids=list(FACTS))
    assert ids == list(FACTS)
    (doc, score), *_ = s.similarity_search_with_score("How much does a neuron cost?", k=3)
    assert doc.id == "pricing" and doc.metadata == {"topic": "pricing"} and -1 <= score <= 1
    rel = s.similarity_search_with_relevance_scores("How much does a neuron cost?", k=3)
    assert [d.id for d, _ in rel][0] == "pricing" and all(0 <= r <= 1 for _, r in rel)
    assert s.as_retriever(search_kwargs={"k": 1}).invoke("neuron cost")[0].id == "pricing"


@pytest.mark.parametrize(("metric", "best_first"), [("euclidean", True), ("dot-product", True)])
def test_lower_is_closer_metrics_keep_their_raw_scores(emu: EmulatorServer, conn: Any, metric: str,
                                                       best_first: bool) -> None:
    s = store(conn, embedding=DeterministicFakeEmbedding(size=8))
    s.create_index(8, metric=metric)
    s.add_texts(["foo", "bar", "baz"], ids=["1", "2", "3"])
    pairs = s.similarity_search_with_score("bar", k=3)
    assert pairs[0][0].id == "2" and [p[1] for p in pairs] == sorted(p[1] for p in pairs)


def test_mmr_prefers_diverse_documents(emu: EmulatorServer, conn: Any) -> None:
    s = store(conn)
    s.create_index(768)
    texts = ["neuron price per thousand", "neuron price per thousand!", "the gateway caches answers"]
    s.add_texts(texts, ids=["a", "b", "c"])
    plain = [d.id for d in s.similarity_search("neuron price per thousand", k=2)]
    diverse = [d.id for d in s.max_marginal_relevance_search("neuron price per thousand", k=2, fetch_k=3,
                                                              lambda_mult=0.3)]
    assert set(plain) == {"a", "b"} and diverse[0] in ("a", "b") and diverse[1] == "c"


def test_filters_in_vectorize_and_langchain_syntax(emu: EmulatorServer, conn: Any) -> None:
    s = store(conn, embedding=DeterministicFakeEmbedding(size=8))
    s.create_index(8)
    s.create_metadata_index("year", "number")
    s.create_metadata_index("lang", "string")
    s.add_texts(["a", "b", "c"], [{"year": 2001, "lang": "en"}, {"year": 2015, "lang": "fr"},
                                  {"year": 2005, "lang": "fr"}], ids=["a", "b", "c"])
    got = s.similarity_search("a", k=5, filter={"year": {"$gte": 2000, "$lt": 2010}})
    assert sorted(d.id for d in got) == ["a", "c"]
    got = s.similarity_search("a", k=5, filter={"$and": [{"lang": "fr"}, {"year": {"$gt": 2010}}]})
    assert [d.id for d in got] == ["b"]
    with pytest.raises(InvalidInputError, match=r"\$or cannot be expressed"):
        s.similarity_search("a", filter={"$or": [{"lang": "fr"}, {"lang": "en"}]})
    with pytest.raises(InvalidInputError, match="no metadata index on it"):
        s.similarity_search("a", filter={"topic": "x"})
    with pytest.raises(TypeError, match="unknown argument"):
        s.similarity_search("a", fliter={"lang": "fr"})


def test_k_above_50_and_limits(emu: EmulatorServer, conn: Any) -> None:
    s = store(conn, embedding=DeterministicFakeEmbedding(size=4))
    s.create_index(4)
    s.add_texts([f"t{i}" for i in range(120)])
    assert len(s.similarity_search("t1", k=80)) == 80
    assert len(s.max_marginal_relevance_search("t1", k=5, fetch_k=90)) == 5
    with pytest.raises(InvalidInputError, match="limit of 100"):
        s.similarity_search("t1", k=101)


def test_wait_false_shows_the_delay_and_wait_for_mutations_closes_it(emu: EmulatorServer, conn: Any) -> None:
    emu.state.vectorize.settings.delay_s = 0.3
    s = store(conn, embedding=DeterministicFakeEmbedding(size=4), wait=False)
    s.create_index(4)
    s.add_texts(["foo"], ids=["1"])
    assert s.similarity_search("foo", k=1) == [] and len(s.last_mutations) == 1
    s.wait_for_mutations()
    assert [d.id for d in s.similarity_search("foo", k=1)] == ["1"]


def test_namespaces_isolate_and_delete_all_stays_in_its_namespace(emu: EmulatorServer, conn: Any) -> None:
    emb = DeterministicFakeEmbedding(size=4)
    store(conn, embedding=emb).create_index(4)
    a, b = store(conn, embedding=emb, namespace="a"), store(conn, embedding=emb, namespace="b")
    a.add_texts(["x", "y"], ids=["a1", "a2"])
    b.add_texts(["x"], ids=["b1"])
    assert [d.id for d in a.similarity_search("x", k=5)] == ["a1", "a2"]
    assert a.get_by_ids(["b1", "a1"])[0].id == "a1" and len(a.get_by_ids(["b1", "a1"])) == 1
    with pytest.raises(ValueError, match="delete_all=True"):
        a.delete()
    a.delete(delete_all=True)
    assert a.similarity_search("x", k=5) == [] and [d.id for d in b.similarity_search("x", k=5)] == ["b1"]


def test_from_texts_creates_the_index(emu: EmulatorServer, conn: Any) -> None:
    settings = {k: v for k, v in conn().items() if k in ("account_id", "api_token", "base_url")}
    s = CloudflareVectorize.from_texts(["foo", "bar"], DeterministicFakeEmbedding(size=5), index_name="made",
                                       metric="euclidean", ids=["1", "2"], wait_policy=FAST, **settings)
    assert s.describe().config.dimensions == 5 and s.describe().config.metric == "euclidean"
    assert [d.page_content for d in s.get_by_ids(["2", "1"])] == ["bar", "foo"]
    with pytest.raises(ValueError, match="index_name="):
        CloudflareVectorize.from_texts(["x"], DeterministicFakeEmbedding(size=5))


def test_vectorize_and_embedding_costs_land_in_one_tracker(emu: EmulatorServer, conn: Any) -> None:
    tracker = CostTracker(open_ledger("memory://"))
    settings = {k: v for k, v in conn().items() if k in ("account_id", "api_token", "base_url")}
    s = CloudflareVectorize("costs", CloudflareEmbeddings(tracker=tracker, **settings), wait_policy=FAST, **settings)
    s.create_index(768)
    s.add_texts(["a", "b"])
    s.similarity_search("a", k=1)
    ops = [(r.operation, r.tags.get("op")) for r in tracker.ledger.records()]
    assert ("embed", None) in ops and ("vectorize", "upsert") in ops and ("vectorize", "query") in ops
    vz = [r.cost for r in tracker.ledger.records() if r.operation == "vectorize"]
    assert all(isinstance(c, Decimal) and c > 0 for c in vz)


def test_big_adds_are_embedded_and_sent_in_batches_of_5000(emu: EmulatorServer, conn: Any) -> None:
    s = store(conn, embedding=DeterministicFakeEmbedding(size=2))
    s.create_index(2)
    t0 = time.monotonic()
    ids = s.add_texts([f"t{i}" for i in range(11_000)])
    assert len(set(ids)) == 11_000 and s.info().vector_count == 11_000
    sizes = sorted(len(r.json) for r in emu.state.requests if r.path.endswith("/upsert"))
    assert sizes == [1000, 5000, 5000] and time.monotonic() - t0 < 60


def test_clear_errors_before_anything_is_embedded_or_sent(emu: EmulatorServer, conn: Any) -> None:
    s = store(conn, embedding=DeterministicFakeEmbedding(size=2))
    s.create_index(2)
    emu.state.clear_requests()
    with pytest.raises(InvalidInputError, match="key 'text'"):
        s.add_texts(["x"], [{"text": "clash"}])
    with pytest.raises(InvalidInputError, match="10 KiB"):
        s.add_texts(["x" * 11_000])
    with pytest.raises(InvalidInputError, match="not allowed"):
        s.add_texts(["x"], [{"a.b": 1}])
    with pytest.raises(InvalidInputError, match="2 metadatas for 1 texts"):
        s.add_texts(["x"], [{}, {}])
    assert emu.state.requests == []
    assert s.add_texts([]) == []


def test_settings_from_the_environment_and_no_token_in_repr(emu: EmulatorServer, monkeypatch: Any) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acct")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "secret-env-token")
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", emu.base_url)
    s = CloudflareVectorize("envidx", DeterministicFakeEmbedding(size=2), wait_policy=FAST)
    s.create_index(2)
    s.add_documents([Document(page_content="hi", id="1")])
    assert s.get_by_ids(["1"])[0].page_content == "hi"
    assert "secret-env-token" not in repr(s) + repr(s.index) + repr(s.index.client)
    assert emu.state.requests[-1].headers["authorization"] == "Bearer secret-env-token"


async def test_async_paths(emu: EmulatorServer, conn: Any) -> None:
    emu.state.vectorize.settings.delay_s = 0.1
    s = store(conn, embedding=DeterministicFakeEmbedding(size=4))
    await s.acreate_index(metric="cosine")
    await s.aadd_texts(["foo", "bar", "baz"], ids=["1", "2", "3"])
    assert [d.id for d in await s.asimilarity_search("bar", k=1)] == ["2"]
    rel = await s.asimilarity_search_with_relevance_scores("bar", k=1)
    assert rel[0][1] == pytest.approx(1.0)
    assert len(await s.amax_marginal_relevance_search("bar", k=2, fetch_k=3)) == 2
    await s.adelete(["2"])
    assert [d.id for d in await s.aget_by_ids(["1", "2"])] == ["1"]
    settings = {k: v for k, v in conn().items() if k in ("account_id", "api_token", "base_url")}
    made = await CloudflareVectorize.afrom_texts(["q", "r"], DeterministicFakeEmbedding(size=3), index_name="afrom",
                                                 ids=["1", "2"], wait_policy=FAST, **settings)
    assert (await made.adescribe()).config.dimensions == 3
    assert [d.page_content for d in await made.aget_by_ids(["1", "2"])] == ["q", "r"]
