"""The books of calls: budget holds, usage records into the ledger, records attached to errors.

One :class:`Books` is held by a :class:`~cfgateway.client.Client`, by a fallback chain (shared by its member
clients) and by gateway mode; nobody else touches the :class:`~cfgateway.costs.budget.CostTracker`.
Without a tracker every method is a no-op apart from attaching records to errors.
"""

from __future__ import annotations

from cfgateway import errors
from cfgateway.calls.outcome import failed_record
from cfgateway.calls.plan import ChatPlan
from cfgateway.calls.stream import StreamRun
from cfgateway.costs.budget import CostTracker, Reservation
from cfgateway.costs.catalog import Catalog
from cfgateway.routing.routes import Route
from cfgateway.types import CallContext, UsageRecord

Hold = Reservation | None  # a budget reservation, or None when no tracker is used


class Books:
    """Reserve before sending, settle after; failures become records too."""

    __slots__ = ("catalog", "tracker")

    def __init__(self, tracker: CostTracker | None = None, catalog: Catalog | None = None) -> None:
        self.tracker = tracker
        self.catalog = catalog  # the calls' catalog: holds are priced with the same prices as the calls

    def hold(self, route: Route, ctx: CallContext, input_tokens: int, max_output: int) -> Hold:
        """Hold the worst case against every budget; raises ``BudgetExceededError`` (nothing sent)."""
        if self.tracker is None:
            return None
        return self.tracker.reserve(model=route.model, provider=route.provider, user=ctx.user,
                                    input_tokens=input_tokens, max_output_tokens=max_output, catalog=self.catalog)

    def hold_chat(self, plan: ChatPlan) -> Hold:
        return self.hold(plan.route, plan.ctx, plan.input_tokens, plan.max_output)

    def settle(self, records: list[UsageRecord], hold: Hold) -> None:
        """Price and add ``records`` (in place: the ledger's copies); the last one settles ``hold``."""
        if self.tracker is None:
            return
        last = len(records) - 1
        for i, rec in enumerate(records):
            records[i] = self.tracker.record(rec, hold if i == last else None)
        if not records:
            self.tracker.release(hold)

    def release(self, hold: Hold) -> None:
        if self.tracker is not None:
            self.tracker.release(hold)

    def failed(
        self, route: Route, ctx: CallContext, exc: BaseException, started: float, operation: str, hold: Hold
    ) -> None:
        """An attempt that failed before answering: a record (no usage, cost unknown) on the error and in the ledger."""
        rec = failed_record(route, ctx, exc, started, operation)
        self.settle([rec], hold)
        exc.records = [rec]  # type: ignore[attr-defined]

    def stream_failed(self, run: StreamRun, exc: errors.CloudflareError, hold: Hold) -> errors.CloudflareError:
        """The error to raise for a stream that failed; booked. Before the first chunk it is the error as it
        is (a chain may fall back); after it, a :class:`~cfgateway.errors.StreamInterrupted` with what came."""
        if run.first:
            self.failed(run.plan.route, run.plan.ctx, exc, run.plan.started, "chat", hold)
            return exc
        err = run.interrupted(exc)
        if run.record is not None:
            self.settle([run.record], hold)
            err.records = [run.record]
        return err

    def stream_closed(self, run: StreamRun, hold: Hold) -> None:
        """The stream's generator closed: if the caller stopped early, book what came as incomplete."""
        if not run.sse:  # refused to stream: nothing was used; the call is re-sent in one piece
            self.release(hold)
            return
        if run.record is None:
            run.interrupted(errors.StreamInterrupted("the caller closed the stream", text=run.text))
            if run.record is not None:
                run.record.outcome = "cancelled"
                self.settle([run.record], hold)


__all__ = ["Books", "Hold"]
