"""Shadow comparisons, the sending: a chain whose routing policy has a :class:`~cfgateway.routing.shadow.Shadow`
hands each sampled answer of the baseline to a :class:`ShadowRunner`, which sends the same request to the
candidate and the two answers to the similarity model in a background thread, and books the pair as one
``shadow`` record (:func:`~cfgateway.routing.gates.shadow_record`).

The caller is never waited for, changed or failed: the hand-over is a non-blocking put on a bounded queue
(a full queue drops the shadow and counts it), everything after it runs on the pool's threads (so it
outlives ``asyncio.run``), and any error there is logged, never raised to the caller. The pair's clients
are built like the chain's members (its settings, catalog, transport, rate limits) over
:class:`~cfgateway.fallback._shadow_books.PairBooks`: budgets and the shadow's daily cap hold the pair's
worst case before it is sent, and a refusal stops shadows for a while (counted, logged once).
:func:`flush_shadows` waits for the pairs in flight (tests; also run at exit, for a few seconds).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from contextlib import aclosing, closing
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from cfgateway import errors
from cfgateway.calls.books import Books
from cfgateway.client import Client
from cfgateway.costs.budget import CostTracker
from cfgateway.costs.catalog import Catalog
from cfgateway.fallback._shadow_books import PairBooks, Pool, ShadowStop
from cfgateway.routing.gates import shadow_record
from cfgateway.routing.shadow import AnswerCollector, Shadow, ShadowCap, compare_answers
from cfgateway.types import CallContext, ChatChunk, ChatRequest, ChatResponse, UsageRecord

logger = logging.getLogger("cfgateway.shadow")
BUDGET_PAUSE_S = 60.0  # after a budget refusal, shadows try again this much later
LEDGER_PAUSE_S = 30.0  # after the ledger could not be reached
EXIT_WAIT_S = 5.0  # at interpreter exit, how long the pairs in flight may take to be booked
_RUNNERS: weakref.WeakSet[ShadowRunner] = weakref.WeakSet()
_EXIT_HOOKED: list[bool] = []
MakeClient = Callable[[str, Books], Client]


@dataclass(slots=True)
class ShadowStats:
    """What a runner did (counters since it was made). ``stopped_*`` count stop episodes; ``skipped`` the
    sampled calls not shadowed while stopped."""

    sampled: int = 0
    queued: int = 0
    dropped_full: int = 0
    dropped_closed: int = 0
    recorded: int = 0
    candidate_errors: int = 0
    judge_errors: int = 0
    stopped_cap: int = 0
    stopped_budget: int = 0
    stopped_ledger: int = 0
    stopped_unpriced: int = 0
    skipped: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


@dataclass(slots=True)
class _Job:
    request: ChatRequest
    ctx: CallContext
    answer: ChatResponse


class ShadowRunner:
    """One chain's shadow (see the module docstring). ``client(model, books)`` builds a client like the
    chain's members over ``books``."""

    def __init__(self, shadow: Shadow, *, baseline: str, tracker: CostTracker | None, catalog: Catalog,
                 client: MakeClient) -> None:
        if tracker is None:
            raise errors.ConfigError(
                "a Shadow books its pairs in the ledger: pass tracker=CostTracker(ledger) or set the ledger setting "
                "(CFGATEWAY_LEDGER, e.g. sqlite:///costs.db) so the rollout's gates can read them")
        if baseline == shadow.candidate:
            raise errors.ConfigError(f"the shadow's candidate {shadow.candidate!r} is the route it would shadow; "
                                     "set Shadow(baseline=...) to the route whose answers it compares against")
        self.shadow, self.baseline, self.tracker, self.catalog = shadow, baseline, tracker, catalog
        self._client = client
        probe = client(shadow.similarity_model, Books())  # fails now on a route that cannot be reached
        info = probe.model_info()
        if info is not None and info.kind != "embed":
            raise errors.ConfigError(f"the shadow's similarity_model {shadow.similarity_model!r} is a {info.kind} "
                                     "model; it must be an embedding model (e.g. @cf/baai/bge-base-en-v1.5)")
        cap = shadow.daily_cap
        self.cap = ShadowCap(tracker.ledger, shadow.key, cap) if cap is not None else None
        self.stats = ShadowStats()
        self._pool: Pool[_Job] = Pool(shadow.workers, shadow.max_pending, self._run, shadow.key)
        self._stopped: tuple[str, float] | None = None  # (kind, until epoch seconds)
        self._stop_lock = threading.Lock()
        _RUNNERS.add(self)
        if not _EXIT_HOOKED:
            _EXIT_HOOKED.append(True)
            atexit.register(_flush_at_exit)

    def __repr__(self) -> str:
        return f"ShadowRunner({self.shadow!r}, baseline={self.baseline!r}, pending={self._pool.pending})"

    # -- the caller's side: cheap, never raises ------------------------------------------------------
    def _wanted(self, ctx: CallContext) -> bool:
        if not self.shadow.sampled(ctx.call_id, ctx.user):
            return False
        self.stats.bump("sampled")
        stopped = self._stopped
        if stopped is not None:
            if time.time() < stopped[1]:
                self.stats.bump("skipped")
                return False
            self._stopped = None
            logger.warning("shadow %s: comparisons start again (after %s)", self.shadow.key, stopped[0])
        return True

    def _fits(self, answer: ChatResponse) -> bool:
        """Answered by the baseline, without having tried the candidate already (its attempt is evidence)."""
        return answer.model == self.baseline and all(a.model != self.shadow.candidate for a in answer.attempts)

    def after(self, request: ChatRequest, ctx: CallContext, answer: ChatResponse) -> None:
        """A chat call succeeded: shadow it when it is sampled and the baseline answered it."""
        try:
            if self._fits(answer) and self._wanted(ctx):
                self._submit(_Job(request, ctx, answer))
        except Exception:  # noqa: BLE001 - the caller's answer is never failed by a shadow
            logger.exception("shadow %s: could not hand a call over", self.shadow.key)

    def tap(self, request: ChatRequest, ctx: CallContext) -> ShadowTap | None:
        """For a stream: a tap collecting its chunks when the call is sampled (``None`` otherwise)."""
        try:
            return ShadowTap(self, request, ctx) if self._wanted(ctx) else None
        except Exception:  # noqa: BLE001
            logger.exception("shadow %s: could not sample a call", self.shadow.key)
            return None

    def _submit(self, job: _Job) -> None:
        if self._pool.submit(job):
            self.stats.bump("queued")
        else:
            self.stats.bump("dropped_full")
            logger.debug("shadow %s: the queue is full (%d pending); a comparison was dropped", self.shadow.key,
                         self.shadow.max_pending)

    # -- control -------------------------------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> int:
        """Wait for the queued and running pairs (at most ``timeout`` s); how many are still pending."""
        return self._pool.flush(timeout)

    def close(self) -> None:
        """Take no more shadows; the queued ones not started are dropped (counted)."""
        dropped = self._pool.close()
        if dropped:
            self.stats.bump("dropped_closed", len(dropped))

    def _stop(self, kind: str, message: str, until: float) -> None:
        with self._stop_lock:
            first, self._stopped = self._stopped is None, (kind, until)
        if first:
            self.stats.bump(f"stopped_{kind}")
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(until))
            logger.warning("shadow %s: comparisons stop until %s: %s", self.shadow.key, when, message)

    # -- the pool's side -----------------------------------------------------------------------------
    def _run(self, job: _Job) -> None:
        try:
            self._pair(job)
        except Exception:  # noqa: BLE001 - logged and counted; the worker goes on
            self.stats.bump("failed")
            logger.exception("shadow %s: a comparison failed", self.shadow.key)

    def _pair(self, job: _Job) -> None:
        books = PairBooks(self.tracker, self.catalog, self.cap,
                          (self.shadow.similarity_model, len(job.answer.text.encode()) + 16))
        ctx = CallContext(call_id=job.ctx.call_id, user=job.ctx.user, metadata=dict(job.ctx.metadata))
        try:
            candidate: ChatResponse | BaseException = self._client(self.shadow.candidate, books).chat(
                job.request, context=ctx)
        except ShadowStop as stop:
            return self._stop(stop.kind, str(stop), stop.until)
        except errors.BudgetExceededError as exc:
            books.close(Decimal(0))
            return self._stop("budget", str(exc), time.time() + BUDGET_PAUSE_S)
        except errors.LedgerUnavailableError as exc:
            books.close(Decimal(0))
            return self._stop("ledger", str(exc), time.time() + LEDGER_PAUSE_S)
        except errors.CloudflareError as exc:
            if self._pool.closed:  # the chain closed its transport under this call: no evidence either way
                books.close(Decimal(0))
                return self.stats.bump("dropped_closed")
            candidate = exc  # the candidate failed: that is evidence, booked with its error
        except Exception:
            books.close(Decimal(0))
            raise
        similarity, judge = self._compare(job, candidate, books, ctx)
        self._book(job, candidate, similarity, judge, books)
        return None

    def _compare(self, job: _Job, candidate: ChatResponse | BaseException, books: PairBooks,
                 ctx: CallContext) -> tuple[float | None, list[tuple[UsageRecord, str | None]]]:
        """The similarity (``None`` when the candidate failed or the comparison could not be made) and the
        similarity model's records with their errors."""
        if isinstance(candidate, BaseException):
            return None, []
        judged: list[tuple[UsageRecord, str | None]] = []

        def embed(texts: list[str]) -> list[list[float]]:
            try:
                resp = self._client(self.shadow.similarity_model, books).embed(texts, context=ctx)
            except errors.CloudflareError as exc:
                judged.extend((r, type(exc).__name__) for r in getattr(exc, "records", []))
                raise
            judged.extend((r, None) for r in resp.records)
            return resp.vectors

        try:
            return compare_answers(job.answer, candidate, embed), judged
        except ShadowStop as stop:
            self._stop(stop.kind, str(stop), stop.until)
        except errors.BudgetExceededError as exc:
            self._stop("budget", str(exc), time.time() + BUDGET_PAUSE_S)
        except errors.LedgerUnavailableError as exc:
            self._stop("ledger", str(exc), time.time() + LEDGER_PAUSE_S)
        except (errors.CloudflareError, ValueError) as exc:
            self.stats.bump("judge_errors")
            logger.warning("shadow %s: the answers could not be compared (%s: %s); the pair is booked without a "
                           "similarity", self.shadow.key, type(exc).__name__, exc)
        return None, judged

    def _book(self, job: _Job, candidate: ChatResponse | BaseException, similarity: float | None,
              judged: list[tuple[UsageRecord, str | None]], books: PairBooks) -> None:
        pair = shadow_record(candidate, job.answer, candidate_model=self.shadow.candidate, similarity=similarity,
                             user=job.ctx.user)
        if similarity is None and not isinstance(candidate, BaseException):
            pair.tags = {**pair.tags, "shadow": "not compared"}
        holds = books.holds
        costs = [books.book(pair, holds[0] if holds else None).cost]
        for i, (rec, error) in enumerate(judged):
            rec.error = error or (None if rec.outcome == "ok" else rec.outcome)
            rec.outcome, rec.baseline = "shadow", job.answer.model
            rec.tags = {**rec.tags, "shadow": "similarity", "candidate": self.shadow.candidate}
            last = i == len(judged) - 1
            costs.append(books.book(rec, holds[1] if last and len(holds) > 1 else None).cost)
        books.close(None if None in costs else sum((c for c in costs if c is not None), Decimal(0)))
        self.stats.bump("recorded")
        if isinstance(candidate, BaseException):
            self.stats.bump("candidate_errors")


