"""Migration guide 2 (docs/migrate-openai-to-workers-ai.md): from OpenAI to Workers AI with OpenAI as the
fallback, a 10 % -> 50 % -> 100 % rollout by user, and budgets with alerts at $100 / $300 / $500 — all in
``examples/openai_to_workers_ai.toml``; the code names no model.

``make demo`` runs it on the embedded emulator (an authenticated gateway holding the provider keys): a RAG
answer, a capacity error on the primary answered by the fallback, and the cost table. With
CLOUDFLARE_API_TOKEN set it runs against Cloudflare (and skips the injected capacity error).
"""

from __future__ import annotations

import math
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from cfgateway import CallContext, ChatRequest, Message, connect
from cfgateway.config import load_settings
from cfgateway.connection import tracker_for
from cfgateway.costs.reports import build_report, render

PROFILES = str(Path(__file__).with_name("openai_to_workers_ai.toml"))
DOCS = [
    "Workers AI runs open models such as Llama and gpt-oss on Cloudflare's GPUs, billed in neurons.",
    "AI Gateway sits in front of any provider and adds caching, rate limits, logs and fallbacks.",
    "A neuron costs $0.011 per 1,000 and every account gets 10,000 free neurons per day.",
    "OpenAI's gpt-4o-mini costs $0.15 per million input tokens and $0.60 per million output tokens.",
]


def rollout_stages(users: int = 40) -> dict[int, set[str]]:
    """Each stage's users that Workers AI answered (a real call per user; the rest stay on OpenAI)."""
    moved: dict[int, set[str]] = {}
    for percent in (10, 50):
        chat = connect("chat", config_path=PROFILES, profile=f"rollout-{percent}")
        moved[percent] = set()
        for i in range(users):
            user = f"user-{i}"
            answer = chat.chat(ChatRequest([Message("user", "hi")], max_tokens=8), context=CallContext(user=user))
            if answer.model.startswith("@cf/"):
                moved[percent].add(user)
        chat.close()
        print(f"rollout {percent:>3} %: {len(moved[percent])} of {users} users on Workers AI")
    moved[100] = {f"user-{i}" for i in range(users)}
    print(f"rollout 100 %: profile 'migrated' (chat_model = Workers AI, fallbacks = OpenAI): all {users} users")
    return moved


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)) or 1.0)


def rag_answer(question: str) -> Any:
    """Embed the documents, retrieve the two closest, answer from them (profile 'migrated')."""
    embedder = connect("embed", config_path=PROFILES, profile="migrated")
    try:
        vectors = embedder.embed([*DOCS, question]).vectors
    finally:
        embedder.close()
    ranked = sorted(range(len(DOCS)), key=lambda i: _cosine(vectors[i], vectors[-1]), reverse=True)[:2]
    context = "\n".join(f"- {DOCS[i]}" for i in ranked)
    chat = connect("chat", config_path=PROFILES, profile="migrated")
    try:
        messages = [Message("system", f"Answer from this context only:\n{context}"), Message("user", question)]
        return chat.chat(ChatRequest(messages, max_tokens=128), context=CallContext(user="u-7"))
    finally:
        chat.close()


def main(emulator: Any = None) -> dict[str, Any]:
    moved = rollout_stages()
    answer = rag_answer("How much does a neuron cost?")
    print(f"\nRAG answer ({answer.model}): {answer.text}")
    fallback = None
    if emulator is not None:  # the primary runs out of capacity: the fallback answers
        from cfgateway.emulator.config import Fault

        emulator.state.add_fault(Fault(path="*/workers-ai/*llama-3.3*", kind="error", status=429, code=3040))
        fallback = rag_answer("What does AI Gateway add?")
        tried = ", ".join(f"{a.model} ({a.outcome})" for a in fallback.attempts)
        print(f"capacity error on the primary -> answered by {fallback.model} after: {tried}")
        emulator.state.clear_faults()
    settings = load_settings(config_path=PROFILES, profile="migrated")
    tracker = tracker_for(settings)
    assert tracker is not None  # the profile's budgets make one shared tracker
    records = tracker.ledger.records()
    print("\ncost by provider and model:\n" + render(build_report(records, group_by=("provider", "model"))))
    spent = sum((r.cost for r in records if r.cost is not None), Decimal(0))
    for budget in tracker.budgets:
        print(f"budget {budget.name}: ${spent} spent of ${budget.limit}; alerts at "
              + ", ".join(f"${a}" for a in budget.alerts))
    return {"moved": moved, "answer": answer, "fallback": fallback, "records": records, "tracker": tracker}


if __name__ == "__main__":
    if load_settings().api_token:
        main()
    else:
        from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
        from cfgateway.emulator.server import EmulatorServer

        config = EmulatorConfig(gateways={"prod-gw": GatewayConfig("demo-gateway-token", stored_keys=True)},
                                auto_create_gateways=False)
        with EmulatorServer(config) as server:
            print(f"(no CLOUDFLARE_API_TOKEN: the offline emulator at {server.url}, gateway prod-gw, stored keys)\n")
            os.environ.update({"CLOUDFLARE_ACCOUNT_ID": "demo", "CLOUDFLARE_API_TOKEN": "demo-token",
                               "CLOUDFLARE_AI_GATEWAY_TOKEN": "demo-gateway-token",
                               "CLOUDFLARE_API_BASE_URL": server.base_url,
                               "CLOUDFLARE_AI_GATEWAY_BASE_URL": server.gateway_base_url})
            main(server)
