"""Gateway-side fallback, the sans-IO part: the step list, the answering route, the call's story.

One Universal Endpoint request carries every route of the call as a step (docs/wire-notes.md §3.4); AI Gateway tries
them in order and says which one answered in ``cf-aig-step``. :class:`GatewayCall` keeps the same
books as the client-side :class:`~cfgateway.fallback.plan.CallPlan`: the steps before the answering
one are reported as ``gateway_step_failed``; an answer that breaks on our side (malformed body, a
connection dropped mid-body, a stream that fails before its first chunk) sends the call on to the
steps after it in a new request, within the same attempt budget and deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from cfgateway import errors
from cfgateway.calls.outcome import make_record
from cfgateway.calls.plan import ChatPlan
from cfgateway.config import Settings
from cfgateway.errors import CircuitOpenError, GatewayStepFailed
from cfgateway.fallback._attempts import Limits
from cfgateway.fallback.policy import FallbackPolicy, all_failed, annotate
from cfgateway.http.retry import retryable
from cfgateway.routing.breaker import CircuitBreaker
from cfgateway.routing.routes import GatewayOptions, Route, parse_gateway_headers, universal_step
from cfgateway.types import AttemptInfo, CallContext, ChatChunk, ChatResponse, EmbedResponse, UsageRecord

STEP_FAILED = "gateway_step_failed"
R = TypeVar("R", ChatResponse, ChatChunk, EmbedResponse)  # an answer: it carries attempts and records


def step_config(
    options: GatewayOptions | None, override: Mapping[str, Any] | None = None, *, default_timeout_ms: int | None = None
) -> dict[str, Any] | None:
    """A step's ``config`` (requestTimeout ms, maxAttempts, retryDelay ms, backoff) from the gateway options.

    ``default_timeout_ms`` is used when neither gives a requestTimeout, so that the gateway moves on to the
    next step before the client's own read timeout gives up on the whole request."""
    cfg: dict[str, Any] = {}
    if options is not None:
        if options.request_timeout_ms is not None:
            cfg["requestTimeout"] = int(options.request_timeout_ms)
        if options.max_attempts is not None:
            cfg["maxAttempts"] = min(int(options.max_attempts), 5)
        if options.retry_delay_ms is not None:
            cfg["retryDelay"] = min(int(options.retry_delay_ms), 5000)
        if options.backoff is not None:
            cfg["backoff"] = options.backoff
    cfg.update(override or {})
    if default_timeout_ms is not None:
        cfg.setdefault("requestTimeout", default_timeout_ms)
    return cfg or None


