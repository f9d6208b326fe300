"""Staged rollouts whose stage lives in the ledger's store: moves, gates applied, alerts, history, and
several processes (two on one real Redis) agreeing on the stage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _redis
import pytest

from cfgateway.costs.alerts import AlertEvent
from cfgateway.costs.ledger import MemoryLedger, SQLiteLedger, UsageRecord, open_ledger
from cfgateway.errors import ConfigError
from cfgateway.routing.controller import move
from cfgateway.routing.gates import Gates
from cfgateway.routing.rollout import Rollout, RoutingPolicy
from cfgateway.routing.stages import list_rollouts
from cfgateway.types import CallContext

NEW = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
OLD = "openai/gpt-4o-mini"
USERS = [f"user-{i}" for i in range(2000)]
GATES = Gates(min_samples=5, rollback_min_samples=3, max_latency_ratio=None)


def shadow(sim: float = 0.99, error: str | None = None) -> UsageRecord:
    return UsageRecord(ts=time.time(), model=NEW, provider="workers-ai", operation="chat", outcome="shadow",
                       similarity=None if error else sim, error=error, baseline=OLD, latency_s=0.2,
                       baseline_latency_s=0.2)


def staged(ledger: Any, events: list[AlertEvent] | None = None, **kw: Any) -> Rollout:
    sink = events.append if events is not None else None
    return Rollout(NEW, old_route=OLD, stages=[10, 50, 100], gates=GATES, ledger=ledger, alerts=sink, **kw)


def on_new(r: Rollout) -> set[str]:
    return {u for u in USERS if r.includes(u)}


def test_moves_keep_users_and_are_announced(tmp_path: Path) -> None:
    led = SQLiteLedger(tmp_path / "l.db")
    events: list[AlertEvent] = []
    r = staged(led, events)
    assert r.percent == 10 and r.status().status == "active" and list_rollouts(led) == [NEW]
    in10 = on_new(r)
    assert r.advance("looks good").percent == 50
    in50 = on_new(r)
    assert in10 < in50 and abs(len(in50) / len(USERS) - 0.5) < 0.05
    assert events[-1].kind == "rollout" and events[-1].fields["from"] == 10 and events[-1].fields["to"] == 50
    assert "advanced from 10 % to 50 %" in events[-1].message and "looks good" in events[-1].message
    r.rollback("errors")
    assert r.percent == 0 and on_new(r) == set() and r.status().status == "rolled_back"
    with pytest.raises(ConfigError, match="already rolled back"):
        r.rollback()
    assert r.advance().percent == 10 and on_new(r) == in10  # resumes at the first stage, same users
    r.advance()
    r.advance()
    with pytest.raises(ConfigError, match="last stage"):
        r.advance()
    history = [(h["action"], h["from"], h["to"]) for h in r.status().history]
    assert history == [("start", 0, 10), ("advance", 10, 50), ("rollback", 50, 0), ("advance", 0, 10),
                       ("advance", 10, 50), ("advance", 50, 100)]
    # the policy a chain calls per request still works, with the stored stage
    policy = RoutingPolicy.build(rollout=r)
    assert policy is not None and policy.choose(CallContext(user="anyone"), OLD).model == NEW
    assert policy.choose(CallContext(), OLD).model == OLD  # no user: the old route
    led.close()


def test_a_second_handle_reads_the_stored_stage_not_its_own_first_stage(tmp_path: Path) -> None:
    led = SQLiteLedger(tmp_path / "l.db")
    staged(led).advance()
    other = staged(SQLiteLedger(tmp_path / "l.db"))
    assert other.percent == 50


def test_check_applies_the_verdict_once(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    events: list[AlertEvent] = []
    a, b = staged(SQLiteLedger(path), events), staged(SQLiteLedger(path), events)
    led = SQLiteLedger(path)
    for _ in range(4):
        led.add(shadow())
    assert a.check(apply=True).action == "hold" and a.percent == 10
    led.add(shadow())
    verdicts = []
    threads = [threading.Thread(target=lambda h=h: verdicts.append(h.check(apply=True))) for h in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "advance" in [v.action for v in verdicts]  # the later one may already see the new, empty stage
    assert a.status().percent == 50 and len(events) == 1  # one process won the move and announced it
    # a verdict formed on a stage another process has since left is not applied
    stale = a.status().version - 1
    assert move(a.staged.store, "advance", by="auto", reason="", expect_version=stale, strict=False) == (None, None)
    assert a.status().percent == 50
    # the new stage starts with no evidence; failures there roll it back
    for _ in range(3):
        led.add(shadow(error="ServerError"))
    v = b.check(apply=True)
    assert v.action == "rollback" and "error rate 100.0 %" in v.reason
    assert a.status().percent == 0 and events[-1].fields["action"] == "rollback"
    assert a.check(apply=True).action == "hold"  # rolled back: waits for a person


def test_report_per_stage(tmp_path: Path) -> None:
    led = SQLiteLedger(tmp_path / "l.db")
    r = staged(led)
    for s in (0.99, 0.97, 0.90, 1.0, 0.98):
        led.add(shadow(s))
    r.advance()
    led.add(shadow(error="TimeoutError"))
    rep = r.report()
    first, second = rep.stages
    assert (first.percent, first.samples, second.percent, second.samples) == (10, 5, 50, 1)
    assert first.mean_similarity == pytest.approx(0.968) and first.share_at_bar == pytest.approx(0.8)
    assert second.error_rate == 1.0
    assert rep.verdict.action == "hold" and rep.verdict.reason == "1 of 5 shadow samples"
    text = rep.render()
    assert "verdict: hold" in text and "0.968" in text and "80.0" in text
    d = rep.to_dict()
    assert json.dumps(d) and d["stages"][0]["samples"] == 5


def test_fixed_and_staged_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="percent"):
        Rollout(NEW)
    with pytest.raises(ConfigError, match="not both"):
        Rollout(NEW, 10, stages=[10, 50])
    with pytest.raises(ConfigError, match="increasing"):
        Rollout(NEW, stages=[50, 10])
    with pytest.raises(ConfigError, match="fixed percent"):
        Rollout(NEW, 10).advance()
    with pytest.raises(ConfigError, match="keeps no shared state"):
        Rollout(NEW, stages=[10], ledger=object())
    assert Rollout(NEW, stages=[10, 100]).percent == 10  # no ledger: this process only
    assert repr(Rollout(NEW, 5)) == f"Rollout('{NEW}', 5, old_route=None)"


class _Broken(MemoryLedger):
    fail = False

    def get_state(self, key: str) -> str | None:
        if self.fail:
            raise OSError("store down")
        return super().get_state(key)


def test_a_store_outage_keeps_the_last_stage(caplog: pytest.LogCaptureFixture) -> None:
    led = _Broken()
    r = staged(led, refresh=0.0)
    r.advance()
    led.fail = True
    assert r.percent == 50  # the background re-read fails; the known stage is served
    deadline = time.monotonic() + 5
    while "cannot read its stage" not in caplog.text and time.monotonic() < deadline:
        r.percent  # noqa: B018
        time.sleep(0.01)
    assert "cannot read its stage" in caplog.text and r.percent == 50
    led2 = _Broken()
    led2.fail = True
    assert staged(led2).percent == 0  # never read: nobody is moved


# -- two processes, one Redis --------------------------------------------------------------

_WORKER = """
import hashlib, json, sys, time
from cfgateway.costs.ledger import open_ledger
from cfgateway.routing.controller import move
from cfgateway.routing.gates import Gates
from cfgateway.routing.rollout import Rollout
r = Rollout(sys.argv[2], old_route="openai/gpt-4o-mini", stages=[10, 50, 100], ledger=open_ledger(sys.argv[1]),
            refresh=0.05, gates=Gates(min_samples=5))
