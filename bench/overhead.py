"""Per-call overhead of the core client vs raw httpx on the same loopback emulator.

One run, interleaved (A, B, C, A, B, C, ...) so all see the same machine state. Prints medians and
the difference. Target (issue 2): at most +0.15 ms per call over raw httpx.

Two baselines: httpx with its defaults, and httpx with TCP_NODELAY (what cfgateway's transport sets;
without it a small sync POST can stall ~40 ms on Nagle + delayed ACK). The overhead figure is taken
against the faster, fair baseline.

    .venv/bin/python bench/overhead.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import time

import httpx

from cfgateway import ChatRequest, Client, Message
from cfgateway.emulator.server import EmulatorServer

MODEL = "@cf/meta/llama-3.1-8b-instruct"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    with EmulatorServer() as server:
        client = Client(MODEL, account_id="acct", api_token="test-token", base_url=server.base_url, max_retries=0)
        raw = httpx.Client(timeout=60)
        nodelay = httpx.Client(timeout=60, transport=httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]))
        url = f"{server.base_url}/accounts/acct/ai/run/{MODEL}"
        headers = {"Authorization": "Bearer test-token", "Content-Type": "application/json"}
        req = ChatRequest([Message("user", "Say hello")], max_tokens=16)
        body = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 16}

        def ours() -> None:
            r = client.chat(req)
            assert r.text

        def baseline(http: httpx.Client = raw) -> None:
            r = http.post(url, content=json.dumps(body).encode(), headers=headers)
            r.raise_for_status()
            assert json.loads(r.content)["result"]["response"]

        def fair() -> None:
            baseline(nodelay)

        sides = {"raw httpx (defaults)": baseline, "raw httpx (TCP_NODELAY)": fair, "cfgateway Client": ours}
        times: dict[str, list[float]] = {k: [] for k in sides}
        for _ in range(100):  # warm-up: connections, caches
            for fn in sides.values():
                fn()
        for _ in range(args.calls):
            for name, fn in sides.items():
                s = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - s)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        print(f"calls per side             {args.calls}")
        for name, m in med.items():
            print(f"{name:<26} {m:.3f} ms median")
        floor = min(med["raw httpx (defaults)"], med["raw httpx (TCP_NODELAY)"])
        ours_ms = med["cfgateway Client"]
        print(f"added per call             {ours_ms - floor:+.3f} ms over the faster raw httpx (target <= +0.150 ms)")
        print(f"ratio                      {ours_ms / floor:.3f}x")


if __name__ == "__main__":
    main()
