"""The key-value state every shipped ledger keeps (memory, SQLite, a real Redis), and the shadow
fields of a usage record surviving each backend."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import _redis
import pytest

from cfgateway.costs.ledger import MemoryLedger, RedisLedger, SQLiteLedger, StateStore, UsageRecord, open_ledger


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.fail(_redis.MISSING)
    with _redis.redis_server() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "redis"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        led: Any = MemoryLedger()
    elif request.param == "sqlite":
        led = SQLiteLedger(tmp_path / "costs.db")
    else:
        led = RedisLedger(request.getfixturevalue("redis_url"), prefix=f"t{uuid.uuid4().hex[:8]}")
    yield led
    led.close()


def test_get_set_and_compare_and_set(ledger: Any) -> None:
    assert isinstance(ledger, StateStore)
    assert ledger.get_state("stage") is None
    assert ledger.compare_and_set("stage", "x", "1") is False  # expected a value, none stored
    assert ledger.compare_and_set("stage", None, "1") is True
    assert ledger.compare_and_set("stage", None, "2") is False  # already there
    assert ledger.get_state("stage") == "1"
    assert ledger.compare_and_set("stage", "0", "2") is False
    assert ledger.compare_and_set("stage", "1", "2") is True
    assert ledger.get_state("stage") == "2"
    ledger.set_state("stage", '{"a": "é"}')
    assert ledger.get_state("stage") == '{"a": "é"}'
    assert ledger.get_state("other") is None


def test_expired_values_read_as_missing(ledger: Any) -> None:
    ledger.set_state("short", "v", expires=time.time() + 0.15)
    ledger.set_state("long", "v", expires=time.time() + 60)
    assert ledger.get_state("short") == "v"
    time.sleep(0.3)
    assert ledger.get_state("short") is None and ledger.get_state("long") == "v"
    assert ledger.compare_and_set("short", None, "again") is True


def test_bad_keys_and_values_are_refused(ledger: Any) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ledger.set_state("", "v")
    with pytest.raises(TypeError, match="JSON text"):
        ledger.set_state("k", 3)


def test_shadow_fields_round_trip(ledger: Any) -> None:
    r = UsageRecord(ts=time.time(), model="@cf/meta/llama-3.3-70b-instruct-fp8-fast", provider="workers-ai",
                    operation="chat", outcome="shadow", cost=Decimal("0.00012"), latency_s=0.8, similarity=0.9731,
                    baseline="openai/gpt-4o-mini", baseline_latency_s=0.5, baseline_cost=Decimal("0.0003"))
    failed = UsageRecord(ts=time.time(), model="m", provider="workers-ai", operation="chat", outcome="shadow",
                         error="ServerError", baseline="openai/gpt-4o-mini")
    plain = UsageRecord(ts=time.time(), model="m", provider="openai", operation="chat", cost=Decimal("0.1"))
    for x in (r, failed, plain):
        ledger.add(x)
    got = ledger.records()
    assert [g.to_dict() for g in got] == [r.to_dict(), failed.to_dict(), plain.to_dict()]
    assert got[0].baseline_cost == Decimal("0.0003") and got[0].shadow and got[0].succeeded
    assert got[1].shadow and not got[1].succeeded and got[2].succeeded and not got[2].shadow


def test_an_older_sqlite_file_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SQLiteLedger(path).close()
    conn = sqlite3.connect(path)  # make it look like a file written before the shadow columns existed
    conn.executescript("ALTER TABLE records DROP COLUMN similarity; ALTER TABLE records DROP COLUMN error;"
                       "INSERT INTO records (ts, day, model, provider, operation) VALUES (1.0, 0, 'm', 'p', 'chat')")
    conn.close()
    led = SQLiteLedger(path)
    led.add(UsageRecord(ts=2.0, model="m", provider="p", operation="chat", outcome="shadow", similarity=0.5,
                        error="TimeoutError"))
    old, new = led.records()
    assert old.similarity is None and new.similarity == 0.5 and new.error == "TimeoutError"
    led.close()


_RACE = """
import sys
from cfgateway.costs.ledger import open_ledger
led = open_ledger(sys.argv[1])
wins = 0
for i in range(200):
    while True:
        cur = led.get_state("counter")
        if led.compare_and_set("counter", cur, str(int(cur or 0) + 1)):
            wins += 1
            break
print(wins)
"""


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_compare_and_set_is_atomic_across_processes(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path}/race.db" if kind == "sqlite" else request.getfixturevalue("redis_url")
    if kind == "redis":
        open_ledger(url).set_state("counter", "0")  # db 0 is this module's own server
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, url], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [int(o) for o in outs] == [200, 200, 200]
    assert open_ledger(url).get_state("counter") == "600"  # no increment lost
