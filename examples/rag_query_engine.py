"""A LlamaIndex RAG query engine that names no model and no provider: what it runs on is configuration.

    CFGATEWAY_CHAT_MODEL=anthropic/claude-sonnet-4-5 CFGATEWAY_EMBED_MODEL=@cf/baai/bge-base-en-v1.5 \\
    CLOUDFLARE_AI_GATEWAY_ID=my-gw python examples/rag_query_engine.py

The same file runs on Workers AI direct, through an authenticated gateway with fallbacks, on OpenAI with
DeepInfra embeddings or on Google AI Studio (tests/test_config_matrix.py runs it unchanged under five
configurations). With no CLOUDFLARE_API_TOKEN it starts the offline emulator and points itself at it.
"""

from __future__ import annotations

import os
from typing import Any

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager
from llama_index.core.instrumentation.dispatcher import instrument_tags

from llama_index_cfgateway import CloudflareCostHandler, CloudflareEmbedding, CloudflareLLM

DOCS = [
    "Workers AI runs open models such as Llama and gpt-oss on Cloudflare's GPUs, billed in neurons.",
    "AI Gateway sits in front of any provider and adds caching, rate limits, logs and fallbacks.",
    "Vectorize is Cloudflare's vector database; embeddings from bge models have 768 dimensions.",
    "A neuron costs $0.011 per 1,000 and every account gets 10,000 free neurons per day.",
]


def main(question: str = "How much does a neuron cost?") -> dict[str, Any]:
    cost = CloudflareCostHandler()
    Settings.callback_manager = CallbackManager([cost])
    Settings.llm = CloudflareLLM(max_tokens=256)          # model, fallbacks, gateway: all from configuration
    Settings.embed_model = CloudflareEmbedding()
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
    with instrument_tags({"user_id": "rag-query-engine"}):
        response = index.as_query_engine(similarity_top_k=2).query(question)
    llm, emb = Settings.llm, Settings.embed_model
    assert isinstance(llm, CloudflareLLM) and isinstance(emb, CloudflareEmbedding)
    print(f"chat: {llm.model} · embed: {emb.model_name}")
    print(f"answer: {response}")
    print(f"cost: ${cost.total_cost} (chat ${cost.llm_cost}, embeddings ${cost.embedding_cost})")
    return {"answer": str(response), "chat_model": llm.model, "embed_model": emb.model_name, "cost": cost}


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
