"""Migration guide 3 (docs/edge-rag-workers-ai.md): RAG on Workers AI embeddings and LLM with AI Gateway
caching. The profile ``edge`` in ``examples/edge_rag.toml`` names the models and ``cache_ttl``; asking the same
question twice is answered the second time from the gateway's cache (``cf-aig-cache-status: HIT``, cost 0).
With no CLOUDFLARE_API_TOKEN it runs on the offline emulator.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings

PROFILES = str(Path(__file__).with_name("edge_rag.toml"))
DOCS = [
    "Workers AI runs models in Cloudflare's data centres, close to the user.",
    "AI Gateway caches identical requests for the TTL you set; a cache hit costs nothing.",
    "bge-base-en-v1.5 embeddings have 768 dimensions and take up to 100 texts per request.",
]


def ask(llm: ChatCloudflare, store: InMemoryVectorStore, question: str) -> Any:
    hits = store.similarity_search(question, k=2)
    context = "\n".join(d.page_content for d in hits)
    return llm.invoke([("system", f"Answer from: {context}"), ("human", question)])


def main() -> dict[str, Any]:
    emb = CloudflareEmbeddings(config_profile="edge")
    llm = ChatCloudflare(config_profile="edge")
    store = InMemoryVectorStore(emb)
    store.add_documents([Document(page_content=t) for t in DOCS])
    answers = [ask(llm, store, "What does a cache hit cost?") for _ in range(2)]
    for n, a in enumerate(answers, 1):
        meta = a.response_metadata
        print(f"ask #{n}: {meta['model_name']} · cache {meta.get('gateway', {}).get('cache_status')} · "
              f"cost ${meta.get('cost')} · {a.content[:60]}")
    return {"answers": answers, "chat_model": llm.model, "embed_model": emb.model}


if __name__ == "__main__":
    from cfgateway import load_settings

    os.environ.setdefault("CFGATEWAY_CONFIG", PROFILES)
    if load_settings().api_token:
        main()
    else:
        from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
        from cfgateway.emulator.server import EmulatorServer

        config = EmulatorConfig(gateways={"edge-gw": GatewayConfig("demo-gateway-token")})
        with EmulatorServer(config) as server:
            print(f"(no CLOUDFLARE_API_TOKEN: the offline emulator at {server.url})")
            os.environ.update({"CLOUDFLARE_ACCOUNT_ID": "demo", "CLOUDFLARE_API_TOKEN": "demo-token",
                               "CLOUDFLARE_AI_GATEWAY_TOKEN": "demo-gateway-token",
                               "CLOUDFLARE_API_BASE_URL": server.base_url,
                               "CLOUDFLARE_AI_GATEWAY_BASE_URL": server.gateway_base_url})
            main()