users = [f"user-{i}" for i in range(2000)]
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "advance":
        r.advance("from a worker")
    elif cmd == "wait50":
        deadline = time.monotonic() + 10
        while r.percent != 50 and time.monotonic() < deadline:
            time.sleep(0.01)
    picked = sorted(u for u in users if r.includes(u))
    print(json.dumps({"percent": r.percent, "n": len(picked),
                      "digest": hashlib.sha256(",".join(picked).encode()).hexdigest()}), flush=True)
"""


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.fail(_redis.MISSING)
    with _redis.redis_server() as url:
        yield url


def test_two_processes_on_one_redis_agree_on_the_stage(redis_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, redis_url, NEW], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]

    def ask(p: subprocess.Popen[str], cmd: str) -> dict[str, Any]:
        assert p.stdin and p.stdout
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
        return dict(json.loads(p.stdout.readline()))

    try:
        a, b = ask(procs[0], "show"), ask(procs[1], "show")
        assert a == b and a["percent"] == 10 and 150 < a["n"] < 250
        moved = ask(procs[0], "advance")
        seen = ask(procs[1], "wait50")
        assert moved == seen and seen["percent"] == 50 and 900 < seen["n"] < 1100
    finally:
        for p in procs:
            assert p.stdin
            p.stdin.close()
            p.wait(10)
    state = open_ledger(redis_url).get_state(f"rollout:{NEW}")
    assert state and [h["action"] for h in json.loads(state)["history"]] == ["start", "advance"]


def test_a_rollout_from_a_profile(tmp_path: Path) -> None:
    from cfgateway.config import load_settings
    from cfgateway.routing.rollout import rollout_from_settings

    cfg = tmp_path / "cfgateway.toml"
    cfg.write_text(f'[profiles.prod.rollout]\ncandidate = "{NEW}"\nbaseline = "{OLD}"\nstages = [5, 100]\n'
                   'auto = true\nmin_samples = 50\n[profiles.prod.rollout.gates]\nmax_cost_ratio = 2.0\n')
    led = MemoryLedger()
    r = rollout_from_settings(load_settings(config_path=cfg, profile="prod", env={}), led)
    assert r is not None and r.percent == 5 and r.old_route == OLD and r.staged is not None and r.staged.auto
    gates = r.status().gates
    assert (gates.min_samples, gates.max_cost_ratio, gates.min_similarity) == (50, 2.0, 0.95)
    assert rollout_from_settings(load_settings(env={}), led) is None
    cfg.write_text('[profiles.prod.rollout]\ncandidate = "x"\nstage = [5]\n')
    with pytest.raises(ConfigError, match="unknown key.*stage.*known"):
        rollout_from_settings(load_settings(config_path=cfg, profile="prod", env={}), led)
