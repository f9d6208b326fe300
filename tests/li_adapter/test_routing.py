"""Per-call user id and metadata choose the route (tiers, rollout) and reach cf-aig-metadata."""

from __future__ import annotations

import json
from typing import Any

from llama_index.core.base.llms.types import ChatMessage

from cfgateway import Rollout, RoutingPolicy, TierRule
from llama_index_cfgateway import CloudflareLLM

OLD, NEW, PREMIUM = "@cf/meta/llama-3.1-8b-instruct", "@cf/meta/llama-3.3-70b-instruct-fp8-fast", "openai/gpt-4o-mini"
MSG = [ChatMessage(role="user", content="hi")]


def test_tier_and_rollout_per_call(emu: Any, conn: Any) -> None:
    policy = RoutingPolicy.build(rollout=Rollout(NEW, 50, OLD), tiers=[TierRule({"tier": "premium"}, PREMIUM)])
    llm = CloudflareLLM(model=OLD, routing=policy, **conn(gateway=True))
    premium = llm.chat(MSG, user="u1", metadata={"tier": "premium"})
    assert premium.additional_kwargs["model_name"] == PREMIUM
    assert json.loads(emu.state.requests[0].headers["cf-aig-metadata"])["user"] == "u1"
    users = [f"user-{i}" for i in range(40)]
    picks = {u: llm.chat(MSG, user=u).additional_kwargs["model_name"] for u in users}
    assert set(picks.values()) == {OLD, NEW}
    assert all(llm.chat(MSG, user=u).additional_kwargs["model_name"] == picks[u] for u in users[:8])  # sticky
