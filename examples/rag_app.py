"""A LangChain RAG app that names no model and no provider: what it runs on is configuration.

    CFGATEWAY_CHAT_MODEL=@cf/meta/llama-3.3-70b-instruct-fp8-fast \\
    CFGATEWAY_EMBED_MODEL=@cf/baai/bge-base-en-v1.5 python examples/rag_app.py

    CFGATEWAY_CONFIG=cfgateway.toml CFGATEWAY_PROFILE=openai python examples/rag_app.py

Moving it from Workers AI to OpenAI, Anthropic or Google behind AI Gateway, adding a fallback or a rollout,
changes environment variables or a cfgateway.toml profile, never this file (tests/test_config_matrix.py runs
it unchanged under five configurations). With no CLOUDFLARE_API_TOKEN it starts the offline emulator and
points itself at it, on the package's default models.
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings, get_cloudflare_callback

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


def _format(docs: list[Document]) -> str:
    return "\n".join(f"- {d.page_content}" for d in docs)


def main(question: str = "How much does a neuron cost?") -> dict[str, Any]:
    embeddings = CloudflareEmbeddings()         # model, fallbacks, gateway: all from configuration
    llm = ChatCloudflare(max_tokens=256)
    store = InMemoryVectorStore(embeddings)
    store.add_documents([Document(page_content=t) for t in DOCS])
    retriever = store.as_retriever(search_kwargs={"k": 2})
    chain = {"context": retriever | _format, "question": RunnablePassthrough()} | PROMPT | llm | StrOutputParser()
    with get_cloudflare_callback() as cb:
        answer = chain.invoke(question, config={"metadata": {"user_id": "rag-app"}})
    print(f"chat: {llm.model}{' -> ' + ', '.join(llm.fallbacks) if llm.fallbacks else ''} · embed: {embeddings.model}")
    print(f"answer: {answer}")
    print(f"answered by: {', '.join(cb.by_model) or 'unknown'} · cost ${cb.total_cost}")
    return {"answer": answer, "chat_model": llm.model, "embed_model": embeddings.model, "callback": cb}


if __name__ == "__main__":
    from cfgateway import load_settings

    if load_settings().api_token:
        main()
    else:
        from cfgateway.emulator.server import EmulatorServer

        with EmulatorServer() as server:
            print(f"(no CLOUDFLARE_API_TOKEN: using the offline emulator at {server.url})")
            os.environ.update({"CLOUDFLARE_ACCOUNT_ID": "demo", "CLOUDFLARE_API_TOKEN": "demo-token",
                               "CLOUDFLARE_API_BASE_URL": server.base_url,
                               "CLOUDFLARE_AI_GATEWAY_BASE_URL": server.gateway_base_url})
            main()
