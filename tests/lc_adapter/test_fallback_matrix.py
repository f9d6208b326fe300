"""Issue 5's acceptance matrix through LangChain: fault × mode × sync/async × invoke/stream.

Expectations (request log, answering route or error) are the core matrix's own table
(tests/core/test_fallback_matrix.py), loaded from that file so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk

from cfgateway import errors
from langchain_cfgateway import ChatCloudflare

_spec = importlib.util.spec_from_file_location("core_matrix", Path(__file__).parents[1] / "core" / "test_fallback_matrix.py")
assert _spec and _spec.loader
core = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(core)

# The adapter uses the default retry wait cap; a Retry-After far above it is never waited for.
FAULTS = {**core.FAULTS, "429-retry-after": dataclasses.replace(core.FAULTS["429-retry-after"], retry_after=30)}


def model(conn: Any, mode: str) -> ChatCloudflare:
    return ChatCloudflare(model=core.P, fallbacks=[core.F], fallback_mode=mode, timeout=0.4, max_retries=1,
                          **conn(gateway=True))


def run(llm: ChatCloudflare, sync: bool, kind: str) -> AIMessage | AIMessageChunk:
    prompt = "Tell me about Paris"
    if kind == "invoke":
        return llm.invoke(prompt) if sync else asyncio.run(llm.ainvoke(prompt))
    if sync:
        chunks = list(llm.stream(prompt))
    else:
        async def collect() -> list[AIMessageChunk]:
            return [c async for c in llm.astream(prompt)]
        chunks = asyncio.run(collect())
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    return total


@pytest.mark.parametrize("kind", ["invoke", "stream"])
@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("mode", ["client", "gateway"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_langchain_fault_matrix(emu: Any, conn: Any, fault: str, mode: str, sync: bool, kind: str) -> None:
    expected_log, outcome = core.EXPECT[(fault, mode, kind)]
    llm = model(conn, mode)
    emu.state.add_fault(FAULTS[fault])
    started = time.monotonic()
    if isinstance(outcome, type):
        with pytest.raises(outcome) as info:
            run(llm, sync, kind)
        if outcome is errors.StreamInterrupted:
            assert info.value.text
    else:
        msg = run(llm, sync, kind)
        assert "Paris" in str(msg.content)
        meta = msg.response_metadata
        assert meta["model_name"] == outcome
        attempts = meta["attempts"]
        assert attempts[-1]["model"] == outcome and attempts[-1]["outcome"] == "ok"
        if outcome == core.F:
            assert attempts[0]["model"] == core.P and attempts[0]["outcome"] != "ok"
        assert msg.usage_metadata and msg.usage_metadata["output_tokens"] > 0
    assert time.monotonic() - started < 3.0
    assert core.request_log(emu) == expected_log