def build_steps(
    routes: Sequence[Route], bodies: Sequence[dict[str, Any]], *, operation: str, config: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The Universal Endpoint body: one step per route, each with its provider-native body (a dict: the
    transport encodes the whole request once)."""
    return [universal_step(r, b, operation=operation, config=config) for r, b in zip(routes, bodies, strict=True)]


def universal_headers(
    settings: Settings, options: GatewayOptions | None, metadata: Mapping[str, Any] | None
) -> dict[str, str]:
    """Request-level headers: gateway auth and ``cf-aig-*`` options (steps carry the provider credentials)."""
    headers = {"Content-Type": "application/json"}
    if settings.gateway_token:
        headers["cf-aig-authorization"] = f"Bearer {settings.gateway_token.get_secret_value()}"
    if options is not None or metadata:
        headers.update((options or GatewayOptions()).headers(metadata))
    return headers


def answering_step(headers: Mapping[str, str], count: int) -> int:
    """Which of ``count`` steps answered, from ``cf-aig-step``."""
    step = parse_gateway_headers(headers).step
    if step is None:
        if count == 1:
            return 0  # guess: a one-step answer may come without cf-aig-step; it can only be that step
        raise errors.MalformedResponseError("the Universal Endpoint answered without cf-aig-step: cannot tell which "
                                            "route answered")
    if not 0 <= step < count:
        raise errors.MalformedResponseError(f"cf-aig-step {step} is not one of the {count} steps sent")
    return step


@dataclass(frozen=True, slots=True)
class Step:
    """One route of a Universal Endpoint request: its place in the chain, the route, its attempt's context."""

    index: int
    route: Route
    ctx: CallContext


@dataclass(slots=True)
class Segment:
    """One Universal Endpoint request: the steps it carries and a wait before sending it."""

    steps: list[Step]
    delay: float = 0.0
    booked: int = 0  # leading steps already booked as failed inside the gateway
    probes: list[int] = field(default_factory=list)  # positions whose half-open probe this request holds

    @property
    def routes(self) -> list[Route]:
        return [step.route for step in self.steps]


class GatewayCall:
    """The books of one gateway-mode call."""

    def __init__(
        self,
        routes: Sequence[Route],
        ctx: CallContext,
        *,
        policy: FallbackPolicy,
        limits: Limits,
        breaker: CircuitBreaker | None,
        clock: Callable[[], float] = time.monotonic,
        operation: str = "chat",
        on_records: Callable[[list[UsageRecord]], None] | None = None,
    ) -> None:
        self.routes = list(routes)
        self.operation = operation
        self.on_records = on_records  # hands the failed steps' records to the ledger as they become known
        self.ctx = ctx
        self.policy = policy
        self.limits = limits
        self.breaker = breaker
        self.clock = clock
        extra = limits.retry.max_retries
        self.max_attempts = limits.max_attempts if limits.max_attempts is not None else len(self.routes) + extra
        self.attempts: list[AttemptInfo] = []
        self.records: list[UsageRecord] = []
        self.errors: list[Exception] = []
        self.sent = 0
        self._start = 0
        self._delay = 0.0
        self._tries = 0
        self._noted: set[int] = set()
        self._note = ""

    def next(self) -> Segment:
        steps: list[Step] = []
        probes: list[int] = []
        for i in range(self._start, len(self.routes)):
            route = self.routes[i]
            half_open = self.breaker is not None and self.breaker.state(route.model) == "half_open"
            if self.breaker is not None and not self.breaker.allow(route.model):  # open, or being probed
                if i not in self._noted:
                    self._noted.add(i)
                    skip = CircuitOpenError(route.model, self.breaker.retry_in(route.model))
                    self.errors.append(skip)
                    self.attempts.append(AttemptInfo(route.model, skip.reason, str(skip), 0.0))
                continue
            if half_open:
                probes.append(len(steps))
            steps.append(Step(i, route, replace(self.ctx, attempt=i, fallback=i > 0)))
        if not steps:
            raise self._final()
        if self.sent >= self.max_attempts:
            self._note = f"attempt budget of {self.max_attempts} used up"
            raise self._final()
        if self.ctx.deadline is not None and self.clock() >= self.ctx.deadline:
            self._note = "the call's deadline passed"
            raise self._final()
        self.sent += 1
        delay, self._delay = self._delay, 0.0
        return Segment(steps, delay, probes=probes)

    def _release_probes(self, seg: Segment, after: int) -> None:
        """Free the half-open probes this request held on steps after ``after``: the gateway never tried them
        (``after=-1``: whether it did is unknown)."""
        if self.breaker is not None:
            for pos in seg.probes:
                if pos > after:
                    self.breaker.release(seg.steps[pos].route.model)

    def _steps_failed(self, seg: Segment, upto: int, health: bool) -> None:
        """Steps ``0..upto-1`` of ``seg`` failed inside the gateway: an attempt and a ledger record each."""
        for step in seg.steps[:upto]:
            route = step.route
            err = GatewayStepFailed(route.model, step.index)
            self.errors.append(err)
            self.attempts.append(AttemptInfo(route.model, STEP_FAILED, None, 0.0))
            if self.breaker is not None:
                (self.breaker.failure if health else self.breaker.release)(route.model)
        self._book(seg, upto)

    def _book(self, seg: Segment, upto: int) -> None:
        """Ledger records for the failed steps not booked yet (no usage is known for them: cost unknown,
        like a failed client-side attempt)."""
        start, seg.booked = seg.booked, max(seg.booked, upto)
        records = [
            make_record(step.route, step.ctx, operation=self.operation, usage=None, latency=0.0, outcome=STEP_FAILED)
            for step in seg.steps[start:upto]
        ]
        self.records.extend(records)
        if records and self.on_records is not None:
            self.on_records(records)

    def answered(self, seg: Segment, k: int) -> None:
        """Step ``k`` answers (its headers arrived): book the steps before it now, so the ledger has them
        before the answer's own record (attempts and the breaker wait for how the call ends)."""
        self._book(seg, k)

    def succeeded(self, result: R, seg: Segment, k: int) -> R:
        self._steps_failed(seg, k, True)
        self._release_probes(seg, k)
        if self.breaker is not None:
            self.breaker.success(seg.steps[k].route.model)
        result.attempts = [*self.attempts, *result.attempts]
        result.records = [*self.records, *result.records]
        return result

    def failed(self, exc: BaseException, seg: Segment, k: int | None, latency: float = 0.0) -> bool:
        """Record a failed request. ``k``: the step that answered, when known. True: raise ``exc``."""
        self.records.extend(getattr(exc, "records", None) or [])
        health = self.policy.counts_against(exc)
        known = k is not None or isinstance(exc, errors.APIError)
        pos = k if k is not None else len(seg.steps) - 1  # an error answer is the last step's
        self._release_probes(seg, pos if known else -1)
        if known:
            self._steps_failed(seg, pos, health)
        route = seg.steps[pos if known else 0].route
        self.attempts.append(AttemptInfo(route.model, type(exc).__name__, str(exc)[:300], latency))
        if isinstance(exc, Exception):
            self.errors.append(exc)
        if self.breaker is not None and known:
            (self.breaker.failure if health else self.breaker.release)(route.model)
        if not isinstance(exc, Exception) or not self.policy.should_fall_back(exc):
            annotate(exc, self.attempts, self.records)
            return True
        if known:
            self._start = seg.steps[pos].index + 1
            self._tries = 0
        else:  # no answer at all (connection refused, timeout before the first byte): maybe retry the request
            self._tries += 1
            delay = self.limits.retry.delay(self._tries - 1, exc) if retryable(exc) else None  # type: ignore[arg-type]
            if delay is None or (self.ctx.deadline is not None and self.clock() + delay >= self.ctx.deadline):
                self._start = len(self.routes)
            else:
                self._delay = delay
        return False

    def interrupted(self, exc: BaseException, seg: Segment, k: int) -> BaseException:
        """A stream failed after its first chunk: report and annotate, no fallback."""
        self.records.extend(getattr(exc, "records", None) or [])
        self._steps_failed(seg, k, True)
        self._release_probes(seg, k)
        route = seg.steps[k].route
        self.attempts.append(AttemptInfo(route.model, type(exc).__name__, str(exc)[:300], 0.0))
        if self.breaker is not None and self.policy.counts_against(exc):
            self.breaker.failure(route.model)
        return annotate(exc, self.attempts, self.records)

    def _final(self) -> BaseException:
        if not self.errors:
            return annotate(errors.TimeoutError(f"no attempt was made: {self._note or 'no route to try'}"),
                            self.attempts, self.records)
        if len(self.routes) == 1 and len(self.errors) == 1 and not isinstance(self.errors[0], CircuitOpenError):
            return annotate(self.errors[0], self.attempts, self.records)
        return all_failed(self.errors, self.attempts, self.records, self._note)


def answered_by(p: ChatPlan) -> ChatPlan:
    """``p`` read as a gateway answer (its ``cf-aig-*`` headers read even for a direct Workers AI route)."""
    if p.route.via_gateway:
        return p
    return replace(p, route=replace(p.route, via_gateway=True))


__all__ = [
    "STEP_FAILED",
    "GatewayCall",
    "Segment",
    "Step",
    "answered_by",
    "answering_step",
    "build_steps",
    "step_config",
    "universal_headers",
]
