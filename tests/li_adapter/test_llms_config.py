"""Constructor fields: arguments, environment and config profile; secrets never shown or serialised;
unknown arguments refused; the import stays lazy."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.callbacks import CallbackManager, CBEventType
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from pydantic import SecretStr

from cfgateway import ConfigError
from cfgateway.routing.routes import GatewayOptions
from llama_index_cfgateway import CloudflareEmbedding, CloudflareLLM

USER = [ChatMessage(role="user", content="Hello there friend")]


@pytest.mark.parametrize("cls", [CloudflareLLM, CloudflareEmbedding])
def test_secrets_never_in_repr_dumps_payloads_or_errors(cls: Any, conn: Any) -> None:
    obj = cls(**conn(gateway=True))
    assert isinstance(obj.api_token, SecretStr) and obj.api_token.get_secret_value() == "test-token"
    shown = [repr(obj), str(obj), obj.to_json(), str(obj.to_dict()), obj.model_dump_json(), str(obj.model_dump()),
             str(obj.to_payload()), repr(obj.settings)]
    for text in shown:
        assert "test-token" not in text and "gw-token" not in text
    assert "api_token" not in obj.to_dict() and "gateway_token" not in obj.to_dict()


def test_event_payloads_carry_no_secret(conn: Any) -> None:
    seen: list[str] = []

    class Spy(BaseCallbackHandler):
        def __init__(self) -> None:
            super().__init__([], [])

        def on_event_start(self, event_type: Any, payload: Any = None, event_id: str = "", parent_id: str = "",
                           **kw: Any) -> str:
            if event_type == CBEventType.LLM:
                seen.append(repr(payload))
            return event_id

        def on_event_end(self, event_type: Any, payload: Any = None, event_id: str = "", **kw: Any) -> None:
            seen.append(repr(payload))

        def start_trace(self, trace_id: Any = None) -> None: ...

        def end_trace(self, trace_id: Any = None, trace_map: Any = None) -> None: ...

    llm = CloudflareLLM(callback_manager=CallbackManager([Spy()]), **conn(gateway=True))
    llm.chat(USER)
    assert seen and all("test-token" not in s and "gw-token" not in s for s in seen)
    assert "'gateway_id': 'gw'" in seen[0]


def test_pickle_round_trip_keeps_working(conn: Any, emu: Any, caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    llm = CloudflareLLM(**conn())
    emb = CloudflareEmbedding(**conn())
    llm.chat(USER)  # builds the pooled client, which is not pickled
    asyncio.run(emb.aget_text_embedding_batch(["a", "b"]))  # builds a per-loop semaphore, not pickled either
    with caplog.at_level("WARNING"):
        llm_copy, emb_copy = pickle.loads(pickle.dumps((llm, emb)))
    assert "unpickleable" not in caplog.text
    assert llm_copy.chat(USER).message.content == "You said: Hello there friend"
    assert emb_copy.get_text_embedding("a") == emb.get_text_embedding("a")
    assert llm._cf_client is not None  # the original keeps its pool


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acct")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "env-token")
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", emu.base_url)
    monkeypatch.setenv("BASE_URL", "http://192.0.2.1/never-used")  # only CLOUDFLARE_* variables are read
    llm = CloudflareLLM()
    assert llm.account_id == "acct" and llm.api_token is not None
    assert llm.chat(USER).message.content == "You said: Hello there friend"
    assert emu.state.requests[0].path.startswith("/client/v4/accounts/acct/ai/run/")


def test_settings_from_a_config_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emu: Any) -> None:
    cfg = tmp_path / "cfgateway.toml"
    cfg.write_text(
        f'account_id = "acct"\n\n[profiles.emu]\napi_token = "file-token"\nbase_url = "{emu.base_url}"\n'
        f'timeout = 5\n', encoding="utf-8",
    )
    monkeypatch.setenv("CFGATEWAY_CONFIG", str(cfg))
    llm = CloudflareLLM(profile="emu")
    assert llm.settings.timeout == 5.0 and llm.settings.base_url == emu.base_url
    assert llm.complete("hi").text == "You said: hi"
    with pytest.raises(ConfigError, match="nope"):
        CloudflareLLM(profile="nope")


def test_missing_credentials_fail_at_construction_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="CLOUDFLARE_API_TOKEN"):
        CloudflareLLM(account_id="acct")
    with pytest.raises(ConfigError, match="CLOUDFLARE_AI_GATEWAY_TOKEN"):
        CloudflareLLM(model="openai/gpt-4o-mini", account_id="acct", api_token="t", gateway_id="gw")
    with pytest.raises(ConfigError, match="no provider"):
        CloudflareEmbedding(model_name="bge-base", account_id="acct", api_token="t")


def test_unknown_constructor_argument_is_refused(conn: Any) -> None:
    with pytest.raises(TypeError, match="temprature"):
        CloudflareLLM(temprature=0.1, **conn())
    with pytest.raises(TypeError, match="batch_size"):
        CloudflareEmbedding(batch_size=10, **conn())


def test_aliases_and_dict_gateway_options(conn: Any, emu: Any) -> None:
    kw = conn(gateway=True)
    kw["api_key"] = kw.pop("api_token")
    llm = CloudflareLLM(model_name="openai/gpt-4o-mini", gateway_options={"cache_ttl": 60}, **kw)
    assert llm.model == "openai/gpt-4o-mini" and isinstance(llm.gateway_options, GatewayOptions)
    llm.chat(USER)
    assert emu.state.requests[0].headers["cf-aig-cache-ttl"] == "60"
    emb = CloudflareEmbedding(model="@cf/baai/bge-m3", **conn())
    assert emb.model_name == "@cf/baai/bge-m3"


def test_timeout_and_retries_reach_the_client(conn: Any) -> None:
    llm = CloudflareLLM(timeout=3.5, max_retries=0, **conn())
    assert llm.settings.timeout == 3.5 and llm.settings.max_retries == 0
    client = llm._client()
    assert client.settings.timeout == 3.5 and client is llm._client()  # built once, pooled


def test_import_is_lazy() -> None:
    code = (
        "import sys, llama_index_cfgateway as m\n"
        "assert 'llama_index.core' not in sys.modules, 'core imported by the bare import'\n"
        "m.CloudflareLLM, m.CloudflareEmbedding, m.CloudflareCostHandler\n"
        "assert 'httpx' not in sys.modules, 'httpx imported before the first call'\n"
        "assert not any(k.startswith('langchain') for k in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_plain_string_tokens_are_stored_as_secrets(cf_clean_env: None) -> None:
    from pydantic import SecretStr

    llm = CloudflareLLM(model="@cf/meta/llama-3.1-8b-instruct", account_id="acct", api_token="tok-123456",
                        gateway_id="gw", gateway_token="gw-987654")
    assert isinstance(llm.api_token, SecretStr) and llm.api_token.get_secret_value() == "tok-123456"
    assert isinstance(llm.gateway_token, SecretStr)
    assert "tok-123456" not in repr(llm) and "gw-987654" not in repr(llm) and "tok-123456" not in llm.to_json()
