"""get_cloudflare_callback() counts CloudflareEmbeddings calls made inside it (LangChain fires no embedding
callbacks): sync, async, inside an LCEL chain's worker threads; none outside the block."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableParallel
from langchain_core.vectorstores import InMemoryVectorStore

from cfgateway import BadRequestError
from cfgateway.costs.catalog import default_catalog
from cfgateway.emulator.answers import count_tokens
from langchain_cfgateway import CloudflareEmbeddings, get_cloudflare_callback

BGE = "@cf/baai/bge-base-en-v1.5"
TEXTS = [f"document number {i} about neurons and gateways" for i in range(600)]


def price(tokens: int) -> Decimal:
    info = default_catalog().get(BGE)
    assert info is not None and info.input_price is not None
    return tokens * info.input_price / Decimal(1_000_000)


def test_600_embeddings_are_counted(conn: Any, emu: Any) -> None:
    emb = CloudflareEmbeddings(model=BGE, **conn())
    emb.embed_documents(TEXTS[:10])  # outside the block: not counted
    with get_cloudflare_callback() as cb:
        emb.embed_documents(TEXTS)
        asyncio.run(emb.aembed_query("a query"))
    tokens = sum(count_tokens(t) for t in TEXTS) + count_tokens("a query")
    assert cb.embedding_requests == 7  # 6 batches of 100 + the query
    assert cb.embedding_tokens == tokens == cb.total_tokens and cb.prompt_tokens == 0
    assert cb.total_cost == cb.embedding_cost == price(tokens) > 0
    line = cb.by_model[BGE]
    assert line.requests == 7 and line.prompt_tokens == tokens and line.cost == cb.total_cost
    assert cb.neurons > 0 and line.neurons == cb.neurons
    assert "Embedding Requests: 7" in cb.summary() and f"Embedding Tokens: {tokens}" in cb.summary()


def test_embeddings_in_a_chain_run_on_langchain_threads(conn: Any, emu: Any) -> None:
    emb = CloudflareEmbeddings(model=BGE, **conn())
    store = InMemoryVectorStore(emb)
    store.add_documents([Document(page_content=t) for t in TEXTS[:5]])
    retriever = store.as_retriever(search_kwargs={"k": 1})
    parallel = RunnableParallel(a=retriever, b=retriever)  # runs its branches in a thread pool
    with get_cloudflare_callback() as cb:
        parallel.invoke("document number 3")
        asyncio.run(parallel.ainvoke("document number 4"))
    assert cb.embedding_requests == 4 and cb.embedding_tokens == 2 * (count_tokens("document number 3")
                                                                      + count_tokens("document number 4"))


def test_a_failed_embedding_call_is_not_counted_as_spend(conn: Any, emu: Any) -> None:
    from cfgateway.emulator.config import Fault

    emu.state.add_fault(Fault(path="*bge-base*", kind="error", status=400))
    emb = CloudflareEmbeddings(model=BGE, **conn())
    with get_cloudflare_callback() as cb, pytest.raises(BadRequestError):
        emb.embed_query("x")
    assert cb.embedding_requests == 0 and cb.total_cost == 0 and cb.embedding_tokens == 0
