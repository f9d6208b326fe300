"""LangChain adapter vs the competitors, side by side in one run on the same loopback emulator.

1. Per-call ``invoke`` time, interleaved (A, B, C, A, B, C, ...): ``ChatCloudflare`` vs langchain-openai's
   ``ChatOpenAI`` on the emulator's OpenAI-compatible ``/ai/v1`` route vs langchain-cloudflare's
   ``ChatCloudflareWorkersAI`` on the native ``/ai/run`` route.
2. Time to embed 5,000 texts with the emulator adding 20 ms to every request (a ``delay`` fault):
   ``CloudflareEmbeddings`` vs langchain-cloudflare's ``CloudflareWorkersAIEmbeddings``, sync and async.
3. Import time in fresh interpreters (median of several): ``import langchain_cfgateway`` and importing its
   classes vs ``import langchain_core.language_models`` (and ``BaseChatModel``, which every chat model pays).

The emulator runs in a child process so it does not share the GIL with the clients. The competitors are
never dependencies of this project: run the bench from a scratch venv::

    python3 -m venv .bench-venv
    .bench-venv/bin/pip install --upgrade 'pip>=25.1'
    .bench-venv/bin/pip install -e '.[all]' --group dev langchain-openai langchain-cloudflare
    .bench-venv/bin/python bench/langchain_bench.py [--calls 300] [--texts 5000] [--delay 0.02]

The embeddings section also prints the emulator's own work for the same 50 requests sent one at a time
without the delay, with a cold and a warm cache (the emulator keeps the JSON text of recent vectors; it
runs handlers on one event loop, so its CPU time per request is a floor for any client).
``--only embed --embed-model @cf/baai/bge-small-en-v1.5`` runs just that section with 384-dim vectors.
cfgateway decodes embedding bodies with orjson when it is importable (``cfgateway[fast]``; langsmith, hence
every langchain-core install, already depends on it); langchain-cloudflare uses ``requests``/httpx ``.json()``.
Note the emulator's feature-hashed vectors are sparse (~5 characters per float on the wire; real bge
vectors are dense, ~20), so real bodies cost both sides about 4x more to decode: the report ends with that
extra decoding measured on a dense body of the same shape and the ratio it would give (an estimate: the
bigger bodies' transfer and the server's encoding are not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
EMBED_MODEL = "@cf/baai/bge-base-en-v1.5"
TOKEN = "test-token"
ACCOUNT = "acct"


def serve_forever() -> None:
    """Child process: an emulator on a free loopback port until stdin closes."""
    from cfgateway.emulator.server import EmulatorServer

    with EmulatorServer() as server:
        print(server.url, flush=True)
        sys.stdin.read()


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"the emulator did not start: {url!r}")
    return proc, url


def control(url: str, path: str, payload: Any = None, method: str = "POST") -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(f"{url}/__emulator/{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - loopback emulator only
        return json.loads(r.read())


def ms(values: list[float]) -> str:
    s = sorted(values)
    return (f"median {statistics.median(s) * 1e3:7.3f} ms  mean {statistics.fmean(s) * 1e3:7.3f} ms  "
            f"p90 {s[int(len(s) * 0.9)] * 1e3:7.3f} ms")


def _competitors(base: str) -> dict[str, Callable[[], Any]]:
    """langchain-openai and langchain-cloudflare, when installed (they are never dependencies of this project)."""
    sides: dict[str, Callable[[], Any]] = {}
    try:
        from langchain_openai import ChatOpenAI

        oai = ChatOpenAI(model=CHAT_MODEL, base_url=f"{base}/accounts/{ACCOUNT}/ai/v1", api_key=TOKEN,  # type: ignore[call-arg, arg-type]
                         max_tokens=16)
        sides["ChatOpenAI (langchain-openai, /ai/v1)"] = lambda: oai.invoke(PROMPT)
    except ImportError:
        print("(langchain-openai is not installed: its row is left out)")
    try:
        from langchain_cloudflare import ChatCloudflareWorkersAI

        lcf = ChatCloudflareWorkersAI(model=CHAT_MODEL, account_id=ACCOUNT, api_token=TOKEN, base_url=base,
                                      max_tokens=16)
        sides["ChatCloudflareWorkersAI (langchain-cloudflare, /ai/run)"] = lambda: lcf.invoke(PROMPT)
    except ImportError:
        print("(langchain-cloudflare is not installed: its row is left out)")
    return sides


PROMPT = "Say hello in one word"
OURS = "ChatCloudflare (cfgateway, /ai/run)"
FLOOR = "minimal BaseChatModel, raw httpx (floor)"


def interleave(sides: dict[str, Callable[[], Any]], calls: int, warm: int = 30) -> dict[str, list[float]]:
    """Seconds per call of each side, the sides taking turns, the order rotating every round (A B C, B C A,
    C A B, ...): a side that always ran after a heavy one would pay for its garbage collections."""
    for _ in range(warm):  # warm-up: connections, caches
        for fn in sides.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in sides}
    names = list(sides)
    for i in range(calls):
        for name in names[i % len(names):] + names[:i % len(names)]:
            fn = sides[name]
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def bench_invoke(url: str, calls: int) -> None:
    from _floors import RawCall, langchain_floor

    from langchain_cfgateway import ChatCloudflare

    base = f"{url}/client/v4"
    ours = ChatCloudflare(model=CHAT_MODEL, account_id=ACCOUNT, api_token=TOKEN, base_url=base, max_tokens=16)
    floor = langchain_floor(base)
    raw = RawCall(base)
    pair: dict[str, Callable[[], Any]] = {OURS: lambda: ours.invoke(PROMPT), FLOOR: lambda: floor.invoke(PROMPT)}
    # context only (not the target): the competitors and the HTTP call without LangChain, timed apart so that
    # their garbage is not collected inside the two calls compared above
    others: dict[str, Callable[[], Any]] = {FLOOR: pair[FLOOR], **_competitors(base)}
    others["raw httpx POST, no LangChain"] = lambda: raw.post([{"role": "user", "content": PROMPT}])
    for name, fn in {**pair, **others}.items():
        assert fn(), name
    for title, sides in ((f"invoke vs the floor: {calls} calls per side, interleaved", pair),
                         ("context: other clients of the same emulator, interleaved with the floor", others)):
        times = interleave(sides, calls)
        print(f"\n== {title} ==")
        floor_med = statistics.median(times[FLOOR])
        for name, v in times.items():
            m = statistics.median(v)
            print(f"{name:<56} {ms(v)}   {m / floor_med:5.3f}x floor ({(m - floor_med) * 1e6:+6.0f} us)")


def bench_stream(url: str, calls: int) -> None:
    """``ChatCloudflare.stream`` vs the floor's: time to the first chunk and to the end, interleaved."""
    from _floors import langchain_floor

    from langchain_cfgateway import ChatCloudflare

    base = f"{url}/client/v4"
    ours = ChatCloudflare(model=CHAT_MODEL, account_id=ACCOUNT, api_token=TOKEN, base_url=base, max_tokens=16)
    models = {OURS: ours, FLOOR: langchain_floor(base)}
    first: dict[str, list[float]] = {k: [] for k in models}
    total: dict[str, list[float]] = {k: [] for k in models}

    def run(name: str) -> None:
        t = time.perf_counter()
        it = models[name].stream(PROMPT)
        assert next(it).content or True
        first[name].append(time.perf_counter() - t)
        for _ in it:
            pass
        total[name].append(time.perf_counter() - t)

    for i in range(calls + 30):
        for name in (models if i % 2 else reversed(list(models))):
            run(name)
        if i == 29:  # warm-up done
            for d in (first, total):
                for v in d.values():
                    v.clear()
    print(f"\n== stream: {calls} calls per side, interleaved ==")
    for label, d in (("first chunk", first), ("whole stream", total)):
        f = statistics.median(d[FLOOR])
        for name, v in d.items():
            m = statistics.median(v)
            print(f"{label:<13} {name:<42} {ms(v)}   {m / f:5.3f}x floor ({(m - f) * 1e6:+6.0f} us)")


