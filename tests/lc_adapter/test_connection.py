"""The LangChain classes resolve through the core connection helper: the model, fallbacks and dimensions from
configuration when the code names none, ``dimensions=`` passed through, the same errors as LlamaIndex."""

from __future__ import annotations

import pytest

from cfgateway import ConfigError, InvalidInputError
from cfgateway.emulator.config import Fault
from cfgateway.emulator.server import EmulatorServer
from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings


def test_models_and_fallbacks_come_from_the_environment(emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFGATEWAY_CHAT_MODEL", "anthropic/claude-sonnet-4-5")
    monkeypatch.setenv("CFGATEWAY_FALLBACKS", "openai/gpt-4o-mini")
    monkeypatch.setenv("CFGATEWAY_EMBED_MODEL", "@cf/baai/bge-m3")
    kw = emu.client_kwargs(gateway=True)
    llm, emb = ChatCloudflare(**kw), CloudflareEmbeddings(**kw)
    assert (llm.model, llm.fallbacks, emb.model) == ("anthropic/claude-sonnet-4-5", ["openai/gpt-4o-mini"],
                                                     "@cf/baai/bge-m3")
    assert llm.invoke("hello").content == "You said: hello"
    assert emu.state.requests[-1].path == "/v1/acct/gw/anthropic/v1/messages"
    assert ChatCloudflare(model="groq/llama-3.1-8b-instant", **kw).model == "groq/llama-3.1-8b-instant"  # args win
    assert ChatCloudflare(fallbacks=[], **kw).fallbacks == []


def test_dimensions_reach_the_route_and_the_fallback(emu: EmulatorServer) -> None:
    emb = CloudflareEmbeddings(model="@cf/baai/bge-m3", fallbacks=["openai/text-embedding-3-small"], dimensions=1024,
                               **emu.client_kwargs(gateway=True))
    emu.state.add_fault(Fault(path="*/workers-ai/*", kind="error", status=429, code=3040))
    vectors = emb.embed_documents(["a", "b"])
    assert [len(v) for v in vectors] == [1024, 1024]
    assert emu.state.requests[-1].json["dimensions"] == 1024
    with pytest.raises(InvalidInputError, match="cannot shorten them to dimensions=512"):
        CloudflareEmbeddings(model="@cf/baai/bge-base-en-v1.5", dimensions=512,
                             **emu.client_kwargs()).embed_query("x")
    assert not any(r.path.endswith("bge-base-en-v1.5") for r in emu.state.requests)


def test_errors_are_the_same_kind_as_llama_index() -> None:
    with pytest.raises(TypeError, match="unknown argument"):
        ChatCloudflare(modle="x")
    with pytest.raises(ConfigError, match="CLOUDFLARE_ACCOUNT_ID"):
        ChatCloudflare(api_token="t")
