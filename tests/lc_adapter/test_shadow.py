"""Shadows under LangChain: ``ChatCloudflare(routing=RoutingPolicy.build(shadow=Shadow(...)))`` shadows invoke,
ainvoke, stream and astream; the messages LangChain returns are the same as without the shadow."""

from __future__ import annotations

import asyncio
from typing import Any

from cfgateway import CostTracker, RoutingPolicy, Shadow, flush_shadows
from cfgateway.costs.ledger import MemoryLedger
from langchain_cfgateway import ChatCloudflare

BASE, CAND = "openai/gpt-4o-mini", "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def test_every_kind_of_call_is_shadowed_and_answers_as_without(emu: Any, conn: Any) -> None:
    led = MemoryLedger()
    shadowed = ChatCloudflare(model=BASE, routing=RoutingPolicy.build(shadow=Shadow(CAND, sample=1.0)),
                              tracker=CostTracker(led), max_tokens=40, **conn(gateway=True))
    plain = ChatCloudflare(model=BASE, max_tokens=40, **conn(gateway=True))
    question = "Tell me about Lisbon"

    def texts(llm: ChatCloudflare) -> list[str]:
        out = [str(llm.invoke(question).content), str(asyncio.run(llm.ainvoke(question)).content)]
        out.append("".join(str(c.content) for c in llm.stream(question)))

        async def astream() -> str:
            return "".join([str(c.content) async for c in llm.astream(question)])

        out.append(asyncio.run(astream()))
        return out

    got, want = texts(shadowed), texts(plain)
    assert got == want and len(set(got)) == 1 and "Lisbon" in got[0]
    assert flush_shadows(30) == 0
    pairs = [r for r in led.records() if r.shadow_pair]
    assert len(pairs) == 4 and all(r.model == CAND and r.baseline == BASE and r.similarity == 1.0 for r in pairs)
    assert {r.call_id for r in pairs} == {r.call_id for r in led.records() if r.ok and r.model == BASE}
