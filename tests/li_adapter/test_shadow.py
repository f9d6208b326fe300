"""Shadows under LlamaIndex: ``CloudflareLLM(routing=RoutingPolicy.build(shadow=Shadow(...)))`` shadows chat,
achat, stream_chat and astream_chat; the answers are the same as without the shadow."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.llms.types import ChatMessage

from cfgateway import CostTracker, RoutingPolicy, Shadow, flush_shadows
from cfgateway.costs.ledger import MemoryLedger
from llama_index_cfgateway import CloudflareLLM

BASE, CAND = "openai/gpt-4o-mini", "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
MSG = [ChatMessage(role="user", content="Tell me about Porto")]


def texts(llm: CloudflareLLM) -> list[str]:
    out = [str(llm.chat(MSG).message.content), str(asyncio.run(llm.achat(MSG)).message.content)]
    out.append([c for c in llm.stream_chat(MSG)][-1].message.content or "")

    async def astream() -> str:
        last = ""
        async for c in await llm.astream_chat(MSG):
            last = c.message.content or ""
        return last

    out.append(asyncio.run(astream()))
    return out


def test_every_kind_of_call_is_shadowed_and_answers_as_without(emu: Any, conn: Any) -> None:
    led = MemoryLedger()
    shadowed = CloudflareLLM(model=BASE, routing=RoutingPolicy.build(shadow=Shadow(CAND, sample=1.0)),
                             tracker=CostTracker(led), max_tokens=40, **conn(gateway=True))
    plain = CloudflareLLM(model=BASE, max_tokens=40, **conn(gateway=True))
    got, want = texts(shadowed), texts(plain)
    assert got == want and len(set(got)) == 1 and "Porto" in got[0]
    assert flush_shadows(30) == 0
    pairs = [r for r in led.records() if r.shadow_pair]
    assert len(pairs) == 4 and all(r.model == CAND and r.baseline == BASE and r.similarity == 1.0 for r in pairs)
    assert {r.call_id for r in pairs} == {r.call_id for r in led.records() if r.ok and r.model == BASE}
