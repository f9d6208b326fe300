"""A broken embedding cache never fails a call: Redis stopped (from the start, or mid-life and back), a file
that is not a database, a cache that raises or answers nonsense. One warning per outage; secrets never printed.
Hits never count as spend: budgets, ``cfgateway costs`` and the tally."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import _redis
import pytest
from _embed_cache import embed_requests
from _emu import emulator_fixtures

from cfgateway import Budget, Client, CostTracker
from cfgateway.cache import MemoryEmbeddingCache, RedisEmbeddingCache
from cfgateway.cli import main as cli_main
from cfgateway.config import describe, load_settings
from cfgateway.costs.ledger import SQLiteLedger
from cfgateway.costs.tally import CostTally
from cfgateway.emulator.config import EmulatorConfig
from cfgateway.emulator.server import EmulatorServer

BGE = "@cf/baai/bge-base-en-v1.5"
TEXTS = [f"outage text {i}" for i in range(150)]


server, emu = emulator_fixtures(EmulatorConfig(api_token="tok"))


def conn(emu: EmulatorServer, **extra: Any) -> dict[str, Any]:
    return {"account_id": "acct", "api_token": "tok", "base_url": emu.base_url, "endpoint": "direct",
            "max_retries": 0, **extra}


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cfgateway.cache" and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("run_async", [False, True])
def test_redis_down_from_the_start(run_async: bool, emu: EmulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:pa55word-xyz@127.0.0.1:{_redis.free_port()}/0"  # nothing listens there
    client = Client(BGE, embed_cache=RedisEmbeddingCache(url), **conn(emu))
    with caplog.at_level(logging.DEBUG):
        if run_async:
            first, second = asyncio.run(client.aembed(TEXTS)), asyncio.run(client.aembed(TEXTS))
        else:
            first, second = client.embed(TEXTS), client.embed(TEXTS)
    assert first.vectors == second.vectors and len(first.vectors) == 150
    assert len(embed_requests(emu)) == 4 and first.cached == second.cached == 0
    (warning,) = warnings_of(caplog)  # one warning for the outage, not one per call
    assert "failed while reading" in warning and "embedding without it" in warning
    assert "pa55word-xyz" not in caplog.text and "***@127.0.0.1" in warning
    guard = client.embed_cache
    assert guard is not None and guard.failures == 1  # the second call did not even try (retry_after)


def test_redis_stops_and_comes_back(emu: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail(_redis.MISSING)
    with _redis.restartable_redis(str(tmp_path)) as server:
        client = Client(BGE, embed_cache=server.url, **conn(emu))
        assert client.embed(TEXTS).cached == 0
        assert client.embed(TEXTS).cached == 150 and len(embed_requests(emu)) == 2
        guard = client.embed_cache
        assert guard is not None
        guard.retry_after = 0.0  # try the cache again on the next call
        server.stop()
        emu.state.clear()
        with caplog.at_level(logging.INFO, logger="cfgateway.cache"):
            down = client.embed(TEXTS)
            again = client.embed(TEXTS)
            assert down.cached == again.cached == 0 and len(embed_requests(emu)) == 4
            server.start()
            back = client.embed(TEXTS)
        assert back.cached == 150 and len(embed_requests(emu)) == 4  # the entries survived the restart
        assert len(warnings_of(caplog)) == 1 and "works again" in caplog.text


def test_a_file_that_is_not_a_database(emu: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a sqlite file" * 100)
    client = Client(BGE, embed_cache=f"sqlite:///{path}", **conn(emu))
    with caplog.at_level(logging.WARNING):
        resp = client.embed(TEXTS[:5])
    assert len(resp.vectors) == 5 and resp.cached == 0
    (warning,) = warnings_of(caplog)
    assert "DatabaseError" in warning


class Raising(MemoryEmbeddingCache):
    def put_many(self, items: Any) -> None:
        raise RuntimeError("disk full")


class Nonsense(MemoryEmbeddingCache):
    def get_many(self, keys: Any) -> Any:
        return [[1.0]]  # one entry, whatever was asked


def test_a_cache_that_raises_or_answers_nonsense(emu: EmulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert Client(BGE, embed_cache=Raising(), **conn(emu)).embed(TEXTS[:3]).cached == 0
        assert Client(BGE, embed_cache=Nonsense(), **conn(emu)).embed(TEXTS[:3]).cached == 0
    logged = warnings_of(caplog)
    assert len(logged) == 2 and "RuntimeError: disk full" in logged[0] and "answered 1 entries for 3" in logged[1]


def test_the_setting_never_shows_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFGATEWAY_EMBED_CACHE", "redis://:s3cr3t-pw@cache.internal:6379/0")
    s = load_settings()
    assert s.embed_cache == "redis://:s3cr3t-pw@cache.internal:6379/0"
    assert "s3cr3t-pw" not in repr(s) and "***@cache.internal" in repr(s)
    shown = dict((name, value) for name, value, _ in describe(s))
    assert shown["embed_cache"] == "redis://***@cache.internal:6379/0"
    monkeypatch.setenv("CFGATEWAY_EMBED_CACHE", "ftp://:s3cr3t-pw@x/0")
    with pytest.raises(Exception, match="embed_cache must be") as err:
        load_settings()
    assert "s3cr3t-pw" not in str(err.value)


def test_config_show_redacts_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CFGATEWAY_EMBED_CACHE", "redis://:s3cr3t-pw@cache.internal:6379/0")
    cli_main(["config", "show"])
    out = capsys.readouterr().out
    assert "embed_cache" in out and "s3cr3t-pw" not in out and "redis://***@cache.internal:6379/0" in out


def test_hits_never_spend_a_budget(emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = SQLiteLedger(tmp_path / "costs.db")
    tracker = CostTracker(ledger, [Budget(limit=Decimal("1"), window="daily")])
    client = Client(BGE, embed_cache=MemoryEmbeddingCache(), tracker=tracker, **conn(emu))
    paid = client.embed(TEXTS)
    spent = ledger.spent(since=0)
    assert spent == paid.cost > 0
    for _ in range(3):
        assert client.embed(TEXTS).cost == Decimal(0)
    assert ledger.spent(since=0) == spent
    cli_main(["costs", "--ledger", f"sqlite:///{tmp_path}/costs.db", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    (group,) = report["groups"]
    # 2 batches + 3 cached calls; the cached ones show as cache hits with no tokens and no cost
    assert (group["calls"], group["cache_hits"]) == (5, 3)
    assert Decimal(group["cost_usd"]) == paid.cost and group["input_tokens"] == paid.usage.input_tokens


def test_the_tally_counts_hits_apart(emu: EmulatorServer) -> None:
    client = Client(BGE, embed_cache=MemoryEmbeddingCache(), **conn(emu))
    paid = client.embed(TEXTS[:120])
    half = client.embed(TEXTS[60:180])  # 60 cached, 60 sent
    tally = CostTally()
    with tally.lock:
        tally.add_embedding_records(paid.records)
        tally.add_embedding_records(half.records)
    assert tally.embedding_requests == 3  # 2 batches, then 1 for the 60 misses; no request for the hits
    assert tally.embedding_cache_hits == 60
    assert tally.embedding_tokens == paid.usage.input_tokens + half.usage.input_tokens
    assert tally.total_cost == paid.cost + half.cost and half.cost > 0
    assert tally.by_model[BGE].requests == 3
    assert "Embedding Cache Hits: 60" in tally.summary()
