"""The proxy hop: the openai SDK through `cfgateway proxy` vs the same SDK straight at the same upstream
(the emulator's Workers AI `/ai/v1`), measured interleaved in one run.

    python bench/proxy_bench.py [--n 300] [--concurrency 64] [--requests 1280] [--emulators 2] [--client-procs 2]
                                [--workers 1] [--rounds 2] [--only hop|load]

1. The hop: non-stream latency and stream time-to-first-chunk, p50/p95, direct and via the proxy, one request at
   a time, the two sides alternating (which goes first alternates too).
2. Load: requests/s and p50/p90/p99/max at N concurrent clients (non-stream), direct and via the proxy, the
   rounds interleaved (direct, proxy, direct, proxy, ...).

So that the load row measures the proxy and not the benchmark: the emulator runs as ``--emulators`` processes
sharing one port (``SO_REUSEPORT``: the kernel spreads connections over them), the proxy as its own process,
and the N clients as ``--client-procs`` processes (N / P openai clients each on its own event loop), started
together; requests/s counts from the first start to the last finish. The machine's cores are shared by all of
them: the same processes run for both sides, so the difference between the rows is the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import openai

MODEL = "@cf/meta/llama-3.1-8b-instruct"
MSG = [{"role": "user", "content": "Say hello"}]


# What the proxy's upstream requests go through: as shipped (aiohttp when installed), or httpx with and without
# the transport's fair connection assignment (to measure what each change does; one worker only).
BACKENDS = {
    "default": "",
    "httpx": "import cfgateway.proxy.clients as c; c.aiohttp_available = lambda: False",
    "httpx-unfair": "import cfgateway.proxy.clients as c; c.aiohttp_available = lambda: False; "
                    "import cfgateway.http.transport as t; t.fair_pool = lambda transport: None",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_emulator(port: int) -> None:
    """Child: one emulator process on ``port``, shared with its siblings through SO_REUSEPORT."""
    import uvicorn

    from cfgateway.emulator.app import create_app
    from cfgateway.emulator.config import EmulatorConfig

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(create_app(EmulatorConfig()), log_level="warning", lifespan="off", access_log=False,
                            timeout_keep_alive=30)
    uvicorn.Server(config).run(sockets=[sock])


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({proc.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


@contextmanager
def process(cmd: list[str], health: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_healthy(health, proc)
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


def client(base: str, key: str, c: int) -> openai.AsyncOpenAI:
    limits = httpx.Limits(max_connections=c + 8, max_keepalive_connections=c + 8)
    return openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0,
                              http_client=httpx.AsyncClient(limits=limits, timeout=60))


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def sequential(sides: dict[str, openai.AsyncOpenAI], n: int, stream: bool,
                     pids: dict[str, int] | None = None) -> None:
    """The sides in turn, one request at a time, the order rotating; each side's hop over ``direct``, and the
    CPU each proxy process spent per request (``pids``: its requests are the only ones it serves)."""
    names = list(sides)
    lat: dict[str, list[float]] = {k: [] for k in names}
    cpu0 = {k: cpu_s(pid) for k, pid in (pids or {}).items()}
    for i in range(n):
        for name in names[i % len(names):] + names[: i % len(names)]:
            lat[name].append(await one(sides[name], stream))
    what = "stream time to first chunk" if stream else "non-stream latency"
    d = lat["direct"]
    print(f"{what}: direct p50 {pct(d, 50):6.2f} ms p95 {pct(d, 95):6.2f}", flush=True)
    for name in names[1:]:
        p = lat[name]
        hop = statistics.median(p) - statistics.median(d)
        cpu = f" | CPU {(cpu_s((pids or {})[name]) - cpu0[name]) / n * 1000:.2f} ms/request" if name in cpu0 else ""
        print(f"  {name:26} p50 {pct(p, 50):6.2f} ms p95 {pct(p, 95):6.2f} | hop p50 {hop * 1000:+.2f} ms "
              f"p95 {pct(p, 95) - pct(d, 95):+.2f} ms ({statistics.median(p) / statistics.median(d):.2f}x){cpu}",
              flush=True)


def load_child(base: str, key: str, c: int, total: int) -> None:
    """Child: ``c`` clients (each its own openai client and connection, as ``c`` separate apps would be) send
    ``total`` requests after "go" on stdin; prints start, end and latencies. One shared httpx pool would
    measure httpcore's pool instead: it gives one idle connection to several waiting requests, and under load
    some lose that race again and again (seconds; cfgateway's transport has a fair pool for that reason)."""
    async def run() -> None:
        clients = [client(base, key, 1) for _ in range(c)]
        await asyncio.gather(*(one(cl, False) for cl in clients))  # warm: c connections open
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        lat: list[float] = []
        left = [total]

        async def worker(cl: openai.AsyncOpenAI) -> None:
            while left[0] > 0:
                left[0] -= 1
                lat.append(await one(cl, False))

        start = time.time()
        await asyncio.gather(*(worker(cl) for cl in clients))
        print(json.dumps({"start": start, "end": time.time(), "lat": lat}), flush=True)

    asyncio.run(run())


def load(base: str, key: str, c: int, total: int, procs: int) -> tuple[float, list[float]]:
    cmd = [sys.executable, __file__, "--load-child", base, key, str(c // procs), str(total // procs)]
    kids = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    for k in kids:
        assert k.stdout is not None and k.stdout.readline().strip() == "ready"
    for k in kids:
        assert k.stdin is not None
        k.stdin.write("go\n")
        k.stdin.flush()
    outs = []
    for k in kids:
        assert k.stdout is not None
        outs.append(json.loads(k.stdout.readline()))
        k.wait(30)
    lat = [x for o in outs for x in o["lat"]]
    return len(lat) / (max(o["end"] for o in outs) - min(o["start"] for o in outs)), lat


def concurrent(emu: str, prx: str, c: int, total: int, procs: int, rounds: int) -> None:
    sides = {"direct": (f"{emu}/client/v4/accounts/acct/ai/v1", "bench-token"),
             "proxy": (f"{prx}/v1", "bench-proxy-key")}
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in sides}
    for _ in range(rounds):
        for name, (base, key) in sides.items():
            rps, lat = load(base, key, c, total, procs)
            p50, p99 = pct(lat, 50), pct(lat, 99)
            rows[name].append((rps, p50, p99))
            print(f"{c} concurrent ({procs} client processes), {name:6}  {rps:7.0f} req/s  p50 {p50:7.1f} ms  "
                  f"p90 {pct(lat, 90):7.1f}  p99 {p99:7.1f}  max {max(lat) * 1000:7.1f}  p99/p50 {p99 / p50:.2f}",
                  flush=True)
    for name, r in rows.items():
        print(f"median of {rounds} rounds, {name:6}: {statistics.median(x[0] for x in r):6.0f} req/s  "
              f"p50 {statistics.median(x[1] for x in r):6.1f} ms  p99 {statistics.median(x[2] for x in r):6.1f} ms  "
              f"p99/p50 {statistics.median(x[2] / x[1] for x in r):.2f}")


def bench_hop(stack: ExitStack, emu: str, prx: str, proxy_pid: int | None, env: dict[str, str], n: int) -> None:
    """One request at a time: direct, via the proxy, via the passthrough floor (started here); CPU per request
    of each proxy process when it runs as one process (``proxy_pid``)."""
    fport = free_port()
    floor_cmd = [sys.executable, str(Path(__file__).with_name("_floor_proxy.py")), str(fport),
                 f"{emu}/client/v4/accounts/acct/ai/v1", "bench-token"]
    floor_proc = stack.enter_context(process(floor_cmd, f"http://127.0.0.1:{fport}/healthz", env))

    async def hop() -> None:
        sides = {"direct": client(f"{emu}/client/v4/accounts/acct/ai/v1", "bench-token", 1),
                 "cfgateway proxy": client(f"{prx}/v1", "bench-proxy-key", 1),
                 "floor (bytes passthrough)": client(f"http://127.0.0.1:{fport}/v1", "unused", 1)}
        for _ in range(20):  # warm-up: connections, caches
            for side in sides.values():
                await one(side, False)
        pids = {"cfgateway proxy": proxy_pid, "floor (bytes passthrough)": floor_proc.pid} if proxy_pid else {}
        await sequential(sides, n, stream=False, pids=pids)
        await sequential(sides, n, stream=True)

    asyncio.run(hop())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--requests", type=int, default=1280, help="requests per load round (all clients together)")
    ap.add_argument("--emulators", type=int, default=2, help="emulator processes sharing the port")
    ap.add_argument("--client-procs", type=int, default=2, help="processes the concurrent clients are spread over")
    ap.add_argument("--workers", type=int, default=1, help="proxy worker processes")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", choices=["hop", "load"])
    ap.add_argument("--proxy-backend", choices=list(BACKENDS), default="default",
                    help="the proxy's upstream client: as shipped, httpx, or httpx without the fair pool")
    ap.add_argument("--serve-emulator", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--load-child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve_emulator:
        serve_emulator(a.serve_emulator)
        return
    if a.load_child:
        base, key, c, total = a.load_child
        load_child(base, key, int(c), int(total))
        return
    eport, pport = free_port(), free_port()
    emu, prx = f"http://127.0.0.1:{eport}", f"http://127.0.0.1:{pport}"
    env = {**os.environ, "CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": "bench-token",
           "CLOUDFLARE_API_BASE_URL": f"{emu}/client/v4", "CLOUDFLARE_AI_GATEWAY_BASE_URL": f"{emu}/v1",
           "CFGATEWAY_MAX_RETRIES": "0"}
    for var in ("CLOUDFLARE_AI_GATEWAY_ID", "CFGATEWAY_LEDGER", "CFGATEWAY_CONFIG", "CFGATEWAY_PROFILE"):
        env.pop(var, None)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {a.emulators} emulator processes, "
          f"{a.workers} proxy worker(s), proxy upstream client: {a.proxy_backend}", flush=True)
    with ExitStack() as stack:
        for _ in range(a.emulators):
            stack.enter_context(process([sys.executable, __file__, "--serve-emulator", str(eport)],
                                        f"{emu}/__emulator/health", env))
        launch = "; ".join(x for x in (BACKENDS[a.proxy_backend], "import sys", "from cfgateway.cli import main",
                                       "sys.exit(main(sys.argv[1:]))") if x)
        proxy_proc = stack.enter_context(process(
            [sys.executable, "-c", launch, "proxy", "--port", str(pport), "--endpoint", "openai",
             "--api-key", "bench:bench-proxy-key", "--workers", str(a.workers)], f"{prx}/healthz", env))
        if a.only in (None, "hop"):
            bench_hop(stack, emu, prx, proxy_proc.pid if a.workers == 1 else None, env, a.n)
        if a.only in (None, "load"):
            concurrent(emu, prx, a.concurrency, a.requests, a.client_procs, a.rounds)
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)


if __name__ == "__main__":
    main()
