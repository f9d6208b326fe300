"""RAG with LlamaIndex on Cloudflare: CloudflareEmbedding -> VectorStoreIndex -> query engine and a
condense-plus-context chat engine on CloudflareLLM, with token counts and what it cost.

With CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID set it talks to Cloudflare; without them it
starts the offline emulator on loopback and talks to that.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.chat_engine.types import ChatMode
from llama_index.core.instrumentation.dispatcher import instrument_tags

from cfgateway import load_settings
from llama_index_cfgateway import CloudflareCostHandler, CloudflareEmbedding, CloudflareLLM

CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
EMBED_MODEL = "@cf/baai/bge-base-en-v1.5"
DOCS = [
    "Workers AI runs open models such as Llama and gpt-oss on Cloudflare's GPUs, billed in neurons.",
    "AI Gateway sits in front of any provider and adds caching, rate limits, logs and fallbacks.",
    "Vectorize is Cloudflare's vector database; embeddings from bge models have 768 dimensions.",
    "A neuron costs $0.011 per 1,000 and every account gets 10,000 free neurons per day.",
]


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


def main(question: str = "How much does a neuron cost?", **settings: Any) -> dict[str, Any]:
    tokens, cost = TokenCountingHandler(), CloudflareCostHandler()
    Settings.callback_manager = CallbackManager([tokens, cost])  # every LLM and embedding call reports here
    Settings.llm = CloudflareLLM(model=CHAT_MODEL, max_tokens=256, **settings)
    Settings.embed_model = CloudflareEmbedding(model_name=EMBED_MODEL, **settings)
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
    with instrument_tags({"user_id": "rag-demo"}):  # the user id for gateway logs and cost records
        response = index.as_query_engine(similarity_top_k=2).query(question)
        chat = index.as_chat_engine(chat_mode=ChatMode.CONDENSE_PLUS_CONTEXT)
        chat.chat(question)
        follow_up = chat.chat("And how many are free each day?")
    print(f"question: {question}")
    print("retrieved:\n" + "\n".join(f"- {n.node.get_content()}" for n in response.source_nodes))
    print(f"answer: {response}")
    print(f"follow-up: {follow_up}")
    print(f"LLM tokens: {tokens.prompt_llm_token_count} prompt + {tokens.completion_llm_token_count} completion "
          f"over {len(tokens.llm_token_counts)} calls")
    print(f"cost: ${cost.total_cost} (chat ${cost.llm_cost}, embeddings ${cost.embedding_cost})")
    return {"answer": response, "follow_up": follow_up, "tokens": tokens, "cost": cost}


if __name__ == "__main__":
    with connection() as kw:
        main(**kw)
