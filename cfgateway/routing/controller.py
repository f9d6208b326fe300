"""The live side of a staged rollout: the stage a call sees (cached), gate checks, moves and their alerts.

A call asks :meth:`StagedRollout.percent`. It answers from memory; once the cached stage is older than
``refresh`` seconds, a background thread re-reads the store (and, with ``auto=True``, checks the gates
every ``check_every`` seconds and applies the verdict), so no call waits for a store round trip except
the very first one. When the store cannot be read the last known stage is kept (logged); when none was
ever read, the candidate gets no users (0 %): a rollout never surprises traffic it cannot account for.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cfgateway.costs.alerts import AlertEvent, Alerts, log_sink
from cfgateway.errors import ConfigError
from cfgateway.routing.gates import Gates, Verdict, stage_stats
from cfgateway.routing.stages import RolloutReport, RolloutState, StageStore, build_report, verdict_of

logger = logging.getLogger("cfgateway.rollout")


def rollout_event(before: RolloutState, after: RolloutState) -> AlertEvent:
    """The alert announcing a stage change."""
    last = after.history[-1] if after.history else {}
    action, by, reason = last.get("action", "change"), last.get("by", "?"), last.get("reason", "")
    verb = {"advance": "advanced", "rollback": "rolled back"}.get(str(action), str(action))
    who = after.candidate if after.name == after.candidate else f"{after.name} ({after.candidate})"
    msg = (f"rollout of {who}: {verb} from {before.percent:g} % to {after.percent:g} % "
           f"of users (by {by}{': ' + reason if reason else ''})")
    fields = {"name": after.name, "candidate": after.candidate, "baseline": after.baseline, "action": action,
              "from": before.percent, "to": after.percent, "by": by, "reason": reason, "version": after.version}
    return AlertEvent("rollout", after.name, msg, fields)


def move(
    stages: StageStore, action: str, *, by: str, reason: str, expect_version: int | None = None,
    strict: bool = True,
) -> tuple[RolloutState | None, RolloutState | None]:
    """Advance or roll back the stored rollout. Returns ``(before, after)`` when this call moved it,
    ``(None, None)`` when there was nothing to do (``strict``: a :class:`ConfigError` saying why)."""
    seen: list[RolloutState] = []

    def step(s: RolloutState) -> RolloutState | None:
        seen[:] = [s]
        if expect_version is not None and s.version != expect_version:
            return None  # another process moved it since the verdict was formed
        if action == "rollback":
            if s.status == "rolled_back":
                _refuse(strict, f"rollout {s.name} is already rolled back")
                return None
            # guess: a rollback sends every user back (0 %) and holds until a person advances (to the
            # first stage), rather than stepping back one stage and letting auto mode try again.
            return s.moved("rollback", 0.0, by=by, reason=reason, now=stages.clock())
        if action != "advance":
            raise ValueError(f"unknown rollout action {action!r}")
        to = s.next_percent()
        if to is None:
            _refuse(strict, f"rollout {s.name} is at its last stage ({s.percent:g} %)")
            return None
        return s.moved("advance", to, by=by, reason=reason, now=stages.clock())

    after, changed = stages.change(step)
    if after is None:
        raise ConfigError(f"no rollout named {stages.name!r} in this ledger")
    return (seen[0], after) if changed else (None, None)


def _refuse(strict: bool, message: str) -> None:
    if strict:
        raise ConfigError(message)


class StagedRollout:
    """One process's handle on a stored rollout (see the module docstring)."""

    def __init__(
        self, *, name: str, candidate: str, baseline: str | None, stages: Sequence[float], gates: Gates,
        ledger: Any, auto: bool, refresh: float, check_every: float, alerts: Callable[[AlertEvent], Any] | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if refresh < 0 or check_every <= 0:
            raise ConfigError("rollout refresh must be >= 0 seconds and check_every > 0")
        self.store = StageStore(ledger, name, clock)
        self.ledger = ledger
        self.auto, self.refresh, self.check_every = auto, refresh, check_every
        self.alerts = alerts if alerts is not None else Alerts([log_sink], store=ledger)
        self._initial = RolloutState(name, candidate, baseline, tuple(stages), gates, float(stages[0]))
        self._state: RolloutState | None = None
        self._tried = -math.inf
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._busy = False
        self._failing = False
        self.load()

    # -- reading -------------------------------------------------------------------------
    def load(self) -> RolloutState | None:
        """Read the stored stage now (creating the rollout on first use); ``None`` if the store failed."""
        self._tried = time.monotonic()
        was_failing = self._failing
        try:
            state = self.state()
        except Exception as exc:  # the store is down: keep serving what we know
            if not self._failing:
                logger.warning("rollout %s: cannot read its stage from %r (%s: %s); serving %s",
                               self.store.name, self.ledger, type(exc).__name__, exc,
                               f"{self._state.percent:g} %" if self._state else "0 % (no stage known yet)")
            self._failing = True
            return None
        if was_failing:
            logger.warning("rollout %s: its stage can be read again", self.store.name)
        return state

    def percent(self) -> float:
        state = self._state
        if time.monotonic() - self._tried >= self.refresh:
            if state is None:
                state = self.load()
            else:
                self._background()
        return state.percent if state is not None else 0.0

    def _background(self) -> None:
        with self._lock:
            if self._busy:
                return
            self._busy = True
            self._tried = time.monotonic()
        threading.Thread(target=self._tick, name="cfgateway-rollout", daemon=True).start()

    def _tick(self) -> None:
        try:
            self.load()
            if self.auto and time.monotonic() - self._checked >= self.check_every:
                self.check()
        except Exception:
            logger.exception("rollout %s: the background check failed", self.store.name)
        finally:
            with self._lock:
                self._busy = False

    def state(self) -> RolloutState:
        """The stored state, read now (a store error is raised, not hidden)."""
        state = self.store.ensure(self._initial)
        self._state, self._failing = state, False
        return state

    # -- deciding ------------------------------------------------------------------------
    def check(self, apply: bool | None = None) -> Verdict:
        """The current stage's verdict; applied (advance / roll back, with an alert) when ``apply``
        (default: ``auto``). Only one process wins a move; the others see it on their next read."""
        self._checked = time.monotonic()
        state = self.state()
        recs = self.ledger.records(since=state.since)
        stats = stage_stats(recs, candidate=state.candidate, baseline=state.baseline, percent=state.percent,
                            since=state.since, bar=state.gates.min_similarity)
        verdict = verdict_of(state, stats)
        if (self.auto if apply is None else apply) and verdict.action != "hold":
            self._move(verdict.action, by="auto", reason=verdict.reason, expect_version=state.version, strict=False)
        return verdict

    def advance(self, reason: str = "", *, by: str = "api") -> RolloutState:
        return self._move("advance", by=by, reason=reason)

    def rollback(self, reason: str = "", *, by: str = "api") -> RolloutState:
        return self._move("rollback", by=by, reason=reason)

    def _move(self, action: str, *, by: str, reason: str, expect_version: int | None = None,
              strict: bool = True) -> RolloutState:
        before, after = move(self.store, action, by=by, reason=reason, expect_version=expect_version, strict=strict)
        if before is not None and after is not None:
            self._state = after
            self.alerts(rollout_event(before, after))
            return after
        return self.state()

    def report(self) -> RolloutReport:
        state = self.state()
        start = state.history[0]["ts"] if state.history else state.since
        return build_report(state, self.ledger.records(since=start), time.time())


__all__ = ["StagedRollout", "move", "rollout_event"]
