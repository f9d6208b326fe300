"""Per-call user id and metadata from LangChain's config choose the route and reach cf-aig-metadata."""

from __future__ import annotations

import json
from typing import Any

from cfgateway import Rollout, RoutingPolicy, TierRule
from langchain_cfgateway import ChatCloudflare

OLD, NEW, PREMIUM = "@cf/meta/llama-3.1-8b-instruct", "@cf/meta/llama-3.3-70b-instruct-fp8-fast", "openai/gpt-4o-mini"


def test_tier_and_rollout_from_config_metadata(emu: Any, conn: Any) -> None:
    policy = RoutingPolicy.build(rollout=Rollout(NEW, 50, OLD), tiers=[TierRule({"tier": "premium"}, PREMIUM)])
    llm = ChatCloudflare(model=OLD, routing=policy, **conn(gateway=True))
    premium = llm.invoke("hi", config={"metadata": {"user_id": "u1", "tier": "premium"}})
    assert premium.response_metadata["model_name"] == PREMIUM
    users = [f"user-{i}" for i in range(40)]
    for user in users[:10]:
        msg = llm.invoke("hi", config={"metadata": {"user_id": user}})
        again = llm.invoke("hi", config={"metadata": {"user_id": user}})
        assert msg.response_metadata["model_name"] == again.response_metadata["model_name"]  # sticky per user
        assert msg.response_metadata["model_name"] in (OLD, NEW)
    chosen = {llm.invoke("hi", config={"metadata": {"user_id": u}}).response_metadata["model_name"] for u in users}
    assert chosen == {OLD, NEW}  # a 50% rollout over 40 users uses both routes
    sent = emu.state.requests[0].headers["cf-aig-metadata"]
    assert json.loads(sent)["user"] == "u1"


def test_images_to_a_text_only_model_fail_before_sending(emu: Any, conn: Any) -> None:
    import pytest
    from langchain_core.messages import HumanMessage

    from cfgateway import InvalidInputError

    img = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    msg = HumanMessage(content=[{"type": "text", "text": "what is this?"}, img])
    with pytest.raises(InvalidInputError, match="does not take images"):
        ChatCloudflare(model=NEW, **conn()).invoke([msg])
    assert emu.state.requests == []
    vision = ChatCloudflare(model="@cf/meta/llama-3.2-11b-vision-instruct", **conn()).invoke([msg])
    assert vision.content and len(emu.state.requests) == 1
