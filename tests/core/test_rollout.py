"""Rollout by consistent hashing, tier rules and the routing policy (no network)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cfgateway.errors import ConfigError
from cfgateway.routing.rollout import Rollout, RouteChoice, RoutingPolicy, TierRule, bucket, order_routes
from cfgateway.types import CallContext

OLD = "@cf/meta/llama-3.1-8b-instruct"
NEW = "@cf/google/gemma-4-26b-a4b-it"
USERS = [f"user-{i}" for i in range(10_000)]


@pytest.mark.parametrize("percent", [1, 10, 50, 90])
def test_percentage_over_10000_users_within_one_point(percent: float) -> None:
    r = Rollout(NEW, percent)
    share = sum(r.includes(u) for u in USERS) / len(USERS) * 100
    assert abs(share - percent) <= 1


def test_same_user_same_route_every_time_and_growth_keeps_earlier_users() -> None:
    r10, r50 = Rollout(NEW, 10), Rollout(NEW, 50)
    first = [r10.choose(u, OLD) for u in USERS]
    assert first == [r10.choose(u, OLD) for u in USERS]
    in10 = {u for u in USERS if r10.includes(u)}
    in50 = {u for u in USERS if r50.includes(u)}
    assert in10 < in50  # 10% -> 50% only adds users
    assert Rollout(NEW, 0).includes("x") is False and all(Rollout(NEW, 100).includes(u) for u in USERS[:500])


def test_bucket_is_stable_across_processes() -> None:
    code = "from cfgateway.routing.rollout import bucket; print(bucket('user-123', 'salt'), bucket('user-9', ''))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in out] == [bucket("user-123", "salt"), bucket("user-9", "")]
    assert 0 <= bucket("anything") < 10_000


def test_salt_changes_the_users_picked() -> None:
    a = {u for u in USERS if Rollout(NEW, 10, salt="a").includes(u)}
    b = {u for u in USERS if Rollout(NEW, 10, salt="b").includes(u)}
    assert a != b and abs(len(a) - len(b)) < 200


def test_no_user_stays_on_the_old_route_and_bad_percent() -> None:
    assert Rollout(NEW, 99.9).choose(None, OLD) == OLD
    assert Rollout(NEW, 50, old_route="openai/gpt-4o-mini").choose(None, OLD) == "openai/gpt-4o-mini"
    with pytest.raises(ConfigError):
        Rollout(NEW, 101)


def test_tier_rules_match_metadata_user_sets_and_callables() -> None:
    assert TierRule({"tier": "premium"}, "m").matches(CallContext(metadata={"tier": "premium"}))
    assert not TierRule({"tier": "premium"}, "m").matches(CallContext(metadata={"tier": "free"}))
    assert TierRule({"tier": {"gold", "platinum"}}, "m").matches(CallContext(metadata={"tier": "gold"}))
    assert TierRule({"user": "alice"}, "m").matches(CallContext(user="alice"))
    assert TierRule({"seats": lambda v: (v or 0) > 10}, "m").matches(CallContext(metadata={"seats": 20}))
    assert not TierRule({"tier": "premium", "region": "eu"}, "m").matches(CallContext(metadata={"tier": "premium"}))


def test_policy_tiers_first_then_rollout_then_default() -> None:
    policy = RoutingPolicy.build(
        rollout=Rollout(NEW, 100), tiers=[TierRule({"tier": "premium"}, "openai/gpt-4o", fallbacks=["openai/gpt-4.1"])]
    )
    assert policy is not None
    premium = policy.choose(CallContext(user="u1", metadata={"tier": "premium"}), OLD)
    assert premium == RouteChoice("openai/gpt-4o", ("openai/gpt-4.1",), "tier:0")
    assert policy.choose(CallContext(user="u1"), OLD).model == NEW
    assert policy.choose(CallContext(), OLD) == RouteChoice(OLD, None, "default")
    assert policy.models() == ["openai/gpt-4o", "openai/gpt-4.1", NEW]
    assert RoutingPolicy.build() is None


def test_custom_router_and_route_order() -> None:
    policy = RoutingPolicy(custom=lambda ctx: "openai/gpt-4o" if ctx.metadata.get("vip") else None)
    assert policy.choose(CallContext(metadata={"vip": True}), OLD).model == "openai/gpt-4o"
    assert policy.choose(CallContext(), OLD).model == OLD
    chain = [OLD, "openai/gpt-4o-mini"]
    assert order_routes(RouteChoice(NEW), chain) == [NEW, OLD, "openai/gpt-4o-mini"]
    assert order_routes(RouteChoice("openai/gpt-4o-mini"), chain) == ["openai/gpt-4o-mini", OLD]
    assert order_routes(RouteChoice(NEW, ("x/y",)), chain) == [NEW, "x/y"]
