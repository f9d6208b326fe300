"""CloudflareCostHandler's totals agree with its per-model lines when embeddings are counted."""

from __future__ import annotations

from typing import Any

from llama_index.core.callbacks import CallbackManager

from cfgateway.emulator.answers import count_tokens
from llama_index_cfgateway import CloudflareCostHandler, CloudflareEmbedding, CloudflareLLM

TEXTS = [f"passage {i} on Workers AI pricing" for i in range(600)]


def test_total_tokens_include_embeddings(conn: Any, emu: Any) -> None:
    cost = CloudflareCostHandler()
    emb = CloudflareEmbedding(callback_manager=CallbackManager([cost]), **conn())
    emb.get_text_embedding_batch(TEXTS)
    tokens = sum(count_tokens(t) for t in TEXTS)
    line = cost.by_model[emb.model_name]
    assert line.prompt_tokens == tokens == cost.embedding_tokens == cost.total_tokens  # was total_tokens 0
    assert cost.prompt_tokens == 0 and cost.neurons == line.neurons > 0
    llm = CloudflareLLM(model="@cf/meta/llama-3.3-70b-instruct-fp8-fast", callback_manager=CallbackManager([cost]),
                        **conn())
    llm.complete("Hello")
    assert cost.total_tokens == sum(x.total_tokens for x in cost.by_model.values())
    assert cost.total_tokens == tokens + cost.prompt_tokens + cost.completion_tokens and cost.prompt_tokens > 0
