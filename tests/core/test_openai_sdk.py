"""The no-proxy path: cfgateway.openai_client()/async_openai_client() (the real openai SDK against the emulator)
and autogen_model_info()."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

import cfgateway
from cfgateway import ConfigError, GatewayOptions, load_settings

MSG = [{"role": "user", "content": "Tell me about Paris"}]


def settings(emu: Any, **kw: Any) -> Any:
    return load_settings(env={}, max_retries=0, **emu.client_kwargs(**kw))


def test_workers_ai_v1_without_a_gateway(cf_emulator: Any) -> None:
    client = cfgateway.openai_client(settings=settings(cf_emulator))
    assert str(client.base_url).rstrip("/").endswith("/client/v4/accounts/acct/ai/v1")
    r = client.chat.completions.create(model="@cf/meta/llama-3.1-8b-instruct", messages=MSG)  # type: ignore[arg-type]
    assert "Paris" in (r.choices[0].message.content or "") and r.usage and r.usage.total_tokens > 0
    e = client.embeddings.create(model="@cf/baai/bge-small-en-v1.5", input=["a", "b"], encoding_format="float")
    assert len(e.data) == 2 and len(e.data[0].embedding) == 384
    with pytest.raises(ConfigError, match="needs AI Gateway"):
        cfgateway.openai_client("openai/gpt-4o-mini", settings=settings(cf_emulator))


def test_gateway_compat_with_stored_keys_and_metadata(cf_emulator: Any) -> None:
    opts = GatewayOptions(metadata={"team": "search"}, cache_ttl=120)
    client = cfgateway.openai_client(settings=settings(cf_emulator, gateway=True), gateway_options=opts)
    assert str(client.base_url).rstrip("/").endswith("/v1/acct/gw/compat")
    r = client.chat.completions.create(model="openai/gpt-4o-mini", messages=MSG,  # type: ignore[arg-type]
                                       extra_headers={"cf-aig-metadata": json.dumps({"run": "r-1"})})
    assert "Paris" in (r.choices[0].message.content or "")
    w = client.chat.completions.create(model="workers-ai/@cf/meta/llama-3.1-8b-instruct", messages=MSG)  # type: ignore[arg-type]
    assert "Paris" in (w.choices[0].message.content or "")
    sent = [q for q in cf_emulator.state.requests if q.path.endswith("/compat/chat/completions")]
    assert sent[0].headers["cf-aig-authorization"] == "Bearer gw-token"
    assert json.loads(sent[0].headers["cf-aig-metadata"]) == {"run": "r-1"}  # per call wins over the default
    assert json.loads(sent[1].headers["cf-aig-metadata"]) == {"team": "search"} and sent[1].headers["cf-aig-cache-ttl"] == "120"


def test_async_client(cf_emulator: Any) -> None:
    async def go() -> str:
        client = cfgateway.async_openai_client(settings=settings(cf_emulator))
        r = await client.chat.completions.create(model="@cf/meta/llama-3.1-8b-instruct", messages=MSG)  # type: ignore[arg-type]
        await client.close()
        return r.choices[0].message.content or ""

    assert "Paris" in asyncio.run(go())


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch, cf_emulator: Any) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"cfgateway\[openai\]"):
        cfgateway.openai_client(settings=settings(cf_emulator))


def test_autogen_model_info_from_the_catalog() -> None:
    info = cfgateway.autogen_model_info("openai/gpt-4o-mini")
    assert info == {"vision": True, "function_calling": True, "json_output": True, "structured_output": True,
                    "family": "gpt-4o", "multiple_system_messages": True}
    assert cfgateway.autogen_model_info("@cf/meta/llama-4-scout-17b-16e-instruct")["family"] == "llama-4-scout"
    unknown = cfgateway.autogen_model_info("@cf/someone/new-model")
    assert unknown["function_calling"] is False and unknown["family"] == "unknown"
