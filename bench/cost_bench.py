"""Added time per call of cost tracking: off vs memory / SQLite / Redis ledgers, one run.

    .venv/bin/python bench/cost_bench.py

"off" builds the usage record the client builds anyway; the other rows add
``CostTracker.record`` (pricing + ledger write) and, with a budget, ``reserve`` first.
Starts its own redis-server on a free loopback port (Debian's ``redis-server`` must be
installed). Targets (issue 6): memory <= 20 us, SQLite <= 300 us added per call. The last row: a
record while the ledger cannot be reached (Redis on a closed port): spooled to a local file.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfgateway.costs.budget import Budget, CostTracker  # noqa: E402
from cfgateway.costs.ledger import MemoryLedger, RedisLedger, SQLiteLedger, UsageRecord  # noqa: E402

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str | None]:
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [exe, "--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(5)


def make_record() -> UsageRecord:
    return UsageRecord(
        ts=time.time(), model=MODEL, provider="workers-ai", operation="chat", input_tokens=812, output_tokens=233,
        latency_s=0.42, user="bench", tags={"app": "bench"}, call_id="c",
    )  # fmt: skip


def per_call_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(min(200, n)):  # warm up (connections, caches)
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def record_only(tracker: CostTracker) -> Callable[[], object]:
    return lambda: tracker.record(make_record())


def reserve_and_record(tracker: CostTracker) -> Callable[[], object]:
    def run() -> object:
        res = tracker.reserve(model=MODEL, provider="workers-ai", user="bench", input_tokens=812, max_output_tokens=512)
        return tracker.record(make_record(), res)

    return run


def main() -> None:
    budget = [Budget(limit=Decimal("1000000"), alerts=[Decimal("999999")])]
    with tempfile.TemporaryDirectory() as tmp, redis_server() as redis_url:
        ledgers: list[tuple[str, Callable[[], object], int]] = [
            ("memory", MemoryLedger, 20000),
            ("sqlite", lambda: SQLiteLedger(Path(tmp) / "bench.db"), 3000),
        ]
        if redis_url:
            ledgers.append(("redis", lambda: RedisLedger(redis_url, prefix="bench"), 3000))
        off = per_call_us(make_record, 20000)
        print(f"{'mode':<28}{'us/call':>10}{'added us':>10}")
        print(f"{'off (record built only)':<28}{off:>10.1f}{0.0:>10.1f}")
        for name, factory, n in ledgers:
            for label, wrap, budgets in (("", record_only, []), (" + budget", reserve_and_record, budget)):
                ledger = factory()
                tracker = CostTracker(ledger, budgets, spool_dir=Path(tmp) / "spool")  # type: ignore[arg-type]
                us = per_call_us(wrap(tracker), n)
                print(f"{name + label:<28}{us:>10.1f}{us - off:>10.1f}")
                ledger.close()  # type: ignore[attr-defined]
        logging.getLogger("cfgateway.cost").setLevel(logging.CRITICAL)  # the outage warnings are expected here
        down = RedisLedger(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.2, retries=0)
        spooling = CostTracker(down, spool_dir=Path(tmp) / "spool")
        us = per_call_us(record_only(spooling), 3000)
        print(f"{'ledger down (spooled)':<28}{us:>10.1f}{us - off:>10.1f}")
        spooling.flush_spool(timeout=0)
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url)
            print(f"{'(redis PING round trip)':<28}{per_call_us(client.ping, 3000):>10.1f}")
            client.close()
        else:
            print("redis: skipped (redis-server not installed: apt-get install redis-server)")


if __name__ == "__main__":
    main()
