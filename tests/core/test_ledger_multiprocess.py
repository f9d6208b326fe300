"""Many processes x many threads against one SQLite file / one Redis: nothing lost, totals exact,
and a hard limit holds across processes (forked workers; each opens its own ledger)."""

from __future__ import annotations

import multiprocessing
import shutil
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import _redis
import pytest

from cfgateway.costs.budget import Budget, CostTracker
from cfgateway.costs.ledger import RedisLedger, SQLiteLedger, UsageRecord
from cfgateway.errors import BudgetExceededError

PROCS, THREADS, PER_THREAD = 4, 8, 50
USERS = ("alice", "bob", None)
PROVIDERS = ("openai", "anthropic")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.fail(_redis.MISSING)
    with _redis.redis_server() as url:
        yield url


def _cost(p: int, t: int, i: int) -> Decimal:
    return Decimal(f"0.000{(p * 7 + t * 3 + i) % 9 + 1}37")  # 0.000137 ... 0.000937


def _record(p: int, t: int, i: int, now: float) -> UsageRecord:
    return UsageRecord(
        ts=now, model="openai/gpt-4o-mini", provider=PROVIDERS[(t + i) % 2], operation="chat",
        input_tokens=10, output_tokens=5, neurons=0.5, cost=_cost(p, t, i), user=USERS[(p + i) % 3],
        call_id=f"{p}-{t}-{i}",
    )  # fmt: skip


def _open(kind: str, where: str, prefix: str) -> Any:
    return SQLiteLedger(where) if kind == "sqlite" else RedisLedger(where, prefix=prefix)


def _in_threads(fn: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            fn(t)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def _add_worker(kind: str, where: str, prefix: str, now: float, p: int) -> None:
    try:
        led = _open(kind, where, prefix)

        def add(t: int) -> None:
            for i in range(PER_THREAD):
                led.add(_record(p, t, i, now))

        _in_threads(add)
        led.close()
    except BaseException:
        traceback.print_exc()
        raise SystemExit(1) from None


def _run_procs(target: Callable[..., None], *args: Any) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=target, args=(*args, p)) for p in range(PROCS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0] * PROCS


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str]:
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "shared.db"), ""
    return "redis", request.getfixturevalue("redis_url"), f"mp{uuid.uuid4().hex[:8]}"


def test_4_processes_x_8_threads_x_50_records_exact(store: tuple[str, str, str]) -> None:
    kind, where, prefix = store
    now = time.time()
    _run_procs(_add_worker, kind, where, prefix, now)
    led = _open(kind, where, prefix)
    got = led.records()
    assert len(got) == PROCS * THREADS * PER_THREAD == 1600
    assert len({r.call_id for r in got}) == 1600
    expected = [_record(p, t, i, now) for p in range(PROCS) for t in range(THREADS) for i in range(PER_THREAD)]
    total = sum((r.cost for r in expected if r.cost), Decimal(0))
    assert sum((r.cost for r in got if r.cost), Decimal(0)) == total
    since = now - 1
    assert led.spent(since=since) == total
    for user in ("alice", "bob"):
        assert led.spent(since=since, user=user) == sum((r.cost for r in expected if r.user == user and r.cost), Decimal(0))
    for provider in PROVIDERS:
        want = sum((r.cost for r in expected if r.provider == provider and r.cost), Decimal(0))
        assert led.spent(since=since, provider=provider) == want
    assert led.neurons(since=since) == 800.0
    led.close()


# -- a hard limit across processes -------------------------------------------------------------

CALL_COST = Decimal("0.00075")  # gpt-4o-mini, 1000 in + 1000 out: the reserved worst case = the actual cost
LIMIT = CALL_COST * 30 + Decimal("0.0001")  # affords exactly 30


def _budget_worker(kind: str, where: str, prefix: str, out: Any, p: int) -> None:
    try:
        tracker = CostTracker(_open(kind, where, prefix), [Budget(limit=LIMIT)])
        counts = {"ok": 0, "refused": 0}
        lock = threading.Lock()

        def call(t: int) -> None:
            for _ in range(5):
                try:
                    res = tracker.reserve(
                        model="openai/gpt-4o-mini", provider="openai", user=None, input_tokens=1000,
                        max_output_tokens=1000,
                    )  # fmt: skip
                except BudgetExceededError:
                    with lock:
                        counts["refused"] += 1
                    continue
                time.sleep(0.001)  # the request
                rec = UsageRecord(time.time(), "openai/gpt-4o-mini", "openai", "chat", 1000, 1000)
                tracker.record(rec, res)
                with lock:
                    counts["ok"] += 1

        _in_threads(call)
        out.put(counts)
    except BaseException:
        traceback.print_exc()
        raise SystemExit(1) from None


def test_hard_limit_holds_across_processes(store: tuple[str, str, str]) -> None:
    kind, where, prefix = store
    _open(kind, where, prefix).close()
    queue: Any = multiprocessing.get_context("fork").Queue()
    _run_procs(_budget_worker, kind, where, prefix, queue)
    counts = [queue.get(timeout=10) for _ in range(PROCS)]
    ok = sum(c["ok"] for c in counts)
    refused = sum(c["refused"] for c in counts)
    assert ok + refused == PROCS * THREADS * 5
    led = _open(kind, where, prefix)
    spent = led.spent(since=time.time() - 3600)
    assert spent <= LIMIT
    assert ok == 30 and spent == CALL_COST * 30
    assert len(led.records()) == 30
    led.close()
