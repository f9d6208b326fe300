"""Issue 5's acceptance matrix through LlamaIndex: fault × mode × sync/async × chat/stream_chat.

Expectations come from the core matrix's table (tests/core/test_fallback_matrix.py), loaded from
that file so the two cannot drift apart. Every case also emits exactly one LLM start/end pair.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse

from cfgateway import errors
from llama_index_cfgateway import CloudflareLLM

_spec = importlib.util.spec_from_file_location("core_matrix", Path(__file__).parents[1] / "core" / "test_fallback_matrix.py")
assert _spec and _spec.loader
core = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(core)

FAULTS = {**core.FAULTS, "429-retry-after": dataclasses.replace(core.FAULTS["429-retry-after"], retry_after=30)}
MESSAGES = [ChatMessage(role="user", content="Tell me about Paris")]


def run(llm: CloudflareLLM, sync: bool, kind: str) -> ChatResponse:
    if kind == "invoke":
        return llm.chat(MESSAGES) if sync else asyncio.run(llm.achat(MESSAGES))
    if sync:
        return list(llm.stream_chat(MESSAGES))[-1]

    async def collect() -> ChatResponse:
        last = None
        async for r in await llm.astream_chat(MESSAGES):
            last = r
        assert last is not None
        return last

    return asyncio.run(collect())


@pytest.mark.parametrize("kind", ["invoke", "stream"])
@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("mode", ["client", "gateway"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_llamaindex_fault_matrix(emu: Any, conn: Any, llm_events: Any, fault: str, mode: str, sync: bool,
                                 kind: str) -> None:
    expected_log, outcome = core.EXPECT[(fault, mode, kind)]
    llm = CloudflareLLM(model=core.P, fallbacks=[core.F], fallback_mode=mode, timeout=0.4, max_retries=1,
                        **conn(gateway=True))
    emu.state.add_fault(FAULTS[fault])
    started = time.monotonic()
    if isinstance(outcome, type):
        with pytest.raises(outcome) as info:
            run(llm, sync, kind)
        if outcome is errors.StreamInterrupted:
            assert info.value.text
    else:
        resp = run(llm, sync, kind)
        assert "Paris" in (resp.message.content or "")
        extra = resp.additional_kwargs
        assert extra["model_name"] == outcome
        assert extra["attempts"][-1]["model"] == outcome and extra["attempts"][-1]["outcome"] == "ok"
        if outcome == core.F:
            assert extra["attempts"][0]["model"] == core.P and extra["attempts"][0]["outcome"] != "ok"
        assert resp.raw["usage"]["completion_tokens"] > 0
        assert (llm_events.starts, llm_events.ends) == (1, 1)  # one pair per call, fallback included
    assert time.monotonic() - started < 3.0
    assert core.request_log(emu) == expected_log
