"""CloudflareVectorizeStore under LlamaIndex: VectorStoreIndex.from_documents + query engine (acceptance),
MetadataFilters mapped to Vectorize filters (acceptance), delete by ref_doc_id (metadata index or scan),
get_nodes/delete_nodes/clear, node_ids and doc_ids queries, MMR, async, with the write delay on."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from cfgateway import InvalidInputError
from cfgateway.emulator import EmulatorServer
from cfgateway.vectorize import WaitPolicy
from llama_index_cfgateway import CloudflareEmbedding, CloudflareLLM, CloudflareVectorizeStore

FAST = WaitPolicy(timeout=5.0, poll_initial=0.01, poll_max=0.05)
DOCS = [("pricing", 2024, "A neuron costs $0.011 per 1,000; 10,000 neurons a day are free."),
        ("vectorize", 2023, "Vectorize is Cloudflare's vector database, billed by vector dimensions."),
        ("gateway", 2022, "AI Gateway adds caching, rate limits and fallbacks in front of providers.")]


def make(conn: Any, name: str = "li-docs", **kw: Any) -> CloudflareVectorizeStore:
    settings = {k: v for k, v in conn().items() if k in ("account_id", "api_token", "base_url")}
    return CloudflareVectorizeStore(index_name=name, wait_policy=FAST, **settings, **kw)


def build(conn: Any, store: CloudflareVectorizeStore) -> VectorStoreIndex:
    settings = {k: v for k, v in conn().items() if k in ("account_id", "api_token", "base_url")}
    docs = [Document(text=t, metadata={"topic": k, "year": y}, id_=k) for k, y, t in DOCS]
    return VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                           embed_model=CloudflareEmbedding(**settings))


def test_query_engine_answers_from_vectorize(emu: EmulatorServer, conn: Any) -> None:
    emu.state.vectorize.settings.delay_s = 0.1
    store = make(conn)
    store.create_index(768)
    index = build(conn, store)
    llm = CloudflareLLM(model="@cf/meta/llama-3.3-70b-instruct-fp8-fast", **conn())
    response = index.as_query_engine(similarity_top_k=1, llm=llm).query("How much does a neuron cost?")
    (hit,) = response.source_nodes
    assert hit.node.ref_doc_id == "pricing" and "neuron costs $0.011" in hit.node.get_content()
    assert hit.node.metadata == {"topic": "pricing", "year": 2024} and 0 < (hit.score or 0) <= 1
    chat = [r for r in emu.state.requests if "/ai/run/" in r.path and "llama-3.3" in r.path]
    assert "neuron costs $0.011" in str(chat[-1].json["messages"])
    assert str(response).startswith("You said: Context information")


def test_metadata_filters_are_vectorize_filters(emu: EmulatorServer, conn: Any) -> None:
    store = make(conn)
    store.create_index(768)
    store.client.create_metadata_index("topic", "string")
    store.client.create_metadata_index("year", "number")
    index = build(conn, store)
    only = MetadataFilters(filters=[MetadataFilter(key="topic", value="gateway")])
    got = index.as_retriever(similarity_top_k=3, filters=only).retrieve("neuron price")
    assert [n.node.ref_doc_id for n in got] == ["gateway"]
    recent = MetadataFilters(filters=[MetadataFilter(key="year", value=2023, operator=FilterOperator.GTE),
                                      MetadataFilter(key="topic", value=["pricing", "gateway"],
                                                     operator=FilterOperator.IN)])
    assert [n.node.ref_doc_id for n in index.as_retriever(similarity_top_k=3, filters=recent).retrieve("x")] == [
        "pricing"]
    query = [r for r in emu.state.requests if r.path.endswith("/query")][-1]
    assert query.json["filter"] == {"year": {"$gte": 2023}, "topic": {"$in": ["pricing", "gateway"]}}
    either = MetadataFilters(filters=only.filters, condition=FilterCondition.OR)
    with pytest.raises(InvalidInputError, match="ANDs metadata filters"):
        index.as_retriever(filters=either).retrieve("x")
    text = MetadataFilters(filters=[MetadataFilter(key="topic", value="x", operator=FilterOperator.TEXT_MATCH)])
    with pytest.raises(InvalidInputError, match="not supported by Vectorize"):
        index.as_retriever(filters=text).retrieve("x")


@pytest.mark.parametrize("with_index", [True, False])
def test_delete_by_ref_doc_id(emu: EmulatorServer, conn: Any, with_index: bool, caplog: Any) -> None:
    store = make(conn)
    store.create_index(768, ref_doc_index=with_index)
    index = build(conn, store)
    index.delete_ref_doc("pricing")
    left = sorted(n.ref_doc_id or "" for n in store.get_nodes())
    assert left == ["gateway", "vectorize"]
    assert ("scanning every vector" in caplog.text) is (not with_index)


def test_get_nodes_delete_nodes_clear_and_node_ids_queries(emu: EmulatorServer, conn: Any) -> None:
    store = make(conn)
    store.create_index(2, metric="euclidean")
    nodes = [TextNode(id_=f"n{i}", text=f"t{i}", embedding=[float(i), 0.0], metadata={"i": i}) for i in range(5)]
    assert store.add(nodes) == [f"n{i}" for i in range(5)]
    assert [n.get_content() for n in store.get_nodes(["n3", "n1"])] == ["t3", "t1"]
    big = MetadataFilters(filters=[MetadataFilter(key="i", value=2, operator=FilterOperator.GT)])
    assert sorted(n.node_id for n in store.get_nodes(filters=big)) == ["n3", "n4"]
    res = store.query(VectorStoreQuery(query_embedding=[4.0, 0.0], similarity_top_k=2, node_ids=["n0", "n1", "n2"]))
    assert res.ids == ["n2", "n1"] and res.similarities == [pytest.approx(1 / 3), pytest.approx(1 / 4)]
    store.delete_nodes(["n0", "n1", "n2"], filters=big)  # none of those is > 2: nothing deleted
    assert len(store.get_nodes()) == 5
    store.delete_nodes(["n0", "n4"])
    assert sorted(n.node_id for n in store.get_nodes()) == ["n1", "n2", "n3"]
    with pytest.raises(ValueError, match="node_ids or filters"):
        store.delete_nodes()
    store.clear()
    assert store.get_nodes() == []


def test_doc_ids_mmr_and_refusals(emu: EmulatorServer, conn: Any) -> None:
    store = make(conn)
    store.create_index(768)
    index = build(conn, store)
    vec = CloudflareEmbedding(**{k: v for k, v in conn().items() if k in ("account_id", "api_token", "base_url")}
                              ).get_query_embedding("neuron price")
    res = store.query(VectorStoreQuery(query_embedding=vec, similarity_top_k=3, doc_ids=["gateway", "vectorize"]))
    assert sorted(res.ids or []) != [] and {n.ref_doc_id for n in res.nodes or []} <= {"gateway", "vectorize"}
    mmr = store.query(VectorStoreQuery(query_embedding=vec, similarity_top_k=2, mode=VectorStoreQueryMode.MMR,
                                       mmr_threshold=0.5))
    assert len(mmr.ids or []) == 2 and len(set(mmr.ids or [])) == 2
    with pytest.raises(InvalidInputError, match="not supported by Vectorize"):
        store.query(VectorStoreQuery(query_embedding=vec, mode=VectorStoreQueryMode.HYBRID))
    with pytest.raises(InvalidInputError, match="no embedding"):
        store.query(VectorStoreQuery(query_str="x"))
    assert index is not None and "test-token" not in repr(store)


async def test_async_add_query_delete(emu: EmulatorServer, conn: Any) -> None:
    emu.state.vectorize.settings.delay_s = 0.1
    store = make(conn, name="li-async")
    await store.acreate_index(2)
    source = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-b")}
    nodes = [TextNode(id_=f"n{i}", text=f"t{i}", embedding=[1.0, float(i)], relationships=source if i == 2 else {})
             for i in range(3)]
    assert await store.async_add(nodes) == ["n0", "n1", "n2"]
    await store.adelete("doc-b")
    assert [n.node_id for n in await store.aget_nodes(["n0", "n1", "n2"])] == ["n0", "n1"]
    res = await store.aquery(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=1))
    assert res.ids == ["n0"] and res.nodes and res.nodes[0].get_content() == "t0"
    await store.adelete_nodes(["n0"])
    assert [n.node_id for n in await store.aget_nodes(["n0", "n1"])] == ["n1"]
    await store.aclear()
    assert await store.aget_nodes() == []
