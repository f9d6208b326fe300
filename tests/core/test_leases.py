"""Issue 10 finding 9: reservations are short leases, renewed while the call runs, released on exit, and a
process killed with ``kill -9`` holds budget for one lease at most (it held it for an hour)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import _redis
import pytest

from cfgateway import Budget, BudgetExceededError, CostTracker
from cfgateway.config import load_settings
from cfgateway.costs.ledger import RedisLedger, SQLiteLedger

MODEL = "openai/gpt-4o-mini"
CALL = Decimal("0.00075")  # 1000 in + 1000 out
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.fail(_redis.MISSING)
    with _redis.redis_server() as url:
        yield url


def where(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(tmp_path / "c.db")
    return str(request.getfixturevalue("redis_url"))


def open_ledger(kind: str, where: str, prefix: str) -> Any:
    return SQLiteLedger(where) if kind == "sqlite" else RedisLedger(where, prefix=prefix)


def tracker(kind: str, where: str, prefix: str, tmp: Path, ttl: float | None) -> CostTracker:
    return CostTracker(open_ledger(kind, where, prefix), [Budget(limit=CALL)], reservation_ttl=ttl, spool_dir=tmp)


def reserve(t: CostTracker) -> Any:
    return t.reserve(model=MODEL, provider="openai", user=None, input_tokens=1000, max_output_tokens=1000)


def test_the_default_lease_is_twice_the_call_timeout_within_bounds() -> None:
    assert CostTracker(settings=load_settings(env={})).reservation_ttl == 120.0  # timeout 60 s
    assert CostTracker(settings=load_settings(env={"CFGATEWAY_TIMEOUT": "600"})).reservation_ttl == 300.0
    assert CostTracker(settings=load_settings(env={"CFGATEWAY_TIMEOUT": "2"})).reservation_ttl == 30.0


def _reserve_then_die(kind: str, where: str, prefix: str, tmp: str) -> None:
    reserve(tracker(kind, where, prefix, Path(tmp), ttl=1.0))
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_killed_process_holds_budget_for_one_lease_only(kind: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:  # fmt: skip
    at, prefix = where(kind, tmp_path, request), f"l{uuid.uuid4().hex[:8]}"
    proc = multiprocessing.get_context("fork").Process(target=_reserve_then_die, args=(kind, at, prefix, str(tmp_path)))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    survivor = tracker(kind, at, prefix, tmp_path, ttl=1.0)
    with pytest.raises(BudgetExceededError):  # the dead call's hold still counts ...
        reserve(survivor)
    time.sleep(1.1)
    assert reserve(survivor) is not None  # ... for one lease, not an hour


def test_a_running_call_keeps_its_hold_past_its_lease(redis_url: str, tmp_path: Path) -> None:
    prefix = f"l{uuid.uuid4().hex[:8]}"
    running = tracker("redis", redis_url, prefix, tmp_path, ttl=0.5)
    other = tracker("redis", redis_url, prefix, tmp_path, ttl=0.5)
    held = reserve(running)
    for _ in range(4):  # 2 s: four leases long, renewed by the keeper thread
        time.sleep(0.5)
        with pytest.raises(BudgetExceededError):
            reserve(other)
    assert running.renew(held) is True and held.lease_until > time.time()
    running.release(held)
    assert running.renew(held) is False
    assert reserve(other) is not None


_EXITING = """
import sys
from decimal import Decimal
from cfgateway import Budget, CostTracker
from cfgateway.costs.ledger import SQLiteLedger
t = CostTracker(SQLiteLedger(sys.argv[1]), [Budget(limit=Decimal(sys.argv[2]))], reservation_ttl=600,
                spool_dir=sys.argv[3])
held = t.reserve(model="openai/gpt-4o-mini", provider="openai", user=None, input_tokens=1000, max_output_tokens=1000)
assert held is not None
print("reserved", flush=True)
"""  # exits without recording or releasing: a normal exit still frees the hold


def test_a_normal_exit_releases_the_process_holds(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(_EXITING), db, str(CALL), str(tmp_path)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0 and "reserved" in out.stdout, out.stderr
    assert reserve(tracker("sqlite", db, "", tmp_path, ttl=600)) is not None  # not held for 600 s
