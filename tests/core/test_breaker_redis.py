"""Issue 10 finding 14: breaker state shared through Redis (a real redis-server): one state per route for every
process, exactly one half-open probe across processes, one ``on_change`` per transition, the same rules as the
in-process breaker, and no Redis error ever reaching a caller."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import _redis
import pytest

from cfgateway.config import load_settings
from cfgateway.routing.breaker import BreakerSettings, CircuitBreaker

PROCS, THREADS = 4, 8


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.fail(_redis.MISSING)
    with _redis.redis_server() as url:
        yield url


@pytest.fixture(params=["local", "redis"])
def make(request: pytest.FixtureRequest) -> Any:
    """Build breakers on one backend; every breaker of a test shares its state when the backend is Redis."""
    name = f"t{uuid.uuid4().hex[:8]}"
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def build(*args: Any, **kw: Any) -> CircuitBreaker:
        return CircuitBreaker(*args, redis=url, name=name, **kw)

    return build


def test_rate_rule_window_and_consecutive_rule_on_both_backends(make: Any) -> None:
    clock = Clock()
    b = make(settings=BreakerSettings(consecutive_failures=None, min_calls=10, failure_rate=0.5, window=60),
             clock=clock)  # fmt: skip
    for _ in range(9):
        b.failure("a")
    assert b.state("a") == "closed"
    clock.now += 61
    for _ in range(9):
        b.success("a")
    b.failure("a")
    assert b.state("a") == "closed"  # the nine old failures left the window: 1 of 10
    for _ in range(8):
        b.failure("a")
    assert b.state("a") == "open"  # 9 of 18
    c = make(3, 10.0, clock=clock)
    for _ in range(2):
        c.failure("x")
    c.success("x")
    c.failure("x")
    c.failure("x")
    assert c.state("x") == "closed"
    c.failure("x")
    assert c.state("x") == "open"


def test_probe_growth_and_on_change_on_both_backends(make: Any) -> None:
    clock = Clock()
    changes: list[tuple[str, str, str]] = []
    b = make(1, 10.0, clock=clock, on_change=lambda *c: changes.append(c))
    b.failure("a")
    assert b.retry_in("a") == pytest.approx(10.0)
    clock.now += 10.5
    assert b.state("a") == "half_open" and b.allow("a") and not b.allow("a")
    b.release("a")
    assert b.allow("a")
    b.failure("a")
    assert b.retry_in("a") == pytest.approx(20.0)
    clock.now += 20.5
    assert b.allow("a")
    b.success("a")
    assert b.state("a") == "closed" and b.retry_in("a") == 0
    assert changes == [("a", "closed", "open"), ("a", "open", "half_open"), ("a", "half_open", "open"),
                       ("a", "open", "half_open"), ("a", "half_open", "closed")]  # fmt: skip
    assert set(b.snapshot()) <= {"a"}


def _fail_until_open(url: str, name: str, out: Any) -> None:
    changes: list[tuple[str, str, str]] = []
    b = CircuitBreaker(settings=BreakerSettings(consecutive_failures=None, min_calls=40, failure_rate=0.5),
                       redis=url, name=name, on_change=lambda *c: changes.append(c))  # fmt: skip

    def fail() -> None:
        for _ in range(20):
            b.failure("@cf/route")

    threads = [threading.Thread(target=fail) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(changes)


def test_processes_share_one_state_and_one_transition(redis_url: str) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    mp = multiprocessing.get_context("fork")
    out = mp.Queue()
    procs = [mp.Process(target=_fail_until_open, args=(redis_url, name, out)) for _ in range(PROCS)]
    for p in procs:
        p.start()
    changes = [c for _ in procs for c in out.get(timeout=60)]
    for p in procs:
        p.join(30)
    assert changes == [("@cf/route", "closed", "open")]  # 640 failures racing: one opening, told once
    here = CircuitBreaker(redis=redis_url, name=name)
    assert here.state("@cf/route") == "open" and not here.allow("@cf/route")
    assert CircuitBreaker(redis=redis_url, name="other").state("@cf/route") == "closed"  # names are apart


def _probe(url: str, name: str, start: float, out: Any) -> None:
    b = CircuitBreaker(1, 0.5, redis=url, name=name)
    barrier = threading.Barrier(THREADS)
    got: list[bool] = []

    def probe() -> None:
        barrier.wait()
        while time.time() < start:
            pass
        got.append(b.allow("@cf/route"))

    threads = [threading.Thread(target=probe) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(sum(got))


def test_exactly_one_half_open_probe_across_processes(redis_url: str) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    CircuitBreaker(1, 0.5, redis=redis_url, name=name).failure("@cf/route")
    mp = multiprocessing.get_context("fork")
    out = mp.Queue()
    start = time.time() + 1.0  # past the cooldown, all at once
    procs = [mp.Process(target=_probe, args=(redis_url, name, start, out)) for _ in range(PROCS)]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert total == 1


def test_redis_down_falls_back_to_this_process_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    b = CircuitBreaker(2, 10.0, redis=f"redis://127.0.0.1:{_redis.free_port()}/0")
    with caplog.at_level(logging.WARNING, logger="cfgateway.breaker"):
        assert b.allow("a")
        b.failure("a")
        b.failure("a")
        assert b.state("a") == "open" and not b.allow("a")  # the local state still protects the route
    assert sum("cannot be reached" in r.getMessage() for r in caplog.records) == 1


def test_from_settings_shares_through_a_redis_ledger(redis_url: str) -> None:
    settings, name = load_settings(env={"CFGATEWAY_LEDGER": redis_url}), f"t{uuid.uuid4().hex[:8]}"
    b = CircuitBreaker.from_settings(settings, failure_threshold=1, name=name)
    assert b.shared
    b.failure("m")
    assert CircuitBreaker(redis=redis_url, name=name).state("m") == "open"
    assert not CircuitBreaker.from_settings(load_settings(env={})).shared
    local = load_settings(env={"CFGATEWAY_LEDGER": redis_url}).with_overrides(breaker={"shared": False})
    assert not CircuitBreaker.from_settings(local).shared
