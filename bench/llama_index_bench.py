"""LlamaIndex adapter vs its honest floors, side by side in one run on the same loopback emulator.

1. ``CloudflareLLM.chat`` (and ``stream_chat``: first chunk, whole stream) vs a minimal LlamaIndex ``CustomLLM``
   whose ``complete``/``stream_complete`` make the same raw httpx call (``bench/_floors.py``), interleaved.
2. ``CloudflareEmbedding.get_text_embedding_batch`` / ``aget_text_embedding_batch`` of 5,000 texts with the
   emulator adding 20 ms to every request, vs the sequential bound (the same 50 requests sent one after
   another with raw httpx), the concurrent floor (the same batches 8 at a time with raw async httpx + orjson:
   what the transfer and decoding alone cost on this machine) and LangChain's ``CloudflareEmbeddings`` doing the
   same job. The LlamaIndex runs
   keep their per-batch events: a callback handler counts one embedding event pair per LlamaIndex batch.

    python bench/llama_index_bench.py [--calls 300] [--texts 5000] [--delay 0.02] [--rounds 5] [--only chat|embed]

The emulator runs in a child process (``bench/langchain_bench.py --serve``) so it does not share the GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from _floors import ACCOUNT, CHAT_MODEL, TOKEN, llama_index_floor
from langchain_bench import control, interleave, ms, start_emulator

EMBED_MODEL = "@cf/baai/bge-base-en-v1.5"
PROMPT = "Say hello in one word"
OURS = "CloudflareLLM.chat (cfgateway)"
FLOOR = "minimal CustomLLM.chat, raw httpx (floor)"


def bench_chat(url: str, calls: int) -> None:
    from llama_index.core.llms import ChatMessage

    from llama_index_cfgateway import CloudflareLLM

    base = f"{url}/client/v4"
    ours = CloudflareLLM(model=CHAT_MODEL, account_id=ACCOUNT, api_token=TOKEN, base_url=base, max_tokens=16)
    floor = llama_index_floor(base)
    msgs = [ChatMessage(role="user", content=PROMPT)]
    sides: dict[str, Callable[[], Any]] = {OURS: lambda: ours.chat(msgs), FLOOR: lambda: floor.chat(msgs)}
    times = interleave(sides, calls)
    print(f"\n== chat: {calls} calls per side, interleaved ==")
    report(times)

    first: dict[str, list[float]] = {"CloudflareLLM.stream_chat": [], "minimal CustomLLM.stream_chat (floor)": []}
    total: dict[str, list[float]] = {k: [] for k in first}
    models = dict(zip(first, (ours, floor), strict=True))
    for i in range(calls + 30):
        for name, m in (models.items() if i % 2 else reversed(list(models.items()))):
            t = time.perf_counter()
            it = m.stream_chat(msgs)
            next(it)
            f = time.perf_counter() - t
            for _ in it:
                pass
            if i >= 30:
                first[name].append(f)
                total[name].append(time.perf_counter() - t)
    print(f"\n== stream_chat: {calls} calls per side, interleaved ==")
    report(first, "first chunk ")
    report(total, "whole stream ")


def report(times: dict[str, list[float]], label: str = "") -> None:
    names = list(times)
    floor = statistics.median(times[names[1]])
    for name, v in times.items():
        m = statistics.median(v)
        print(f"{label}{name:<46} {ms(v)}   {m / floor:5.3f}x floor ({(m - floor) * 1e6:+6.0f} us)")


class EventCount:
    """A LlamaIndex callback handler counting embedding events (start and end)."""

    def __init__(self) -> None:
        from llama_index.core.callbacks import CBEventType
        from llama_index.core.callbacks.base_handler import BaseCallbackHandler

        counts = self.counts = {"start": 0, "end": 0}

        class Handler(BaseCallbackHandler):
            def __init__(self) -> None:
                super().__init__([], [])

            def on_event_start(self, event_type: Any, payload: Any = None, event_id: str = "", parent_id: str = "",
                               **kw: Any) -> str:
                if event_type == CBEventType.EMBEDDING:
                    counts["start"] += 1
                return event_id

            def on_event_end(self, event_type: Any, payload: Any = None, event_id: str = "", **kw: Any) -> None:
                if event_type == CBEventType.EMBEDDING:
                    counts["end"] += 1

            def start_trace(self, trace_id: str | None = None) -> None:
                return None

            def end_trace(self, trace_id: str | None = None, trace_map: Any = None) -> None:
                return None

        self.handler = Handler()


def sequential(url: str, texts: list[str], model: str) -> list[list[float]]:
    """The bound: every batch of 100 sent one after another with raw httpx, decoded with json."""
    out: list[list[float]] = []
    with httpx.Client(timeout=120) as http:
        for i in range(0, len(texts), 100):
            r = http.post(f"{url}/client/v4/accounts/{ACCOUNT}/ai/run/{model}", json={"text": texts[i:i + 100]},
                          headers={"Authorization": f"Bearer {TOKEN}"})
            out.extend(r.json()["result"]["data"])
    return out


def concurrent_floor(url: str, texts: list[str], model: str, concurrency: int = 8) -> list[list[float]]:
    """The least the concurrent path can cost: the same batches of 100 sent ``concurrency`` at a time with raw
    ``httpx.AsyncClient``, decoded with orjson when installed (else json), nothing else."""
    loads: Callable[[bytes], Any] = json.loads
    try:
        import orjson
        loads = orjson.loads
    except ImportError:  # pragma: no cover - the [fast] extra is installed for the benches
        pass

    async def run() -> list[list[float]]:
        sem = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=120) as http:
            async def one(i: int) -> list[list[float]]:
                async with sem:
                    r = await http.post(f"{url}/client/v4/accounts/{ACCOUNT}/ai/run/{model}",
                                        json={"text": texts[i:i + 100]}, headers={"Authorization": f"Bearer {TOKEN}"})
                return list(loads(r.content)["result"]["data"])
            parts = await asyncio.gather(*(one(i) for i in range(0, len(texts), 100)))
        return [v for part in parts for v in part]
    return asyncio.run(run())


def bench_embed(url: str, n: int, rounds: int, delay: float) -> None:
    from llama_index.core.callbacks import CallbackManager

    from langchain_cfgateway import CloudflareEmbeddings
    from llama_index_cfgateway import CloudflareEmbedding

    texts = [f"document {i}: Workers AI embeddings for retrieval, batch test number {i % 97}" for i in range(n)]
    base = f"{url}/client/v4"
    counter = EventCount()
    ours = CloudflareEmbedding(model_name=EMBED_MODEL, account_id=ACCOUNT, api_token=TOKEN, base_url=base,
                               callback_manager=CallbackManager([counter.handler]))
    lc = CloudflareEmbeddings(model=EMBED_MODEL, account_id=ACCOUNT, api_token=TOKEN, base_url=base)
    sides: dict[str, Callable[[], list[list[float]]]] = {
        "sequential bound (raw httpx, 50 requests in a row)": lambda: sequential(url, texts, EMBED_MODEL),
        "concurrent floor (raw async httpx + orjson, 8 at once)": lambda: concurrent_floor(url, texts, EMBED_MODEL),
        "CloudflareEmbedding.get_text_embedding_batch": lambda: ours.get_text_embedding_batch(texts),
        "CloudflareEmbedding.aget_text_embedding_batch": lambda: asyncio.run(ours.aget_text_embedding_batch(texts)),
        "CloudflareEmbeddings.embed_documents (LangChain)": lambda: lc.embed_documents(texts),
    }
    control(url, "faults", {"path": "*/ai/run/@cf/baai/*", "kind": "delay", "delay_s": delay, "times": None})
    times: dict[str, list[float]] = {k: [] for k in sides}
    events: dict[str, int] = {}
    first: list[list[float]] | None = None
    try:
        for _ in range(rounds):
            for name, fn in sides.items():
                counter.counts.update(start=0, end=0)
                t = time.perf_counter()
                vectors = fn()
                times[name].append(time.perf_counter() - t)
                events[name] = counter.counts["end"] if counter.counts["start"] == counter.counts["end"] else -1
                assert len(vectors) == n, name
                first = first or vectors
                assert vectors[0] == first[0] and vectors[-1] == first[-1], f"{name}: different vectors"
    finally:
        control(url, "faults", method="DELETE")
    requests = -(-n // ours.embed_batch_size)
    bound = requests * delay  # the bound: the requests sent one after another, each taking `delay`
    measured = statistics.median(times["sequential bound (raw httpx, 50 requests in a row)"])
    print(f"\n== embed {n} texts with {EMBED_MODEL}, +{delay * 1e3:.0f} ms per request, {rounds} interleaved rounds; "
          f"embed_batch_size {ours.embed_batch_size}; sequential bound {requests} x {delay * 1e3:.0f} ms = "
          f"{bound:.2f} s (measured with raw httpx + json: {measured:.2f} s) ==")
    for name, v in times.items():
        m = statistics.median(v)
        ev = f"  {events[name]} embedding events" if events.get(name) else ""
        print(f"{name:<52} median {m:6.3f} s (min {min(v):.3f}, max {max(v):.3f})  {m / bound:5.2f}x the bound"
              f"{ev}  (target <= 0.30x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--texts", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--delay", type=float, default=0.02)
    ap.add_argument("--only", choices=["chat", "embed"])
    args = ap.parse_args()
    proc, url = start_emulator()
    try:
        if args.only in (None, "chat"):
            bench_chat(url, args.calls)
        if args.only in (None, "embed"):
            bench_embed(url, args.texts, args.rounds, args.delay)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
