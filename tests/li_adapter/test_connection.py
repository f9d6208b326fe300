"""The LlamaIndex classes resolve through the core connection helper: the model, fallbacks and dimensions from
configuration when the code names none, ``dimensions=`` passed through, the same errors as LangChain."""

from __future__ import annotations

from typing import Any

import pytest

from cfgateway import ConfigError
from cfgateway.emulator.config import Fault
from llama_index_cfgateway import CloudflareEmbedding, CloudflareLLM


def test_models_and_fallbacks_come_from_the_environment(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFGATEWAY_CHAT_MODEL", "anthropic/claude-sonnet-4-5")
    monkeypatch.setenv("CFGATEWAY_EMBED_MODEL", "@cf/baai/bge-m3")
    monkeypatch.setenv("CFGATEWAY_EMBED_FALLBACKS", "openai/text-embedding-3-small")
    monkeypatch.setenv("CFGATEWAY_EMBED_DIMENSIONS", "1024")
    kw = emu.client_kwargs(gateway=True)
    llm, emb = CloudflareLLM(**kw), CloudflareEmbedding(**kw)
    assert llm.model == "anthropic/claude-sonnet-4-5" and llm.metadata.model_name == "anthropic/claude-sonnet-4-5"
    assert (emb.model_name, emb.fallbacks, emb.dimensions) == ("@cf/baai/bge-m3", ["openai/text-embedding-3-small"],
                                                               1024)
    assert llm.complete("hello").text == "You said: hello"
    emu.state.add_fault(Fault(path="*/workers-ai/*", kind="error", status=429, code=3040))
    assert len(emb.get_text_embedding("x")) == 1024
    assert emu.state.requests[-1].json["dimensions"] == 1024
    assert CloudflareLLM(model_name="groq/llama-3.1-8b-instant", **kw).model == "groq/llama-3.1-8b-instant"


def test_errors_are_the_same_kind_as_langchain() -> None:
    with pytest.raises(TypeError, match="unknown argument"):
        CloudflareLLM(modle="x")
    with pytest.raises(ConfigError, match="CLOUDFLARE_ACCOUNT_ID"):
        CloudflareLLM(api_token="t")