def dense_decode_extra(sparse_body: bytes, n: int) -> tuple[float, float]:
    """Seconds that dense vectors would add to decoding ``n`` of them: (orjson, stdlib json).

    The emulator's feature-hashed vectors are mostly zeros (~5 characters a float); real bge vectors are
    dense (~20). Same shape, random dense values, decoded both ways; the difference is the estimate.
    """
    import random

    from cfgateway.wire.common import _orjson_loads

    doc = json.loads(sparse_body)
    rows, dims = doc["result"]["shape"]
    rng = random.Random(7)
    doc["result"]["data"] = [[rng.gauss(0, 1) / dims**0.5 for _ in range(dims)] for _ in range(rows)]
    dense_body = json.dumps(doc, separators=(",", ":")).encode()
    fast = _orjson_loads() or json.loads

    def per_body(loads: Callable[[bytes], Any], body: bytes) -> float:
        t = time.perf_counter()
        for _ in range(5):
            loads(body)
        return (time.perf_counter() - t) / 5

    scale = n / rows
    return ((per_body(fast, dense_body) - per_body(fast, sparse_body)) * scale,
            (per_body(json.loads, dense_body) - per_body(json.loads, sparse_body)) * scale)


def report_embed(n: int, model: str, delay: float, rounds: int, times: dict[str, list[float]],
                 requests: dict[str, int], cold: tuple[float, float], warm: tuple[float, float],
                 dense: tuple[float, float]) -> None:
    from cfgateway.wire.common import _orjson_loads

    decoder = "orjson" if _orjson_loads() is not None else "stdlib json"
    print(f"\n== embed {n} texts with {model}, +{delay * 1e3:.0f} ms per request, {rounds} interleaved rounds "
          f"(best shown; cfgateway decodes with {decoder}) ==")
    best = {k: min(v) for k, v in times.items()}
    for name, b in best.items():
        med = statistics.median(times[name])
        print(f"{name:<52} {b:7.3f} s  (median {med:.3f} s; {requests[name]} requests)")
    for label, (secs, per) in (("cold", cold), ("warm", warm)):
        text = f"emulator alone, {label} cache (raw httpx, no delay)"
        print(f"{text:<52} {secs:7.3f} s  ({-(-n // 100)} requests of 100, median {per:.1f} ms each)")
    for mode in ("embed_documents", "aembed_documents"):
        o = best[f"CloudflareEmbeddings.{mode} (cfgateway)"]
        t = best[f"CloudflareWorkersAIEmbeddings.{mode}"]
        mo = statistics.median(times[f"CloudflareEmbeddings.{mode} (cfgateway)"])
        mt = statistics.median(times[f"CloudflareWorkersAIEmbeddings.{mode}"])
        print(f"{mode}: cfgateway is {t / o:5.1f}x faster, best vs best ({mt / mo:.1f}x median vs median; "
              "target >= 10x)")
    print(f"dense vectors (real bge; the emulator's are sparse) would add about {dense[0]:.3f} s of decoding to "
          f"ours (orjson) and {dense[1]:.3f} s to theirs (stdlib json):")
    for mode in ("embed_documents", "aembed_documents"):
        o = best[f"CloudflareEmbeddings.{mode} (cfgateway)"] + dense[0]
        t = best[f"CloudflareWorkersAIEmbeddings.{mode}"] + dense[1]
        print(f"  {mode}: estimated {t / o:5.1f}x with dense vectors")


