"""Circuit breaker: states, half-open probe, sharing across threads and asyncio tasks, the registry."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cfgateway.errors import CircuitOpenError
from cfgateway.routing.breaker import CircuitBreaker, reset_shared_breakers, shared_breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_consecutive_failures_and_a_success_resets_the_count() -> None:
    b = CircuitBreaker(3, 30.0, clock=Clock())
    b.failure("a")
    b.failure("a")
    b.success("a")  # not consecutive any more
    b.failure("a")
    b.failure("a")
    assert b.state("a") == "closed" and b.allow("a")
    b.failure("a")
    assert b.state("a") == "open" and not b.allow("a")
    assert b.state("other") == "closed" and b.allow("other")  # keyed by route


def test_half_open_lets_exactly_one_probe_through_and_its_success_closes() -> None:
    clock = Clock()
    b = CircuitBreaker(1, 30.0, clock=clock)
    b.failure("a")
    clock.now += 29.9
    assert not b.allow("a") and 0 < b.retry_in("a") <= 0.1
    clock.now += 0.2
    assert b.state("a") == "half_open"
    assert b.allow("a") is True  # the probe
    assert b.allow("a") is False  # everyone else waits for it
    b.success("a")
    assert b.state("a") == "closed" and b.allow("a") and b.allow("a")


def test_failed_probe_reopens_for_a_longer_cooldown() -> None:
    clock = Clock()
    b = CircuitBreaker(2, 10.0, clock=clock)
    b.failure("a")
    b.failure("a")
    clock.now += 10.5
    assert b.allow("a")
    b.failure("a")
    assert b.state("a") == "open" and b.retry_in("a") == pytest.approx(20.0)  # cooldown_growth 2
    clock.now += 15
    assert not b.allow("a")


def test_released_probe_frees_the_slot_and_a_vanished_probe_expires() -> None:
    clock = Clock()
    b = CircuitBreaker(1, 10.0, clock=clock)
    b.failure("a")
    clock.now += 11
    assert b.allow("a") and not b.allow("a")
    b.release("a")  # e.g. the probe call ended in bad input: says nothing about the route
    assert b.allow("a") and not b.allow("a")
    clock.now += 11  # the probe never reported
    assert b.allow("a")


def test_failures_while_open_do_not_extend_the_cooldown() -> None:
    clock = Clock()
    b = CircuitBreaker(1, 10.0, clock=clock)
    b.failure("a")
    clock.now += 5
    b.failure("a")  # a call that was already in flight when it opened
    clock.now += 5.5
    assert b.state("a") == "half_open"


def test_shared_across_threads() -> None:
    b = CircuitBreaker(50, 30.0)
    barrier = threading.Barrier(20)

    def fail(_: int) -> None:
        barrier.wait()
        for _ in range(5):
            b.failure("a")

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(fail, range(20)))
    assert b.state("a") == "open"  # 100 failures from 20 threads, none lost below the threshold


def test_half_open_probe_is_unique_across_threads_and_tasks() -> None:
    clock = Clock()
    b = CircuitBreaker(1, 1.0, clock=clock)
    b.failure("a")
    clock.now += 2
    barrier = threading.Barrier(32)

    def probe(_: int) -> bool:
        barrier.wait()
        return b.allow("a")

    with ThreadPoolExecutor(32) as pool:
        assert sum(pool.map(probe, range(32))) == 1

    b.release("a")

    async def many() -> int:
        async def one() -> bool:
            await asyncio.sleep(0)
            return b.allow("a")

        return sum(await asyncio.gather(*(one() for _ in range(50))))

    assert asyncio.run(many()) == 1


def test_registry_shares_by_name_and_snapshot() -> None:
    reset_shared_breakers()
    a = shared_breaker("t", failure_threshold=1, cooldown=5)
    assert shared_breaker("t") is a and shared_breaker("u") is not a
    a.failure("m")
    assert shared_breaker("t").snapshot() == {"m": "open"}
    reset_shared_breakers()
    assert shared_breaker("t") is not a


def test_validation_and_error_text() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0)
    with pytest.raises(ValueError):
        CircuitBreaker(1, -1)
    err = CircuitOpenError("@cf/x", 12.34)
    assert "@cf/x" in str(err) and "12.3s" in str(err) and err.reason == "circuit_open"
