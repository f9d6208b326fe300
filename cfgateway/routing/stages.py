"""A staged rollout's shared state: its definition, current stage and history, kept in the ledger's store.

One JSON value per rollout under the state key ``rollout:{name}`` (and the names under
``rollout:index``), changed only by compare-and-set, so every process and host serves the same split
and two processes acting at once cannot both move the stage. Stage changes are appended to the
value's ``history`` (the last :data:`HISTORY_MAX`), which is also what a report's per-stage figures
are cut by.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cfgateway.costs.ledger.record import UsageRecord
from cfgateway.costs.ledger.state import StateStore
from cfgateway.errors import ConfigError
from cfgateway.routing.gates import Gates, StageStats, Verdict, judge, stage_stats

Status = Literal["active", "rolled_back"]
INDEX_KEY = "rollout:index"
HISTORY_MAX = 100
_TRIES = 50


def _pause(attempt: int) -> None:
    """A short random wait after a lost compare-and-set, so the winner's write settles first."""
    time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))


def state_key(name: str) -> str:
    return f"rollout:{name}"


def check_stages(stages: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(s) for s in stages)
    if not out:
        raise ConfigError("a staged rollout needs at least one stage, e.g. stages=[10, 50, 100]")
    if any(not 0 <= s <= 100 for s in out) or any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise ConfigError(f"rollout stages are increasing percentages in 0..100, got {list(stages)}")
    return out


@dataclass(frozen=True, slots=True)
class RolloutState:
    """What every process agrees on. ``percent`` is the share of users on the candidate now."""

    name: str
    candidate: str
    baseline: str | None
    stages: tuple[float, ...]
    gates: Gates
    percent: float
    status: Status = "active"
    since: float = 0.0  # when the current stage began
    version: int = 0
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def last_stage(self) -> bool:
        return self.status == "active" and self.percent >= self.stages[-1]

    def next_percent(self) -> float | None:
        if self.status == "rolled_back":
            return self.stages[0]
        return next((s for s in self.stages if s > self.percent), None)

    def to_json(self) -> str:
        d = {"name": self.name, "candidate": self.candidate, "baseline": self.baseline, "stages": list(self.stages),
             "gates": self.gates.to_dict(), "percent": self.percent, "status": self.status, "since": self.since,
             "version": self.version, "history": list(self.history)}
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RolloutState:
        d = json.loads(text)
        return cls(d["name"], d["candidate"], d.get("baseline"), tuple(d["stages"]), Gates.from_dict(d["gates"]),
                   float(d["percent"]), d.get("status", "active"), float(d.get("since", 0.0)),
                   int(d.get("version", 0)), tuple(d.get("history", ())))

    def moved(self, action: str, to: float, *, by: str, reason: str, now: float) -> RolloutState:
        entry = {"ts": now, "action": action, "from": self.percent, "to": to, "by": by, "reason": reason,
                 "version": self.version + 1}
        status: Status = "rolled_back" if action == "rollback" else "active"
        return replace(self, percent=to, status=status, since=now, version=self.version + 1,
                       history=(*self.history, entry)[-HISTORY_MAX:])

    def segments(self, now: float) -> list[tuple[float, float, float | None]]:
        """``(percent, start, end)`` of each stage in the history, oldest first (the last one open)."""
        out: list[tuple[float, float, float | None]] = []
        for i, e in enumerate(self.history):
            end = self.history[i + 1]["ts"] if i + 1 < len(self.history) else None
            out.append((float(e["to"]), float(e["ts"]), end))
        return out or [(self.percent, self.since, None)]


