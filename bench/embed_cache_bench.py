"""The embedding cache's acceptance run, measured: the same 1,000 texts embedded twice per backend.

    .venv/bin/python bench/embed_cache_bench.py [N_TEXTS]

For each cache (none, memory, SQLite, Redis) it prints the requests the emulator received and the cost booked
in the ledger on the first and second run, and the wall time of each, side by side (the second run's time
over the first: what a cache lookup costs against embedding over loopback; against Cloudflare the first run
is slower still). Starts the emulator and its own redis-server on free loopback ports (Debian's
``redis-server``; the Redis row is skipped without it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfgateway import Client, CostTracker  # noqa: E402
from cfgateway.cache import MemoryEmbeddingCache, RedisEmbeddingCache, SQLiteEmbeddingCache  # noqa: E402
from cfgateway.costs.ledger import MemoryLedger  # noqa: E402
from cfgateway.emulator.config import EmulatorConfig  # noqa: E402
from cfgateway.emulator.server import EmulatorServer  # noqa: E402

MODEL = "@cf/baai/bge-base-en-v1.5"


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


def one_run(client: Client, emu: EmulatorServer, texts: list[str], ledger: MemoryLedger) -> tuple[int, Decimal, float]:
    before, booked = len(emu.state.requests), len(ledger.records())
    start = time.perf_counter()
    client.embed(texts)
    elapsed = time.perf_counter() - start
    spent = sum((r.cost or Decimal(0) for r in ledger.records()[booked:]), Decimal(0))
    return len(emu.state.requests) - before, spent, elapsed


def main(n: int = 1000) -> list[dict[str, Any]]:
    texts = [f"passage {i}: Workers AI embeds text close to the user, and a cache keeps it" for i in range(n)]
    rows = []
    with EmulatorServer(EmulatorConfig(api_token="tok")) as emu, redis_server() as redis, \
            tempfile.TemporaryDirectory() as tmp:
        caches: dict[str, Any] = {"none": False, "memory": MemoryEmbeddingCache(),
                                  "sqlite": SQLiteEmbeddingCache(Path(tmp) / "bench.db")}
        if redis:
            caches["redis"] = RedisEmbeddingCache(redis, prefix="bench")
        Client(MODEL, account_id="acct", api_token="tok", base_url=emu.base_url, endpoint="direct").embed(texts)
        print(f"{n} texts, {MODEL}, emulator on loopback (warmed up: its answers are cached, so every first run "
              "is as fast as loopback allows)")
        print(f"{'cache':8} {'1st req':>7} {'1st cost':>12} {'1st s':>7} {'2nd req':>7} {'2nd cost':>9} {'2nd s':>7}"
              f" {'2nd/1st':>8}")
        for name, cache in caches.items():
            ledger = MemoryLedger()
            client = Client(MODEL, embed_cache=cache, tracker=CostTracker(ledger), account_id="acct", api_token="tok",
                            base_url=emu.base_url, endpoint="direct")
            r1, c1, t1 = one_run(client, emu, texts, ledger)
            r2, c2, t2 = one_run(client, emu, texts, ledger)
            print(f"{name:8} {r1:7d} {'$' + str(c1):>12} {t1:7.3f} {r2:7d} {'$' + str(c2):>9} {t2:7.3f}"
                  f" {t2 / t1:8.2f}")
            rows.append({"cache": name, "first": (r1, c1, t1), "second": (r2, c2, t2)})
            client.close()
            if cache is not False:
                cache.close()
        if not redis:
            print("(redis-server not installed: no Redis row)")
    return rows


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
