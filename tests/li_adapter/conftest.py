"""Fixtures for the LlamaIndex adapter tests: one emulator (with an authenticated gateway) per session,
a clean environment (no real Cloudflare credentials can leak in), LlamaIndex's global Settings restored
after each test, and counters for LLM events and for the usage the emulator reported."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from llama_index.core import Settings
from llama_index.core.callbacks import CBEventType
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)

from cfgateway.costs.catalog import default_catalog
from cfgateway.emulator.answers import answer
from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
from cfgateway.emulator.inputs import from_openai, from_workers
from cfgateway.emulator.server import EmulatorServer
from cfgateway.emulator.state import RecordedRequest

API_TOKEN = "test-token"
GW_TOKEN = "gw-token"


@pytest.fixture(autouse=True)
def _clean_env(cf_clean_env: None) -> None:
    """No credentials from the developer's shell, no cfgateway.toml (the emulator plugin's fixture)."""


@pytest.fixture(autouse=True)
def _restore_settings() -> Iterator[None]:
    """Tests that set llama_index's global Settings get them back afterwards."""
    saved = (Settings._llm, Settings._embed_model, Settings._callback_manager)
    yield
    Settings._llm, Settings._embed_model, Settings._callback_manager = saved


@pytest.fixture(scope="session")
def li_server() -> Iterator[EmulatorServer]:
    cfg = EmulatorConfig(gateways={"gw": GatewayConfig(auth_token=GW_TOKEN)})
    with EmulatorServer(cfg) as server:
        yield server


@pytest.fixture()
def emu(li_server: EmulatorServer) -> EmulatorServer:
    """The session emulator with its request log, faults and cache cleared."""
    li_server.state.clear()
    return li_server


def connection(server: EmulatorServer, *, gateway: bool = False, **extra: Any) -> dict[str, Any]:
    """Constructor arguments pointing an adapter class at ``server``."""
    return server.client_kwargs(gateway=gateway, api_token=API_TOKEN, **extra)


@pytest.fixture()
def conn(emu: EmulatorServer) -> Any:
    """``conn(gateway=False, **extra)`` -> constructor kwargs for the (cleared) emulator."""
    return lambda gateway=False, **extra: connection(emu, gateway=gateway, **extra)


# -- counting ------------------------------------------------------------------------------------


class LLMEventCounter(BaseEventHandler):
    """Counts LLM start/end instrumentation events (chat and completion)."""

    starts: int = 0
    ends: int = 0

    @classmethod
    def class_name(cls) -> str:
        return "LLMEventCounter"

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, (LLMChatStartEvent, LLMCompletionStartEvent)):
            self.starts += 1
        elif isinstance(event, (LLMChatEndEvent, LLMCompletionEndEvent)):
            self.ends += 1


class LLMCallbackCounter(BaseCallbackHandler):
    """Counts CBEventType.LLM start/end callbacks (what TokenCountingHandler sees)."""

    def __init__(self) -> None:
        super().__init__([], [])
        self.starts = 0
        self.ends = 0

    def on_event_start(self, event_type: Any, payload: Any = None, event_id: str = "", parent_id: str = "",
                       **kwargs: Any) -> str:
        self.starts += event_type == CBEventType.LLM
        return event_id

    def on_event_end(self, event_type: Any, payload: Any = None, event_id: str = "", **kwargs: Any) -> None:
        self.ends += event_type == CBEventType.LLM

    def start_trace(self, trace_id: Any = None) -> None:
        return None

    def end_trace(self, trace_id: Any = None, trace_map: Any = None) -> None:
        return None


@pytest.fixture()
def llm_events() -> Iterator[LLMEventCounter]:
    """Instrumentation LLM events counted on the root dispatcher for the test's duration."""
    counter = LLMEventCounter()
    root = get_dispatcher()
    root.add_event_handler(counter)
    try:
        yield counter
    finally:
        root.event_handlers.remove(counter)


@dataclass
class EmulatorUsage:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    per_request: list[tuple[int, int]] = field(default_factory=list)


def is_chat(r: RecordedRequest) -> bool:
    if "embeddings" in r.path:
        return False
    model = r.path.split("/ai/run/", 1)[-1] if "/ai/run/" in r.path else r.path.split("/workers-ai/", 1)[-1]
    info = default_catalog().get(model)
    return info is None or info.kind == "chat"


def emulator_usage(server: EmulatorServer) -> EmulatorUsage:
    """The usage the emulator reported for every chat request in its log, recomputed from the
    request bodies with the emulator's own deterministic answer function (not from our responses)."""
    out = EmulatorUsage()
    for r in server.state.requests:
        if not is_chat(r):
            continue
        if "/ai/run/" in r.path or "/workers-ai/@" in r.path:
            model = r.path.split("/ai/run/", 1)[-1] if "/ai/run/" in r.path else r.path.split("/workers-ai/", 1)[-1]
            info = default_catalog().get(model)
            inp = from_workers(r.json, legacy=info is None or info.shape == "legacy")
        else:
            inp = from_openai(r.json)
        ans = answer(inp)
        out.requests += 1
        out.prompt_tokens += ans.prompt_tokens
        out.completion_tokens += ans.completion_tokens
        out.per_request.append((ans.prompt_tokens, ans.completion_tokens))
    return out


def simple_tokenizer(text: str) -> list[str]:
    """A tokenizer for TokenCountingHandler so a fallback estimate never matches by luck (and no tiktoken)."""
    return ["x"] * (len(text) * 7 + 1)


@pytest.fixture()
def llm_callbacks() -> LLMCallbackCounter:
    """A fresh CBEventType.LLM counter (add it to a CallbackManager)."""
    return LLMCallbackCounter()


@pytest.fixture()
def usage_of() -> Any:
    """``usage_of(server) -> EmulatorUsage`` (see :func:`emulator_usage`)."""
    return emulator_usage


@pytest.fixture()
def token_counter() -> Any:
    """A TokenCountingHandler whose fallback estimates can never equal the real counts."""
    from llama_index.core.callbacks import TokenCountingHandler

    return TokenCountingHandler(tokenizer=simple_tokenizer)
