"""RAG with LangChain on Cloudflare: CloudflareEmbeddings -> InMemoryVectorStore retriever -> LCEL chain
with ChatCloudflare, and what it cost (get_cloudflare_callback).

With CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID set it talks to Cloudflare; without them it
starts the offline emulator on loopback and talks to that.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from cfgateway import load_settings
from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings, get_cloudflare_callback

CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
EMBED_MODEL = "@cf/baai/bge-base-en-v1.5"
DOCS = [
    "Workers AI runs open models such as Llama and gpt-oss on Cloudflare's GPUs, billed in neurons.",
    "AI Gateway sits in front of any provider and adds caching, rate limits, logs and fallbacks.",
    "Vectorize is Cloudflare's vector database; embeddings from bge models have 768 dimensions.",
    "A neuron costs $0.011 per 1,000 and every account gets 10,000 free neurons per day.",
]
PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer from the context only. Context:\n{context}"),
    ("human", "{question}"),
])


@contextlib.contextmanager
def connection() -> Iterator[dict[str, Any]]:
    """Settings for Cloudflare when credentials are set, else for a local emulator."""
    if load_settings().api_token:
        yield {}
        return
    from cfgateway.emulator.server import EmulatorServer

    with EmulatorServer() as server:
        print(f"(no CLOUDFLARE_API_TOKEN: using the offline emulator at {server.url})\n")
        yield {"account_id": "demo", "api_token": "demo-token", "base_url": server.base_url}


def _format(docs: list[Document]) -> str:
    return "\n".join(f"- {d.page_content}" for d in docs)


def main(question: str = "How much does a neuron cost?", **settings: Any) -> dict[str, Any]:
    embeddings = CloudflareEmbeddings(model=EMBED_MODEL, **settings)
    store = InMemoryVectorStore(embeddings)
    store.add_documents([Document(page_content=t, metadata={"i": i}) for i, t in enumerate(DOCS)])
    retriever = store.as_retriever(search_kwargs={"k": 2})
    llm = ChatCloudflare(model=CHAT_MODEL, max_tokens=256, **settings)
    chain = {"context": retriever | _format, "question": RunnablePassthrough()} | PROMPT | llm | StrOutputParser()
    with get_cloudflare_callback() as cb:
        answer = chain.invoke(question, config={"metadata": {"user_id": "rag-demo"}})
    hits = retriever.invoke(question)
    print(f"question: {question}")
    print("retrieved:\n" + _format(hits))
    print(f"answer: {answer}")
    print(f"cost: ${cb.total_cost} for {cb.total_tokens} tokens ({cb.successful_requests} chat call, "
          f"{cb.embedding_requests} embedding calls)")
    return {"answer": answer, "retrieved": hits, "callback": cb}


if __name__ == "__main__":
    with connection() as kw:
        main(**kw)
