"""Shadows feeding a staged rollout's gates on known answers: identical answers advance it, answers cut at 256
tokens (a known similarity, well under the 0.95 bar) roll it back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cfgateway import ChatRequest, CostTracker, Gates, Message, Rollout, RoutingPolicy, Shadow, flush_shadows
from cfgateway.costs.ledger import SQLiteLedger
from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
from cfgateway.emulator.embeddings import embed_text
from cfgateway.emulator.server import EmulatorServer
from cfgateway.fallback import FallbackChain
from cfgateway.routing.similarity import cosine

BASE = "openai/gpt-4o-mini"
CAND = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
GATES = Gates(min_samples=4, rollback_min_samples=4, min_similarity=0.95, max_latency_ratio=None)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(gateways={"gw": GatewayConfig(auth_token="gw-token")})) as s:
        yield s


def run(server: EmulatorServer, path: Path, request: ChatRequest) -> Rollout:
    led = SQLiteLedger(path)
    rollout = Rollout(CAND, old_route=BASE, stages=[10, 50], gates=GATES, ledger=led)
    policy = RoutingPolicy.build(rollout=rollout, shadow=Shadow(CAND, sample=1.0))
    with FallbackChain(BASE, routing=policy, tracker=CostTracker(led), max_retries=0,
                       **server.client_kwargs(gateway=True)) as chain:
        for _ in range(4):  # no user id: the rollout keeps these calls on the baseline
            assert chain.chat(request).model == BASE
        assert flush_shadows(30) == 0
    return rollout


def test_identical_answers_pass_the_gates(server: EmulatorServer, tmp_path: Path) -> None:
    rollout = run(server, tmp_path / "l.db", ChatRequest([Message("user", "What is Workers AI?")], max_tokens=64))
    stage = rollout.report().stages[0]
    assert (stage.samples, stage.mean_similarity, stage.error_rate) == (4, 1.0, 0.0)
    verdict = rollout.check(apply=True)
    assert verdict.action == "advance" and rollout.percent == 50


def test_known_different_answers_roll_the_rollout_back(server: EmulatorServer, tmp_path: Path) -> None:
    rollout = run(server, tmp_path / "l.db", ChatRequest([Message("user", "Count to 400")]))
    seed = "@cf/baai/bge-base-en-v1.5:mean"
    full, cut = " ".join(map(str, range(1, 401))) + ".", " ".join(map(str, range(1, 257)))
    want = cosine(embed_text(full, 768, seed), embed_text(cut, 768, seed))
    stage = rollout.report().stages[0]
    assert stage.samples == 4 and stage.mean_similarity == pytest.approx(want, abs=1e-12)
    assert stage.share_at_bar == 0.0
    verdict = rollout.check(apply=True)
    assert verdict.action == "rollback" and f"mean similarity {want:.4f}" in verdict.reason and rollout.percent == 0
