"""The retry-and-fallback state of one call (sans-IO).

The chain asks :meth:`CallPlan.next` for the next attempt (a route, its :class:`CallContext` and
how long to wait first), sends it, and reports back with :meth:`failed` or :meth:`succeeded`.
Retries and fallbacks draw on one attempt budget and one deadline:

- a route is retried only for errors :func:`~cfgateway.http.transport.retryable` accepts, at most
  ``retry.max_retries`` times, never past the deadline, never for longer than ``max_retry_wait``
  while another route could answer, and only while the budget still leaves one attempt for each
  later route that may be tried;
- open circuits, routes with a smaller context window (after a context-length error) and routes
  with the same refused credentials are skipped without sending anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cfgateway import errors
from cfgateway.costs.catalog import Catalog
from cfgateway.errors import CircuitOpenError, RouteSkipped
from cfgateway.fallback.policy import FallbackPolicy, all_failed, annotate
from cfgateway.http.retry import RetryPolicy, retryable
from cfgateway.routing.breaker import CircuitBreaker
from cfgateway.routing.routes import Route
from cfgateway.types import AttemptInfo, CallContext


@dataclass(frozen=True, slots=True)
class Limits:
    """The shared limits of one call."""

    retry: RetryPolicy
    max_attempts: int | None = None  # None: one per route + retry.max_retries
    max_retry_wait: float = 1.0  # longest same-route retry wait while another route could answer


@dataclass(slots=True)
class Attempt:
    route: Route
    ctx: CallContext
    delay: float = 0.0

    @property
    def model(self) -> str:
        return self.route.model


class CallPlan:
    """Which route to try next, and what the call has seen so far (attempts, records, errors)."""

    def __init__(
        self,
        models: Sequence[str],
        resolve: Callable[[str], Route],
        ctx: CallContext,
        *,
        policy: FallbackPolicy,
        limits: Limits,
        catalog: Catalog,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes = [resolve(m) for m in models]
        self.ctx = ctx
        self.policy = policy
        self.limits = limits
        self.catalog = catalog
        self.breaker = breaker
        self.clock = clock
        extra = limits.retry.max_retries
        self.max_attempts = limits.max_attempts if limits.max_attempts is not None else len(self.routes) + extra
        self.attempts: list[AttemptInfo] = []
        self.records: list[Any] = []
        self.errors: list[Exception] = []
        self.sent = 0
        self._index = 0  # the route being tried
        self._tries = 0  # attempts on it so far
        self._retry_delay: float | None = None  # set when the current route is to be retried
        self._failures: list[tuple[BaseException, Route]] = []  # fallback-worthy failures, for eligibility
        self._current: Route | None = None
        self._started = 0.0
        self._stop_note = ""

    # -- choosing -------------------------------------------------------------------------
    def next(self) -> Attempt:
        """The next attempt; raises the call's final error when nothing is left to try."""
        if self._retry_delay is not None:
            delay, self._retry_delay = self._retry_delay, None
            return self._begin(self.routes[self._index], delay)
        while self._index < len(self.routes):
            route = self.routes[self._index]
            skip = self._skip_reason(route)
            if skip is not None:
                self._skipped(skip)
                self._index += 1
                continue
            stop = self._out_of_budget()
            if stop:
                self._stop_note = stop
                break
            if self.breaker is not None and not self.breaker.allow(route.model):
                self._skipped(CircuitOpenError(route.model, self.breaker.retry_in(route.model)))
                self._index += 1
                continue
            return self._begin(route, 0.0)
        raise self._final()

    def _begin(self, route: Route, delay: float) -> Attempt:
        ctx = replace(self.ctx, attempt=self.sent, fallback=self._index > 0)
        self.sent += 1
        self._tries += 1
        self._current = route
        self._started = self.clock() + delay
        return Attempt(route, ctx, delay)

    def _skip_reason(self, route: Route) -> RouteSkipped | None:
        for exc, failed in self._failures:
            if failed.model != route.model:
                skip = self.policy.eligible(exc, failed, route, self.catalog)
                if skip is not None:
                    return skip
        return None

    def _skipped(self, skip: RouteSkipped) -> None:
        self.errors.append(skip)
        self.attempts.append(AttemptInfo(skip.model, skip.reason, str(skip), 0.0))

    def _out_of_budget(self, extra: int = 0) -> str:
        if self.sent + extra >= self.max_attempts:
            return f"attempt budget of {self.max_attempts} used up"
        if self.ctx.deadline is not None and self.clock() >= self.ctx.deadline:
            return "the call's deadline passed"
        return ""

    def _later_candidates(self) -> int:
        """Routes after the current one that may still be tried (not skipped, circuit not open)."""
        n = 0
        for route in self.routes[self._index + 1 :]:
            if self._skip_reason(route) is not None:
                continue
            if self.breaker is not None and self.breaker.state(route.model) == "open":
                continue
            n += 1
        return n

    # -- outcomes -------------------------------------------------------------------------
    def failed(self, exc: BaseException) -> bool:
        """Record a failed attempt. True: the error ends the call (re-raise it, it is annotated)."""
        route = self._current
        assert route is not None, "failed() without an attempt"
        self._current = None
        self._record_failure(route, exc)
        if not isinstance(exc, Exception) or not self.policy.should_fall_back(exc):
            if self.breaker is not None:
                self.breaker.release(route.model)
            annotate(exc, self.attempts, self.records)
            return True
        if self.breaker is not None:
            if self.policy.counts_against(exc):
                self.breaker.failure(route.model)
            else:
                self.breaker.release(route.model)
        self._failures.append((exc, route))
        delay = self._retry_wait(route, exc)
        if delay is not None:
            self._retry_delay = delay
        else:
            self._index += 1
            self._tries = 0
        return False

    def _record_failure(self, route: Route, exc: BaseException) -> None:
        latency = max(0.0, self.clock() - self._started)
        self.records.extend(getattr(exc, "records", None) or [])
        if isinstance(exc, Exception):
            self.errors.append(exc)
        self.attempts.append(AttemptInfo(route.model, type(exc).__name__, _text(exc), latency))

    def _retry_wait(self, route: Route, exc: BaseException) -> float | None:
        """Seconds to wait before retrying ``route``, or None to move on."""
        if not retryable(exc) or self._tries > self.limits.retry.max_retries:
            return None
        if self.breaker is not None and self.breaker.state(route.model) != "closed":
            return None
        later = self._later_candidates()
        if self._out_of_budget(extra=later):
            return None  # keep one attempt for each later route
        delay = self.limits.retry.delay(self._tries - 1, exc)  # type: ignore[arg-type]
        if delay is None or (later and delay > self.limits.max_retry_wait):
            return None
        if self.ctx.deadline is not None and self.clock() + delay >= self.ctx.deadline:
            return None
        return delay

    def succeeded(self, result: Any) -> Any:
        """Merge the earlier attempts and records into a response or final chunk; close the circuit."""
        route = self._current
        self._current = None
        if route is not None and self.breaker is not None:
            self.breaker.success(route.model)
        result.attempts = [*self.attempts, *result.attempts]
        result.records = [*self.records, *result.records]
        return result

    def interrupted(self, exc: BaseException) -> BaseException:
        """A stream failed after its first chunk: no fallback; annotate the error with the call's story."""
        route = self._current
        self._current = None
        if route is not None:
            self._record_failure(route, exc)
            if self.breaker is not None:
                (self.breaker.failure if self.policy.counts_against(exc) else self.breaker.release)(route.model)
        return annotate(exc, self.attempts, self.records)

    def close(self) -> None:
        """The call ended without reporting its last attempt (cancelled, caller stopped): free a probe."""
        if self._current is not None and self.breaker is not None:
            self.breaker.release(self._current.model)
        self._current = None

    def _final(self) -> BaseException:
        real = [e for e in self.errors if not isinstance(e, RouteSkipped)]
        if not self.errors:
            note = self._stop_note or "no route to try"
            return annotate(errors.TimeoutError(f"no attempt was made: {note}"), self.attempts, self.records)
        if len(self.routes) == 1 and real and len(real) == len(self.errors):
            return annotate(real[-1], self.attempts, self.records)  # one route: its own error, as a Client would
        return all_failed(self.errors, self.attempts, self.records, self._stop_note)


def _text(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = ["Attempt", "CallPlan", "Limits"]
