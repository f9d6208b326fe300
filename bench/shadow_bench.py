"""What shadow comparisons cost the caller: a chain that shadows every call vs the same chain without.

The baseline (openai/gpt-4o-mini through the gateway) answers at once; the candidate (Workers AI) is made
200 ms slower by the emulator, so a shadow that held the caller up would show as +200 ms. One run,
interleaved (plain, shadowed, plain, ...), sync chat, async chat (asyncio.run per call) and streamed calls.
Target (issue 12): the shadowed median within 1 ms (or 1.1x) of the plain one; the shadows all booked.

    .venv/bin/python bench/shadow_bench.py [--calls 60] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from cfgateway import ChatRequest, CostTracker, Message, RoutingPolicy, Shadow, flush_shadows
from cfgateway.costs.ledger import MemoryLedger
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.fallback import FallbackChain

BASE = "openai/gpt-4o-mini"
CAND = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
REQ = ChatRequest([Message("user", "Tell me about Paris in spring")], max_tokens=40)


def kinds(chain: FallbackChain) -> dict[str, Callable[[], Any]]:
    return {
        "chat": lambda: chain.chat(REQ),
        "achat (asyncio.run)": lambda: asyncio.run(chain.achat(REQ)),
        "stream": lambda: list(chain.stream(REQ)),
    }


def row(name: str, a: Callable[[], Any], b: Callable[[], Any], calls: int) -> None:
    """``calls`` of each, interleaved; one printed line."""
    a(), b()  # warm
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(calls):
        for fn, out in ((a, times[0]), (b, times[1])):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    p50 = [statistics.median(t) * 1000 for t in times]
    p95 = [statistics.quantiles(t, n=20)[-1] * 1000 for t in times]
    print(f"{name:22} {p50[0]:8.2f}ms {p50[1]:11.2f}ms {p50[1] / p50[0]:6.2f}x {p95[0]:8.2f}ms "
          f"{p95[1]:11.2f}ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--delay", type=float, default=0.2, help="extra seconds the candidate takes")
    args = ap.parse_args()
    with EmulatorServer(EmulatorConfig(gateways={"gw": GatewayConfig(auth_token="gw-token")})) as server:
        server.state.add_fault(Fault(path="*llama-3.3-70b*", kind="delay", delay_s=args.delay))
        kw = server.client_kwargs(gateway=True)
        led = MemoryLedger()
        plain = FallbackChain(BASE, tracker=CostTracker(MemoryLedger()), max_retries=0, **kw)
        shadowed = FallbackChain(BASE, routing=RoutingPolicy.build(shadow=Shadow(CAND, sample=1.0, max_pending=1000)),
                                 tracker=CostTracker(led), max_retries=0, **kw)
        print(f"{args.calls} calls of each kind, candidate +{args.delay * 1000:.0f} ms, every call shadowed\n")
        print(f"{'call':22} {'plain p50':>10} {'shadowed p50':>13} {'ratio':>7} {'plain p95':>10} {'shadowed p95':>13}")
        for (name, a), b in zip(kinds(plain).items(), kinds(shadowed).values(), strict=True):
            row(name, a, b, args.calls)
        t = time.perf_counter()
        left = flush_shadows(120)
        pairs = [r for r in led.records() if r.shadow_pair]
        print(f"\nshadows: {len(pairs)} pairs booked ({left} still pending), candidate p50 "
              f"{statistics.median(r.latency_s for r in pairs) * 1000:.0f} ms; flushing the rest took "
              f"{time.perf_counter() - t:.1f} s; {shadowed.shadows.stats.as_dict() if shadowed.shadows else {}}")


if __name__ == "__main__":
    main()