def bench_embed(url: str, n: int, rounds: int, delay: float = 0.02, model: str = EMBED_MODEL) -> None:
    import httpx
    from langchain_cloudflare import CloudflareWorkersAIEmbeddings

    from langchain_cfgateway import CloudflareEmbeddings

    texts = [f"document {i}: Workers AI embeddings for retrieval, batch test number {i % 97}" for i in range(n)]

    sample: bytes = b""

    def emulator_alone() -> tuple[float, float]:
        """(seconds, server-side ms per request): 100 texts a request, one at a time, no delay, no decoding."""
        with httpx.Client(timeout=120) as http:
            per: list[float] = []
            t = time.perf_counter()
            for i in range(0, n, 100):
                t0 = time.perf_counter()
                r = http.post(f"{url}/client/v4/accounts/{ACCOUNT}/ai/run/{model}", json={"text": texts[i:i + 100]},
                              headers={"Authorization": f"Bearer {TOKEN}"})
                r.raise_for_status()
                nonlocal sample
                sample = r.content
                per.append(time.perf_counter() - t0)
            return time.perf_counter() - t, statistics.median(per) * 1e3

    # The emulator's own work (hashing + JSON), one request at a time, no delay: first with a cold cache
    # (every text hashed and encoded), then warm (rows joined from its cache of encoded vectors).
    cold = emulator_alone()
    warm = emulator_alone()
    control(url, "faults", {"path": "*/ai/run/@cf/baai/*", "kind": "delay", "delay_s": delay, "times": None})
    ours = CloudflareEmbeddings(model=model, account_id=ACCOUNT, api_token=TOKEN, base_url=f"{url}/client/v4")
    theirs = CloudflareWorkersAIEmbeddings(model_name=model, account_id=ACCOUNT, api_token=TOKEN,
                                           api_base_url=f"{url}/client/v4/accounts")
    sides: dict[str, Callable[[], list[list[float]]]] = {
        "CloudflareEmbeddings.embed_documents (cfgateway)": lambda: ours.embed_documents(texts),
        "CloudflareWorkersAIEmbeddings.embed_documents": lambda: theirs.embed_documents(texts),
        "CloudflareEmbeddings.aembed_documents (cfgateway)": lambda: asyncio.run(ours.aembed_documents(texts)),
        "CloudflareWorkersAIEmbeddings.aembed_documents": lambda: asyncio.run(theirs.aembed_documents(texts)),
    }
    times: dict[str, list[float]] = {k: [] for k in sides}
    requests: dict[str, int] = {}
    first: list[list[float]] | None = None
    for _ in range(rounds):
        for name, fn in sides.items():
            control(url, "requests", method="DELETE")
            vectors = None  # free the previous side's 5,000 vectors (~40 ms) before the clock starts
            gc.collect()
            t = time.perf_counter()
            vectors = fn()
            times[name].append(time.perf_counter() - t)
            requests[name] = len(control(url, "requests", method="GET"))
            assert len(vectors) == n, name
            first = first or vectors
            assert vectors[0] == first[0] and vectors[-1] == first[-1], f"{name}: different vectors"
    control(url, "faults", method="DELETE")
    report_embed(n, model, delay, rounds, times, requests, cold, warm, dense_decode_extra(sample, n))