class StageStore:
    """Reads and changes one rollout's state in a :class:`StateStore` (compare-and-set, retried)."""

    def __init__(self, store: StateStore, name: str, clock: Callable[[], float] = time.time) -> None:
        if not isinstance(store, StateStore):
            raise ConfigError(f"{store!r} keeps no shared state: a staged rollout needs a MemoryLedger, "
                              "SQLiteLedger or RedisLedger (or a ledger implementing StateStore)")
        self.store = store
        self.name = name
        self.key = state_key(name)
        self.clock = clock

    def read(self) -> RolloutState | None:
        raw = self.store.get_state(self.key)
        return None if raw is None else RolloutState.from_json(raw)

    def ensure(self, initial: RolloutState) -> RolloutState:
        """The stored state; ``initial`` (with its start in the history) when there is none yet."""
        now = self.clock()
        first = replace(initial, since=now, history=({"ts": now, "action": "start", "from": 0.0,
                                                      "to": initial.percent, "by": "setup", "reason": "created",
                                                      "version": 0},))
        for _ in range(_TRIES):
            raw = self.store.get_state(self.key)
            if raw is not None:
                return RolloutState.from_json(raw)
            if self.store.compare_and_set(self.key, None, first.to_json()):
                self._index()
                return first
        raise RuntimeError(f"could not read or create rollout {self.name!r}")

    def _index(self) -> None:
        for attempt in range(_TRIES):
            raw = self.store.get_state(INDEX_KEY)
            names = json.loads(raw) if raw else []
            if self.name in names or self.store.compare_and_set(INDEX_KEY, raw, json.dumps([*names, self.name])):
                return
            _pause(attempt)

    def change(self, fn: Callable[[RolloutState], RolloutState | None]) -> tuple[RolloutState | None, bool]:
        """Apply ``fn`` to the stored state until the compare-and-set wins (``fn`` returning ``None``:
        nothing to do). Returns ``(state after, whether this call changed it)``."""
        for attempt in range(_TRIES):
            raw = self.store.get_state(self.key)
            if raw is None:
                return None, False
            new = fn(RolloutState.from_json(raw))
            if new is None:
                return RolloutState.from_json(raw), False
            if self.store.compare_and_set(self.key, raw, new.to_json()):
                return new, True
            _pause(attempt)
        raise RuntimeError(f"rollout {self.name!r}: the stored state kept changing; try again")


def list_rollouts(store: Any) -> list[str]:
    """The names of the rollouts kept in ``store``."""
    if not isinstance(store, StateStore):
        return []
    raw = store.get_state(INDEX_KEY)
    return list(json.loads(raw)) if raw else []


@dataclass(slots=True)
class RolloutReport:
    """Per stage: the gate figures; for the current stage: the verdict and its reason."""

    state: RolloutState
    stages: list[StageStats]
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        s = self.state
        return {"name": s.name, "candidate": s.candidate, "baseline": s.baseline, "percent": s.percent,
                "status": s.status, "stages": [st.to_dict() for st in self.stages],
                "verdict": {"action": self.verdict.action, "reason": self.verdict.reason},
                "gates": s.gates.to_dict(), "history": list(s.history)}

    def render(self) -> str:
        s = self.state
        who = s.candidate if s.name == s.candidate else f"{s.name} ({s.candidate})"
        lines = [f"rollout of {who}: {s.percent:g} % of users on it"
                 + (f" (baseline {s.baseline})" if s.baseline else "") + f", status {s.status}",
                 f"{'stage':>7} {'from (UTC)':<17} {'samples':>7} {'mean sim':>8} {'p5 sim':>7} "
                 f"{'>=bar':>6} {'err %':>6} {'lat x':>6} {'cost x':>6}"]
        for st in self.stages:
            d = st.to_dict()
            lines.append(f"{st.percent:>6g}% {time.strftime('%Y-%m-%d %H:%M', time.gmtime(st.since)):<17} "
                         f"{st.samples:>7} {_f(d['mean_similarity'], 8)} {_f(d['p5_similarity'], 7)} "
                         f"{_f(d['share_at_bar'], 6, pct=True)} {_f(d['error_rate'], 6, pct=True)} "
                         f"{_f(d['latency_ratio'], 6)} {_f(d['cost_ratio'], 6)}")
        lines.append(f"verdict: {self.verdict.action} — {self.verdict.reason}")
        return "\n".join(lines)


def _f(value: float | None, width: int, *, pct: bool = False) -> str:
    if value is None:
        return "-".rjust(width)
    return (f"{100 * value:.1f}" if pct else f"{value:.3f}").rjust(width)


def build_report(state: RolloutState, records: Iterable[UsageRecord], now: float) -> RolloutReport:
    """Figures of every stage in ``state``'s history from ``records``, and the current stage's verdict."""
    recs = list(records)
    bar = state.gates.min_similarity
    stats = [stage_stats(recs, candidate=state.candidate, baseline=state.baseline, percent=p, since=a, until=b,
                         bar=bar) for p, a, b in state.segments(now)]
    return RolloutReport(state, stats, verdict_of(state, stats[-1]))


def verdict_of(state: RolloutState, current: StageStats) -> Verdict:
    if state.status == "rolled_back":
        return Verdict("hold", "rolled back: all users are on the baseline until someone runs "
                               "`cfgateway rollout advance` (or Rollout.advance())")
    return judge(current, state.gates, last_stage=state.last_stage)


__all__ = [
    "HISTORY_MAX",
    "INDEX_KEY",
    "RolloutReport",
    "RolloutState",
    "StageStore",
    "build_report",
    "check_stages",
    "list_rollouts",
    "state_key",
    "verdict_of",
]
