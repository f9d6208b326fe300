"""A quality-gated rollout: a LangChain app on OpenAI (through AI Gateway) moves its users to Workers AI in
stages (10 % -> 50 % -> 100 %), advancing only when the candidate's answers are >= 95 % similar to
OpenAI's, and rolling back by itself when the candidate starts failing.

1. Shadow at 10 %: ``Shadow(candidate, sample=0.1, by="user")`` in the routing policy sends the calls of a
   tenth of the users that OpenAI answers to the candidate too, in the background (the caller never waits
   for it); the two answers are embedded and compared, and the pair becomes a ledger record (outcome
   ``shadow``). Shadow spend counts against budgets and stops at its own cap (``max_cost`` per UTC day).
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
from decimal import Decimal
from typing import Any

from cfgateway import CostTracker, Gates, RoutingPolicy, Shadow, flush_shadows, load_settings, open_ledger
from cfgateway.costs.alerts import AlertEvent, Alerts, log_sink
from cfgateway.routing.rollout import Rollout
from langchain_cfgateway import ChatCloudflare, get_cloudflare_callback

BASELINE = "openai/gpt-4o-mini"
CANDIDATE = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
JUDGE = "@cf/baai/bge-base-en-v1.5"  # embeds both answers to compare them
# a tenth of the users (all their calls), at most $1 a day of shadow spend
SHADOW = Shadow(CANDIDATE, sample=0.10, by="user", similarity_model=JUDGE, max_cost="1")
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


def traffic(llm: ChatCloudflare, calls: int, start: int) -> None:
    for i in range(start, start + calls):
        user, question = f"user-{i % 97}", QUESTIONS[i % len(QUESTIONS)]
        llm.invoke(question, config={"metadata": {"user_id": user}})
    flush_shadows()  # wait for the comparisons still running in the background (an app never needs to)


def main(ledger_url: str | None = None, break_candidate: Callable[[], None] | None = None,
         **settings: Any) -> dict[str, Any]:
    ledger = open_ledger(ledger_url)
    events: list[AlertEvent] = []
    alerts = Alerts([log_sink, events.append], store=ledger)
    rollout = Rollout(CANDIDATE, old_route=BASELINE, stages=[10, 50, 100], gates=GATES, ledger=ledger, auto=True,
                      alerts=alerts)
    tracker = CostTracker(ledger, on_alert=alerts.budget_hook())
    llm = ChatCloudflare(model=BASELINE, routing=RoutingPolicy.build(rollout=rollout, shadow=SHADOW),
                         tracker=tracker, max_tokens=256, **settings)
    seen = [rollout.percent]
    with get_cloudflare_callback() as cb:
        traffic(llm, 320, 0)  # step 1: 36 shadow pairs (the calls of the tenth of the users OpenAI answers)
        print(rollout.report().render())  # step 2
        verdict = rollout.check()  # step 3: auto=True applies it (a running app checks every 30 s by itself)
        print(f"\ncheck: {verdict.action} ({verdict.reason})")
        seen.append(rollout.percent)
        if break_candidate is not None:  # step 4
            break_candidate()
            traffic(llm, 120, 320)
            verdict = rollout.check()
            print(f"check after the candidate broke: {verdict.action} ({verdict.reason})")
            seen.append(rollout.percent)
    print(f"\nstages served: {' -> '.join(f'{p:g} %' for p in seen)}")
    print(f"alerts: {[e.message for e in events]}")
    shadow_spend = sum((r.cost or Decimal(0) for r in ledger.records() if r.shadow), start=Decimal(0))
    print(f"cost: ${cb.total_cost} over {cb.successful_requests} calls, plus ${shadow_spend} of shadow comparisons")
    return {"stages": seen, "events": events, "report": rollout.report(), "callback": cb, "ledger": ledger}


if __name__ == "__main__":
    with connection() as (kw, breaker):
        main(break_candidate=breaker, **kw)
