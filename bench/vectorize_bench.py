"""Big Vectorize writes: requests in flight at once (``max_concurrency``) vs one at a time, and the client's own
CPU per vector (validation + NDJSON encoding), side by side in one run.

Each upsert request gets an injected server latency (``--latency``, like a far-away region); the emulator runs in
this process, so its JSON parsing shares the CPU with the client and flattens the ratio (Cloudflare's parsing
does not run on your machine).

    .venv/bin/python bench/vectorize_bench.py [--vectors 40000] [--dims 16] [--latency 0.25]
"""

from __future__ import annotations

import argparse
import time

from cfgateway.emulator import EmulatorServer, Fault
from cfgateway.vectorize import Vector, VectorizeClient, plans, wire


def _write(server: EmulatorServer, vectors: list[Vector], dims: int, concurrency: int, latency: float) -> float:
    server.state.clear()
    server.state.add_fault(Fault("*/upsert", "delay", delay_s=latency))
    client = VectorizeClient(account_id="acct", api_token="bench", base_url=server.base_url,
                             max_concurrency=concurrency)
    index = client.index("bench")
    index.create(dims)
    start = time.perf_counter()
    index.upsert(vectors, wait=False)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", type=int, default=40_000)
    ap.add_argument("--dims", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.25)
    args = ap.parse_args()
    vectors = [Vector(f"v{i}", [((i * 7 + j) % 13) / 13 for j in range(args.dims)]) for i in range(args.vectors)]
    start = time.perf_counter()
    prepared = plans.prepare_vectors(vectors, None, args.dims)
    [wire.vector_line(v) for v in prepared]
    cpu = time.perf_counter() - start
    print(f"client CPU (validate + encode): {cpu * 1e6 / args.vectors:.1f} us per vector of {args.dims} dims")
    with EmulatorServer() as server:
        times = {c: _write(server, vectors, args.dims, c, args.latency) for c in (1, 4, 1, 4)}
    print(f"{args.vectors} vectors, {args.latency * 1000:.0f} ms per request: one at a time {times[1]:.2f}s, "
          f"4 in flight {times[4]:.2f}s, ratio {times[1] / times[4]:.2f}x")


if __name__ == "__main__":
    main()
