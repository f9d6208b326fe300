"""A quality-gated rollout: a LangChain app on OpenAI (through AI Gateway) moves its users to Workers AI in
stages (10 % -> 50 % -> 100 %), advancing only when the candidate's answers are >= 95 % similar to
OpenAI's, and rolling back by itself when the candidate starts failing.

1. Shadow at 10 %: a tenth of the calls answered by OpenAI are also sent to the candidate; the two
   answers are embedded and compared, and the pair becomes a ledger record (outcome ``shadow``).
   (Done by hand here with cfgateway's public API; once the core's ``Shadow(...)`` exists, it does this.)
2. The report: per stage, samples, similarity (mean, p5, share >= the bar), error rate, latency and cost
   ratios, and the verdict.
3. ``auto=True``: the gates pass, the rollout advances to 50 % (kept in the ledger, announced as an alert).
4. The candidate fails (the emulator is told to fail it): calls fall back to OpenAI, the errors are in
   the ledger, and the rollout rolls itself back to 0 %.

With CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_AI_GATEWAY_ID set it talks to Cloudflare
(and skips step 4, which needs the emulator); without them it starts the offline emulator on loopback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from cfgateway import Client, CostTracker, Gates, RoutingPolicy, load_settings, open_ledger
from cfgateway.costs.alerts import AlertEvent, Alerts, log_sink
from cfgateway.costs.ledger import MemoryLedger, UsageRecord
from cfgateway.routing.gates import shadow_record
from cfgateway.routing.rollout import Rollout, bucket
from cfgateway.routing.similarity import answer_similarity
from cfgateway.types import ChatRequest, ChatResponse, Message
from langchain_cfgateway import ChatCloudflare, get_cloudflare_callback

BASELINE = "openai/gpt-4o-mini"
CANDIDATE = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
JUDGE = "@cf/baai/bge-base-en-v1.5"  # embeds both answers to compare them
SHADOW_SHARE = 0.10
GATES = Gates(min_samples=20, min_similarity=0.95, max_error_rate=0.02, max_latency_ratio=None,
              rollback_min_samples=10)
QUESTIONS = ["What is Workers AI?", "How do neurons work?", "What does AI Gateway cache?", "Name a bge model."]


@contextlib.contextmanager
def connection() -> Iterator[tuple[dict[str, Any], Callable[[], None] | None]]:
    """Settings for Cloudflare when credentials are set (no way to break the candidate), else for a
    local emulator (and a function that makes it fail the candidate)."""
    if load_settings().api_token:
        yield {}, None
        return
    from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
    from cfgateway.emulator.server import EmulatorServer

    # an authenticated gateway holding the provider keys (BYOK): only the gateway token travels
    with EmulatorServer(EmulatorConfig(gateways={"gw": GatewayConfig(auth_token="demo-gw-token")})) as server:
        print(f"(no CLOUDFLARE_API_TOKEN: using the offline emulator at {server.url})\n")

        def break_candidate() -> None:
            server.state.add_fault(Fault(path="*llama-3.3-70b*", kind="error", status=500))

        yield server.client_kwargs(gateway=True), break_candidate


class Shadows:
    """Step 1 by hand: send a sampled share of the baseline's calls to the candidate too, and record each pair."""

    def __init__(self, ledger: Any, settings: dict[str, Any]) -> None:
        self.ledger = ledger
        private = CostTracker(MemoryLedger())  # the pair's record carries the candidate's cost: count it once
        self.candidate = Client(CANDIDATE, tracker=private, max_retries=0, **settings)
        self.judge = Client(JUDGE, tracker=private, **settings)

    def maybe(self, key: str, question: str, answer: ChatResponse, user: str) -> None:
        if answer.model != BASELINE or bucket(key, "shadow") >= SHADOW_SHARE * 10_000:
            return
        got: ChatResponse | BaseException
        try:
            got = self.candidate.chat(ChatRequest([Message("user", question)], max_tokens=256))
            similarity: float | None = answer_similarity(answer, got, lambda t: self.judge.embed(t).vectors)
        except Exception as exc:  # noqa: BLE001 - a failed candidate is evidence, not a crash
            got, similarity = exc, None
        self.ledger.add(shadow_record(got, answer, candidate_model=CANDIDATE, similarity=similarity, user=user))


def traffic(llm: ChatCloudflare, shadows: Shadows, calls: int, start: int) -> None:
    for i in range(start, start + calls):
        user, question = f"user-{i % 97}", QUESTIONS[i % len(QUESTIONS)]
        msg = llm.invoke(question, config={"metadata": {"user_id": user}})
        meta = msg.response_metadata
        answer = ChatResponse(text=str(msg.content), model=meta["model_name"], provider=meta["provider"],
                              records=[UsageRecord.from_dict(r) for r in meta["cfgateway_records"]])
        shadows.maybe(f"{user}:{i}", question, answer, user)


def main(ledger_url: str | None = None, break_candidate: Callable[[], None] | None = None,
         **settings: Any) -> dict[str, Any]:
    ledger = open_ledger(ledger_url)
    events: list[AlertEvent] = []
    alerts = Alerts([log_sink, events.append], store=ledger)
    rollout = Rollout(CANDIDATE, old_route=BASELINE, stages=[10, 50, 100], gates=GATES, ledger=ledger, auto=True,
                      alerts=alerts)
    tracker = CostTracker(ledger, on_alert=alerts.budget_hook())
    llm = ChatCloudflare(model=BASELINE, routing=RoutingPolicy.build(rollout=rollout), tracker=tracker,
                         max_tokens=256, **settings)
    shadows = Shadows(ledger, settings)
    seen = [rollout.percent]
    with get_cloudflare_callback() as cb:
        traffic(llm, shadows, 320, 0)  # step 1: about 29 shadow pairs (10 % of the calls OpenAI answers)
        print(rollout.report().render())  # step 2
        verdict = rollout.check()  # step 3: auto=True applies it (a running app checks every 30 s by itself)
        print(f"\ncheck: {verdict.action} ({verdict.reason})")
        seen.append(rollout.percent)
        if break_candidate is not None:  # step 4
            break_candidate()
            traffic(llm, shadows, 120, 320)
            verdict = rollout.check()
            print(f"check after the candidate broke: {verdict.action} ({verdict.reason})")
            seen.append(rollout.percent)
    print(f"\nstages served: {' -> '.join(f'{p:g} %' for p in seen)}")
    print(f"alerts: {[e.message for e in events]}")
    print(f"cost: ${cb.total_cost} over {cb.successful_requests} calls")
    return {"stages": seen, "events": events, "report": rollout.report(), "callback": cb, "ledger": ledger}


if __name__ == "__main__":
    with connection() as (kw, breaker):
        main(break_candidate=breaker, **kw)
