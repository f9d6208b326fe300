"""RAG at the edge: Workers AI embeddings -> Cloudflare Vectorize -> Workers AI chat, once with LangChain
(CloudflareVectorize retriever + LCEL chain, a metadata filter) and once with LlamaIndex
(CloudflareVectorizeStore under a VectorStoreIndex query engine). One CostTracker books every call: chat,
embeddings and Vectorize's queried/stored dimensions.

With CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID set it talks to Cloudflare (and deletes the two demo indexes
at the end); without them it starts the offline emulator on loopback, with Vectorize's write delay switched on.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from langchain_core.documents import Document as LCDocument
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from llama_index.core import Document as LIDocument
from llama_index.core import StorageContext, VectorStoreIndex

from cfgateway import CostTracker, load_settings, open_ledger
from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings, CloudflareVectorize
from llama_index_cfgateway import CloudflareEmbedding, CloudflareLLM, CloudflareVectorizeStore

CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
EMBED_MODEL = "@cf/baai/bge-base-en-v1.5"  # 768 dimensions
LC_INDEX, LI_INDEX = "cfgateway-demo-langchain", "cfgateway-demo-llamaindex"
FACTS = [
    ("pricing", "A neuron costs $0.011 per 1,000 and every account gets 10,000 free neurons per day."),
    ("vectorize", "Vectorize bills $0.01 per million queried vector dimensions and $0.05 per 100 million stored."),
    ("gateway", "AI Gateway sits in front of any provider and adds caching, rate limits, logs and fallbacks."),
    ("models", "Workers AI runs open models such as Llama and gpt-oss on Cloudflare's GPUs."),
]
PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer from the context only. Context:\n{context}"),
    ("human", "{question}"),
])


@contextlib.contextmanager
def connection() -> Iterator[dict[str, Any]]:
    """Settings for Cloudflare when credentials are set, else for a local emulator (write delay on)."""
    if load_settings().api_token:
        yield {}
        return
    from cfgateway.emulator import EmulatorConfig, EmulatorServer
    from cfgateway.emulator.vectorize_state import VectorizeSettings

    with EmulatorServer(EmulatorConfig(vectorize=VectorizeSettings(delay_s=0.3))) as server:
        print(f"(no CLOUDFLARE_API_TOKEN: using the offline emulator at {server.url})\n")
        yield {"account_id": "demo", "api_token": "demo-token", "base_url": server.base_url}


def langchain_rag(question: str, tracker: CostTracker, settings: dict[str, Any]) -> dict[str, Any]:
    store = CloudflareVectorize(LC_INDEX, CloudflareEmbeddings(model=EMBED_MODEL, tracker=tracker, **settings),
                                tracker=tracker, **settings)
    store.create_index(768, metric="cosine", exist_ok=True)
    if "topic" not in {m.property_name for m in store.list_metadata_indexes()}:
        store.create_metadata_index("topic", "string")  # before writing: only later writes are filterable
    store.add_documents([LCDocument(page_content=t, metadata={"topic": k}, id=k) for k, t in FACTS])
    retriever = store.as_retriever(search_kwargs={"k": 2, "filter": {"topic": {"$in": ["pricing", "vectorize"]}}})
    llm = ChatCloudflare(model=CHAT_MODEL, max_tokens=256, tracker=tracker, **settings)

    def context(docs: list[LCDocument]) -> str:
        return "\n".join(f"- {d.page_content}" for d in docs)

    chain = {"context": retriever | context, "question": RunnablePassthrough()} | PROMPT | llm | StrOutputParser()
    answer = chain.invoke(question)
    hits = retriever.invoke(question)
    print(f"LangChain retrieved: {[d.id for d in hits]}\nLangChain answer: {answer}\n")
    return {"answer": answer, "retrieved": hits, "store": store}


def llamaindex_rag(question: str, tracker: CostTracker, settings: dict[str, Any]) -> dict[str, Any]:
    store = CloudflareVectorizeStore(index_name=LI_INDEX, tracker=tracker, **settings)
    store.create_index(768, metric="cosine", exist_ok=True)  # also a metadata index on ref_doc_id
    index = VectorStoreIndex.from_documents(
        [LIDocument(text=t, metadata={"topic": k}, id_=k) for k, t in FACTS],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=CloudflareEmbedding(model_name=EMBED_MODEL, tracker=tracker, **settings),
    )
    llm = CloudflareLLM(model=CHAT_MODEL, max_tokens=256, tracker=tracker, **settings)
    response = index.as_query_engine(similarity_top_k=2, llm=llm).query(question)
    print(f"LlamaIndex retrieved: {[n.node.ref_doc_id for n in response.source_nodes]}\n"
          f"LlamaIndex answer: {response}\n")
    return {"answer": response, "store": store}


def costs_by_operation(tracker: CostTracker) -> dict[str, Decimal | None]:
    """USD per operation (chat, embed, vectorize); None when a call had no price."""
    out: dict[str, Decimal | None] = defaultdict(Decimal)
    for r in tracker.ledger.records():
        have = out[r.operation]
        out[r.operation] = None if have is None or r.cost is None else have + r.cost
    return dict(out)


def main(question: str = "How much does a neuron cost?", *, cleanup: bool = False,
         **settings: Any) -> dict[str, Any]:
    tracker = CostTracker(open_ledger("memory://"))
    lc = langchain_rag(question, tracker, settings)
    li = llamaindex_rag(question, tracker, settings)
    costs = costs_by_operation(tracker)
    for op, usd in sorted(costs.items()):
        print(f"cost of {op}: ${usd}")
    if cleanup:
        lc["store"].delete_index()
        li["store"].delete_index()
    return {"langchain": lc, "llamaindex": li, "costs": costs, "tracker": tracker}


if __name__ == "__main__":
    with connection() as kw:
        main(cleanup=True, **kw)
