"""The books of one shadow pair, and the bounded pool that runs pairs in the background.

:class:`PairBooks` is what the pair's clients (the candidate's chat, the similarity model's embedding)
book through. Its holds are real: they go to the chain's :class:`~cfgateway.costs.budget.CostTracker`
(so budgets count shadow spend and refuse it like any call) and to the shadow's daily cap. Its records
are not added to the ledger: the runner books the pair once, as its ``shadow`` record, settling the
candidate's hold, so the candidate's cost is never counted twice.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Generic, TypeVar

from cfgateway.calls.books import Books, Hold
from cfgateway.calls.outcome import failed_record
from cfgateway.costs.budget import CostTracker
from cfgateway.costs.catalog import Catalog
from cfgateway.costs.pricing import max_cost_of
from cfgateway.routing.routes import Route
from cfgateway.routing.shadow import ShadowCap
from cfgateway.types import CallContext, UsageRecord

logger = logging.getLogger("cfgateway.shadow")
IDLE_S = 30.0  # a worker with nothing to do for this long ends (the next shadow starts one again)
J = TypeVar("J")


class ShadowStop(Exception):
    """Raised by a pair's books before anything is sent: shadows stop until ``until`` (epoch seconds)."""

    def __init__(self, kind: str, message: str, until: float) -> None:
        super().__init__(message)
        self.kind, self.until = kind, until


class PairBooks(Books):
    """Holds against budgets and the cap; records kept for the pair's one ``shadow`` record (module docstring).

    ``judge``: the similarity model and a bound on the tokens it will embed, so the pair's first hold
    covers the comparison too (a pair is not started that the cap could not finish)."""

    __slots__ = ("cap", "cap_day", "cap_held", "holds", "judge", "judge_estimate")

    def __init__(self, tracker: CostTracker | None, catalog: Catalog, cap: ShadowCap | None,
                 judge: tuple[str, int]) -> None:
        super().__init__(tracker, catalog)
        self.cap, self.judge = cap, judge
        self.cap_day: int | None = None
        self.cap_held = Decimal(0)
        self.judge_estimate = Decimal(0)
        self.holds: list[Hold] = []

    def _worst(self, model: str, input_tokens: int, max_output: int) -> Decimal:
        worst = max_cost_of(model, input_tokens, max_output, catalog=self.catalog)
        if worst is None:
            raise ShadowStop("unpriced", f"{model} has no price in the catalog, so the shadow's max_cost cannot be "
                             "kept; add its price (catalog= / CFGATEWAY_CATALOG) or drop max_cost",
                             time.time() + 3600)
        return worst

    def _hold_cap(self, model: str, input_tokens: int, max_output: int) -> None:
        assert self.cap is not None
        if self.cap_day is None:  # the pair's first hold: the candidate, and an estimate of the comparison
            self.judge_estimate = self._worst(self.judge[0], self.judge[1] + 4 * max_output, 0)
            need = self._worst(model, input_tokens, max_output) + self.judge_estimate
        else:  # the comparison: only what its exact bound adds to the estimate
            need = max(Decimal(0), self._worst(model, input_tokens, max_output) - self.judge_estimate)
            self.judge_estimate += need
            if not need:
                return
        day = self.cap.hold(need)
        if day is None:
            raise ShadowStop("cap", f"the shadow's max_cost ${self.cap.limit} for today (UTC) is reached",
                             self.cap.next_day())
        self.cap_day = day
        self.cap_held += need

    def hold(self, route: Route, ctx: CallContext, input_tokens: int, max_output: int) -> Hold:
        had = self.cap_held
        if self.cap is not None:
            self._hold_cap(route.model, input_tokens, max_output)
        try:
            held = super().hold(route, ctx, input_tokens, max_output)
        except BaseException:
            self._give_back(self.cap_held - had)  # this hold never happened
            self.cap_held = had
            raise
        self.holds.append(held)
        return held

    def settle(self, records: list[UsageRecord], hold: Hold) -> None:
        """Kept, not added: the runner books the pair once."""

    def failed(
        self, route: Route, ctx: CallContext, exc: BaseException, started: float, operation: str, hold: Hold
    ) -> None:
        exc.records = [failed_record(route, ctx, exc, started, operation)]  # type: ignore[attr-defined]

    def book(self, record: UsageRecord, hold: Hold) -> UsageRecord:
        """Add one of the pair's records (priced, alerts checked), settling ``hold``."""
        if self.tracker is None:
            return record
        return self.tracker.record(record, hold)

    def close(self, spent: Decimal | None) -> None:
        """Release the holds no record settled and settle the cap: ``spent`` is the pair's actual cost
        (``None``: unknown, the worst case held stays counted)."""
        for held in self.holds:
            self.release(held)  # a no-op for the holds the records settled
        if spent is not None:
            self._give_back(self.cap_held - spent)

    def _give_back(self, amount: Decimal) -> None:
        if self.cap is not None and self.cap_day is not None and amount:
            self.cap.adjust(self.cap_day, -amount)


class Pool(Generic[J]):
    """``workers`` daemon threads over a queue of at most ``max_pending`` jobs. :meth:`submit` never waits:
    a full queue refuses the job. Workers start on demand and end after :data:`IDLE_S` idle seconds; a
    forked child starts its own. :meth:`flush` waits for the queued and running jobs."""

    def __init__(self, workers: int, max_pending: int, run: Callable[[J], Any], name: str) -> None:
        self.workers, self.max_pending, self.run, self.name = workers, max_pending, run, name
        self._cond = threading.Condition()
        self._reset()

    def _reset(self) -> None:
        self._queue: queue.Queue[J] = queue.Queue(maxsize=self.max_pending)
        self._threads = 0
        self._pending = 0  # queued + running
        self._closed = False
        self._pid = os.getpid()

    def submit(self, job: J) -> bool:
        with self._cond:
            if self._pid != os.getpid():
                self._reset()  # a forked child: the parent's threads are not here
            if self._closed:
                return False
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                return False
            self._pending += 1
            if self._threads < self.workers:
                self._threads += 1
                threading.Thread(target=self._work, name=f"cfgateway-shadow-{self.name}", daemon=True).start()
        return True

    def _work(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                with self._cond:
                    if self._queue.empty():
                        self._threads -= 1
                        return
                continue
            try:
                self.run(job)
            except BaseException:  # noqa: BLE001 - a worker outlives any one job
                logger.exception("shadow %s: a comparison failed", self.name)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        return self._pending

    def flush(self, timeout: float) -> int:
        """Wait until no job is queued or running, at most ``timeout`` seconds; the number still pending."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._pending and (left := end - time.monotonic()) > 0:
                self._cond.wait(left)
            return self._pending

    def close(self) -> list[J]:
        """Take no more jobs; the queued ones not started are returned (not run)."""
        dropped: list[J] = []
        with self._cond:
            self._closed = True
            while True:
                try:
                    dropped.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._pending -= len(dropped)
            self._cond.notify_all()
        return dropped


__all__ = ["PairBooks", "Pool", "ShadowStop"]