class ShadowTap:
    """Collects a sampled stream's chunks; its final chunk hands the whole answer to the runner."""

    __slots__ = ("collector", "ctx", "request", "runner")

    def __init__(self, runner: ShadowRunner, request: ChatRequest, ctx: CallContext) -> None:
        self.runner, self.request, self.ctx = runner, request, ctx
        self.collector = AnswerCollector()

    def see(self, chunk: ChatChunk) -> None:
        try:
            self.collector.add(chunk)
            if chunk.final:
                answer = self.collector.response(chunk)
                if self.runner._fits(answer):
                    self.runner._submit(_Job(self.request, self.ctx, answer))
        except Exception:  # noqa: BLE001 - never the caller's problem
            logger.exception("shadow %s: could not collect a streamed answer", self.runner.shadow.key)

    def wrap(self, chunks: Generator[ChatChunk, None, None]) -> Iterator[ChatChunk]:
        with closing(chunks):
            for chunk in chunks:
                self.see(chunk)
                yield chunk

    async def awrap(self, chunks: AsyncGenerator[ChatChunk, None]) -> AsyncIterator[ChatChunk]:
        async with aclosing(chunks):
            async for chunk in chunks:
                self.see(chunk)
                yield chunk


def runner_for(chain: Any) -> ShadowRunner | None:
    """The runner of a chain whose routing policy has a shadow (``None`` otherwise). The baseline: the
    shadow's, else the first rollout's old route, else the chain's primary."""
    policy = chain.routing
    shadow: Shadow | None = getattr(policy, "shadow", None)
    if shadow is None:
        return None
    olds = [r.old_route for r in policy.rollouts if r.old_route]
    baseline = shadow.baseline or (olds[0] if olds else chain.model)

    def client(model: str, books: Books) -> Client:
        return Client(model, settings=chain.settings, endpoint=chain.endpoint, gateway_options=chain.gateway_options,
                      books=books, catalog=chain.catalog, transport=chain.transport, rate_limits=chain.limiter)

    return ShadowRunner(shadow, baseline=baseline, tracker=chain.tracker, catalog=chain.catalog, client=client)


def flush_shadows(timeout: float = 30.0) -> int:
    """Wait until every shadow comparison of this process is booked (at most ``timeout`` seconds in all);
    the number still pending. Tests call it before reading the ledger; it also runs at exit."""
    end = time.monotonic() + timeout
    left = 0
    for runner in list(_RUNNERS):
        left += runner.flush(max(0.0, end - time.monotonic()))
    return left


def _flush_at_exit() -> None:
    left = flush_shadows(EXIT_WAIT_S)
    if left:
        logger.warning("%d shadow comparison(s) were still running at exit and are not booked", left)


__all__ = ["ShadowRunner", "ShadowStats", "ShadowTap", "flush_shadows", "runner_for"]
