"""Per-call overhead of the core client vs raw httpx on the same loopback emulator.

One run, interleaved (A, B, A, B, ...) so both see the same machine state. Prints medians and
the difference. Target (issue 2): at most +0.15 ms per call over raw httpx.

    .venv/bin/python bench/overhead.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import json
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
        url = f"{server.base_url}/accounts/acct/ai/run/{MODEL}"
        headers = {"Authorization": "Bearer test-token", "Content-Type": "application/json"}
        req = ChatRequest([Message("user", "Say hello")], max_tokens=16)
        body = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 16}

        def ours() -> None:
            r = client.chat(req)
            assert r.text

        def baseline() -> None:
            r = raw.post(url, content=json.dumps(body).encode(), headers=headers)
            r.raise_for_status()
            assert json.loads(r.content)["result"]["response"]

        for _ in range(100):  # warm-up: connections, caches
            ours()
            baseline()
        t_ours: list[float] = []
        t_raw: list[float] = []
        for _ in range(args.calls):
            s = time.perf_counter()
            baseline()
            t_raw.append(time.perf_counter() - s)
            s = time.perf_counter()
            ours()
            t_ours.append(time.perf_counter() - s)
        m_raw, m_ours = statistics.median(t_raw) * 1e3, statistics.median(t_ours) * 1e3
        print(f"calls per side      {args.calls}")
        print(f"raw httpx median    {m_raw:.3f} ms")
        print(f"cfgateway median    {m_ours:.3f} ms")
        print(f"added per call      {m_ours - m_raw:+.3f} ms   (target <= +0.150 ms)")
        print(f"ratio               {m_ours / m_raw:.3f}x")


if __name__ == "__main__":
    main()
