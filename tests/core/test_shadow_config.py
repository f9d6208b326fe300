"""A shadow from configuration: the ``[profiles.x.shadow]`` table and ``CFGATEWAY_SHADOW``, built into the
routing policy by the connection helper (what the adapters and ``connect`` use)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cfgateway import ChatRequest, Message, Rollout, RoutingPolicy, Shadow, connect, flush_shadows, load_settings
from cfgateway.connection import resolve_connection, with_shadow
from cfgateway.costs.ledger import SQLiteLedger
from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.errors import ConfigError
from cfgateway.fallback import FallbackChain

BASE = "openai/gpt-4o-mini"
CAND = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def profile(tmp_path: Path, shadow: str) -> Path:
    cfg = tmp_path / "cfgateway.toml"
    cfg.write_text(f'[profiles.prod]\nchat_model = "{BASE}"\nledger = "sqlite:///{tmp_path / "l.db"}"\n\n'
                   f"[profiles.prod.shadow]\n{shadow}\n")
    return cfg


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(gateways={"gw": GatewayConfig(auth_token="gw-token")})) as s:
        yield s


def test_a_profile_shadow_reaches_the_chain(server: EmulatorServer, tmp_path: Path) -> None:
    cfg = profile(tmp_path, f'candidate = "{CAND}"\nsample = 1.0\nmax_cost = 2\nsimilarity_model = '
                            '"@cf/baai/bge-small-en-v1.5"')
    kw = server.client_kwargs(gateway=True)
    client = connect("chat", profile="prod", config_path=str(cfg), **kw)
    assert isinstance(client, FallbackChain) and client.shadows is not None
    assert client.shadows.shadow == Shadow(CAND, sample=1.0, max_cost=Decimal(2),
                                           similarity_model="@cf/baai/bge-small-en-v1.5")
    assert client.shadows.baseline == BASE
    answer = client.chat(ChatRequest([Message("user", "hello")], max_tokens=16))
    assert flush_shadows(30) == 0 and answer.model == BASE
    pairs = [r for r in SQLiteLedger(tmp_path / "l.db").records() if r.shadow_pair]
    assert len(pairs) == 1 and pairs[0].similarity == 1.0 and pairs[0].model == CAND
    client.close()


def test_the_environment_form_and_its_errors(tmp_path: Path) -> None:
    s = load_settings(env={"CFGATEWAY_SHADOW": f"{CAND}:0.25"})
    assert dict(s.shadow) == {"candidate": CAND, "sample": 0.25} and s.sources["shadow"] == "env CFGATEWAY_SHADOW"
    for value, match in [(f"{CAND}@lots", "share from 0 to 1"), ("nocolon", "CANDIDATE@SAMPLE"),
                         (f"{CAND}:lots", "CANDIDATE@SAMPLE"), ("bad model:0.1", "model")]:
        with pytest.raises(ConfigError, match=match):
            load_settings(env={"CFGATEWAY_SHADOW": value})
    with pytest.raises(ConfigError, match="unknown key.*colour.*known: candidate, sample"):
        load_settings(profile="prod", config_path=str(profile(tmp_path, f'candidate = "{CAND}"\ncolour = 1')), env={})
    with pytest.raises(ConfigError, match="shadow max_cost must not be negative"):
        load_settings(profile="prod", config_path=str(profile(tmp_path, f'candidate = "{CAND}"\nmax_cost = -1')),
                      env={})
    with pytest.raises(ConfigError, match="must be 'call' or 'user'"):  # checked in full when the client is built
        resolve_connection("chat", settings=load_settings(
            profile="prod", config_path=str(profile(tmp_path, f'candidate = "{CAND}"\nby = "team"')), env={}),
            check_routes=False)


def test_only_chat_connections_get_the_shadow(tmp_path: Path) -> None:
    s = load_settings(env={"CFGATEWAY_SHADOW": f"{CAND}:0.1"})
    assert resolve_connection("chat", model=BASE, settings=s, check_routes=False).shadow == Shadow(CAND)
    assert resolve_connection("embed", model="@cf/baai/bge-base-en-v1.5", settings=s, check_routes=False).shadow is None


def test_with_shadow_keeps_the_callers_policy() -> None:
    configured, own = Shadow(CAND), Shadow(CAND, sample=0.5)
    rollout = Rollout(CAND, 10, old_route=BASE)
    assert with_shadow(None, (rollout,), configured) == RoutingPolicy(rollouts=(rollout,), shadow=configured)
    mine = RoutingPolicy(rollouts=(rollout,), shadow=own)
    assert with_shadow(mine, (), configured) is mine  # the code's own shadow wins
    plain = RoutingPolicy(rollouts=(rollout,))
    assert with_shadow(plain, (), configured) == RoutingPolicy(rollouts=(rollout,), shadow=configured)

    def route(ctx: Any) -> str | None:
        return None

    wrapped = with_shadow(route, (), configured)
    assert wrapped.custom is route and wrapped.shadow is configured


BEDROCK = "aws-bedrock/anthropic.claude-3-haiku-20240307-v1:0"  # a model string with ':' in it


@pytest.mark.parametrize(("value", "candidate", "sample"), [
    (f"{CAND}@0.25", CAND, 0.25), (f"{CAND}:0.25", CAND, 0.25), (f"{BEDROCK}@0.2", BEDROCK, 0.2),
    (f"{BEDROCK}:0.2", BEDROCK, 0.2), ("openai/ft:gpt-4o-mini:org::abc@0.5", "openai/ft:gpt-4o-mini:org::abc", 0.5),
])
def test_the_environment_form_keeps_colons_of_the_model_string(value: str, candidate: str, sample: float) -> None:
    s = load_settings(env={"CFGATEWAY_SHADOW": value})
    assert dict(s.shadow) == {"candidate": candidate, "sample": sample}


def test_a_model_string_ending_in_colon_digit_is_not_read_as_a_share() -> None:
    with pytest.raises(ConfigError, match="CANDIDATE@SAMPLE"):  # ':0' is Bedrock's version, not "sample 0"
        load_settings(env={"CFGATEWAY_SHADOW": BEDROCK})


@pytest.mark.parametrize(("item", "candidate", "sample"), [
    (f"fast={BEDROCK}", BEDROCK, 0.1), (f"fast={BEDROCK}@0.3", BEDROCK, 0.3), (f"fast={CAND}:0.3", CAND, 0.3),
    (f"fast={CAND}", CAND, 0.1),
])
def test_the_proxy_shadow_flag_keeps_colons_of_the_model_string(item: str, candidate: str, sample: float) -> None:
    from cfgateway.proxy.config import parse_shadow

    name, shadow = parse_shadow(item)
    assert name == "fast" and shadow.candidate == candidate and shadow.sample == sample
