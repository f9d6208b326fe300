"""A dead primary with cooling: the fallback chain vs calling the fallback directly.

The primary (Workers AI through the gateway) answers 503 to every request. The chain uses its
defaults (2 retries, circuit opens after 3 consecutive failures, 30 s cooldown), so only the first
call pays for the primary; later calls skip it without sending anything. One run, interleaved
(direct, chain, direct, chain, ...), no warm-up, so the cost of opening the circuit is counted in.
Target (issue 5): the chain's median within 1.2x of the direct median.

    .venv/bin/python bench/fallback_bench.py [--calls 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from cfgateway import ChatRequest, Client, Message
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.fallback import FallbackChain, build_client

PRIMARY = "@cf/meta/llama-3.1-8b-instruct"
FALLBACK = "openai/gpt-4o-mini"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100)
    args = ap.parse_args()
    cfg = EmulatorConfig(api_token="test-token", gateways={"gw": GatewayConfig(auth_token="gw-token")})
    with EmulatorServer(cfg) as server:
        conn: dict[str, Any] = {
            "account_id": "acct", "api_token": "test-token", "gateway_id": "gw", "gateway_token": "gw-token",
            "base_url": server.base_url, "gateway_base_url": server.gateway_base_url,
        }
        server.state.add_fault(Fault("*/workers-ai/*", "error", status=503))  # forever
        direct = Client(FALLBACK, **conn)
        chain = build_client(PRIMARY, [FALLBACK], **conn)
        assert isinstance(chain, FallbackChain)
        req = ChatRequest([Message("user", "Say hello")], max_tokens=16)
        times: dict[str, list[float]] = {"direct fallback": [], "chain (primary down)": []}
        for _ in range(args.calls):
            t0 = time.perf_counter()
            assert direct.chat(req).model == FALLBACK
            t1 = time.perf_counter()
            assert chain.chat(req).model == FALLBACK
            t2 = time.perf_counter()
            times["direct fallback"].append(t1 - t0)
            times["chain (primary down)"].append(t2 - t1)
        primary_hits = sum(1 for r in server.state.requests if "/workers-ai/" in r.path)
        medians = {k: statistics.median(v) for k, v in times.items()}
        for name, m in medians.items():
            print(f"{name:24s} median {m * 1000:8.3f} ms   max {max(times[name]) * 1000:8.1f} ms")
        ratio = medians["chain (primary down)"] / medians["direct fallback"]
        print(f"ratio chain/direct: {ratio:.3f}  (target <= 1.2)")
        print(f"requests sent to the dead primary: {primary_hits} over {args.calls} calls "
              f"(breaker: {chain.breaker.snapshot() if chain.breaker else 'off'})")
        direct.close()
        chain.close()


if __name__ == "__main__":
    main()