_OURS = "from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings, get_cloudflare_callback"
IMPORTS = {
    "import langchain_core.language_models": "import langchain_core.language_models",
    "from langchain_core.language_models import BaseChatModel": (
        "from langchain_core.language_models import BaseChatModel"),
    "import langchain_cfgateway": "import langchain_cfgateway",
    _OURS: _OURS,
    "import langchain_cloudflare": "import langchain_cloudflare",
}


def _import_seconds(*stmts: str) -> list[float]:
    """Seconds each of ``stmts`` takes, in order, in one fresh interpreter (start-up excluded)."""
    timed = "; ".join(f"t = time.perf_counter(); {s}; out.append(time.perf_counter() - t)" for s in stmts)
    code = f"import time; out = []; {timed}; print(out)"
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return [float(x) for x in res.stdout.strip().strip("[]").split(",")]


BASE_CHAT = "from langchain_core.language_models import BaseChatModel"


def bench_import(rounds: int) -> None:
    times: dict[str, list[float]] = {k: [] for k in IMPORTS}
    added: dict[str, list[float]] = {"langchain_cfgateway (3 names)": [], "langchain_cloudflare": []}
    for _ in range(rounds):
        for name, stmt in IMPORTS.items():
            times[name].append(_import_seconds(stmt)[0])
        added["langchain_cfgateway (3 names)"].append(_import_seconds(BASE_CHAT, IMPORTS[_OURS])[1])
        added["langchain_cloudflare"].append(_import_seconds(BASE_CHAT, "import langchain_cloudflare")[1])
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["import langchain_core.language_models"]
    chat_base = med[BASE_CHAT]
    print(f"\n== import time in a fresh interpreter (start-up excluded), median of {rounds} ==")
    for name, m in med.items():
        print(f"{m:6.3f} s  {m - base:+6.3f} vs language_models  {m - chat_base:+6.3f} vs BaseChatModel   {name}")
    print("added on top of BaseChatModel in the same interpreter (what a LangChain app pays extra):")
    for name, v in added.items():
        print(f"  {statistics.median(v):+6.3f} s  {name}   (target for ours <= +0.100 s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--texts", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5, help="embedding rounds; the best of each side is shown")
    ap.add_argument("--delay", type=float, default=0.02, help="seconds the emulator adds to each embedding request")
    ap.add_argument("--import-rounds", type=int, default=11)
    ap.add_argument("--embed-model", default=EMBED_MODEL, help="e.g. @cf/baai/bge-small-en-v1.5 (384 dims)")
    ap.add_argument("--only", choices=["invoke", "stream", "embed", "import"], help="run one section only")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_forever()
        return
    if args.only != "import":
        proc, url = start_emulator()
        try:
            if args.only in (None, "invoke"):
                bench_invoke(url, args.calls)
            if args.only in (None, "stream"):
                bench_stream(url, args.calls)
            if args.only in (None, "embed") and importlib.util.find_spec("langchain_cloudflare") is None:
                print("(langchain-cloudflare is not installed: the embedding comparison is left out; see the "
                      "module docstring for the scratch venv)")
            elif args.only in (None, "embed"):
                bench_embed(url, args.texts, args.rounds, args.delay, args.embed_model)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
    if args.only in (None, "import"):
        bench_import(args.import_rounds)


if __name__ == "__main__":
    main()
