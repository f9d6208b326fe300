"""The proxy hop: the openai SDK through `cfgateway proxy` vs the same SDK straight at the same upstream
(the emulator's Workers AI `/ai/v1`), measured interleaved in one run.

    python bench/proxy_bench.py [--n 300] [--concurrency 64] [--requests 2000] [--workers 1]

Prints non-stream latency and stream time-to-first-chunk p50/p95 (direct, proxy, hop), then requests/s and
p50/p90/p99/max at N concurrent clients for both. The emulator and the proxy run as separate processes on
127.0.0.1 (the proxy with `--endpoint openai`, so both paths hit the same upstream route).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai

MODEL = "@cf/meta/llama-3.1-8b-instruct"
MSG = [{"role": "user", "content": "Say hello"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(args: list[str], health: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "cfgateway", *args], env=env, cwd=tempfile.gettempdir(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{args[0]} did not start")
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


async def one(client: openai.AsyncOpenAI, stream: bool) -> float:
    t = time.perf_counter()
    if not stream:
        await client.chat.completions.create(model=MODEL, messages=MSG, max_tokens=16)  # type: ignore[arg-type]
        return time.perf_counter() - t
    s = await client.chat.completions.create(model=MODEL, messages=MSG, max_tokens=16, stream=True)  # type: ignore[arg-type]
    first = 0.0
    async for chunk in s:  # type: ignore[union-attr]
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - t
    return first


async def sequential(direct: openai.AsyncOpenAI, proxy: openai.AsyncOpenAI, n: int, stream: bool) -> None:
    d: list[float] = []
    p: list[float] = []
    for i in range(n):  # interleaved, alternating which goes first
        pair = [(direct, d), (proxy, p)] if i % 2 == 0 else [(proxy, p), (direct, d)]
        for client, out in pair:
            out.append(await one(client, stream))
    what = "stream time to first chunk" if stream else "non-stream latency"
    hop = statistics.median(p) - statistics.median(d)
    print(f"{what:28} direct p50 {pct(d, 50):6.2f} ms p95 {pct(d, 95):6.2f} | proxy p50 {pct(p, 50):6.2f} ms "
          f"p95 {pct(p, 95):6.2f} | hop p50 {hop * 1000:+.2f} ms ({statistics.median(p) / statistics.median(d):.2f}x)")


async def load(client: openai.AsyncOpenAI, concurrency: int, total: int) -> tuple[float, list[float]]:
    lat: list[float] = []
    left = [total]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            lat.append(await one(client, False))

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - t), lat


async def concurrent(direct: openai.AsyncOpenAI, proxy: openai.AsyncOpenAI, c: int, total: int) -> None:
    for name, client in (("direct", direct), ("proxy", proxy), ("direct", direct), ("proxy", proxy)):
        rps, lat = await load(client, c, total)
        print(f"{c} concurrent, {name:6}  {rps:7.0f} req/s  p50 {pct(lat, 50):7.1f} ms  p90 {pct(lat, 90):7.1f}  "
              f"p99 {pct(lat, 99):7.1f}  max {max(lat) * 1000:7.1f}  p99/p50 {pct(lat, 99) / pct(lat, 50):.2f}")


def clients(emu: str, proxy: str, c: int) -> tuple[openai.AsyncOpenAI, openai.AsyncOpenAI]:
    limits = httpx.Limits(max_connections=c + 8, max_keepalive_connections=c + 8)
    direct = openai.AsyncOpenAI(base_url=f"{emu}/client/v4/accounts/acct/ai/v1", api_key="bench-token", max_retries=0,
                                http_client=httpx.AsyncClient(limits=limits, timeout=60))
    via = openai.AsyncOpenAI(base_url=f"{proxy}/v1", api_key="bench-proxy-key", max_retries=0,
                             http_client=httpx.AsyncClient(limits=limits, timeout=60))
    return direct, via


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    eport, pport = free_port(), free_port()
    emu, prx = f"http://127.0.0.1:{eport}", f"http://127.0.0.1:{pport}"
    env = {**os.environ, "CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": "bench-token",
           "CLOUDFLARE_API_BASE_URL": f"{emu}/client/v4", "CLOUDFLARE_AI_GATEWAY_BASE_URL": f"{emu}/v1",
           "CFGATEWAY_MAX_RETRIES": "0"}
    for var in ("CLOUDFLARE_AI_GATEWAY_ID", "CFGATEWAY_LEDGER", "CFGATEWAY_CONFIG", "CFGATEWAY_PROFILE"):
        env.pop(var, None)
    with process(["emulate", "--port", str(eport)], f"{emu}/__emulator/health", env), \
            process(["proxy", "--port", str(pport), "--endpoint", "openai", "--api-key", "bench:bench-proxy-key",
                     "--workers", str(a.workers)], f"{prx}/healthz", env):
        async def run() -> None:
            direct, via = clients(emu, prx, a.concurrency)
            for _ in range(20):  # warm-up: connections, caches
                await one(direct, False)
                await one(via, False)
            await sequential(direct, via, a.n, stream=False)
            await sequential(direct, via, a.n, stream=True)
            await concurrent(direct, via, a.concurrency, a.requests)

        asyncio.run(run())


if __name__ == "__main__":
    main()
