"""Gateway-side fallback for embeddings.

Vectors of one call must come from one model, so the first batch goes out with every step and the
step that answers it serves the remaining batches alone (one-step requests, so the gateway's own
retries still apply), ``max_concurrency`` at a time, in order. A later batch that fails stops the
batches not yet sent and sends the whole call on to the steps after that one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from cfgateway import errors
from cfgateway.calls.embed import (
    DEFAULT_BATCH,
    EmbedBatch,
    EmbedPart,
    check_inputs,
    finish_batch,
    gather_or_cancel,
    merge,
    prepare_batches,
    progress_bar,
)
from cfgateway.calls.plan import call_metadata
from cfgateway.fallback._gateway_plan import Segment, answering_step, build_steps, universal_headers
from cfgateway.fallback._setup import ChainParts
from cfgateway.routing.routes import GatewayOptions
from cfgateway.types import CallContext, EmbedResponse, UsageRecord

Bar = Callable[[int | None], None]


class EmbedJob:
    """One embed call in gateway mode; :meth:`run` / :meth:`arun` try one segment of steps."""

    def __init__(
        self, parts: ChainParts, url: str, config: dict[str, Any] | None, texts: list[str], ctx: CallContext,
        batch_size: int | None, pooling: str | None, options: GatewayOptions | None, *, max_concurrency: int = 8,
        progress: bool = False, dimensions: int | None = None,
    ) -> None:
        self.parts, self.url, self.config = parts, url, config
        self.texts, self.ctx, self.batch_size, self.pooling = texts, ctx, batch_size, pooling
        self.concurrency = max(1, max_concurrency)
        self.progress = progress
        self.dimensions = dimensions
        self._booked: list[UsageRecord] = []  # records of the batches answered so far (already in the ledger)
        self.answered: int | None = None  # position in the segment of the step that answered
        self.on_answer: Callable[[Segment, int], None] | None = None  # books the steps that failed before it
        self.started = 0.0
        self.headers = universal_headers(parts.settings, options, call_metadata(ctx))

    def latency(self) -> float:
        return time.perf_counter() - self.started

    def _plan(self, seg: Segment) -> list[list[EmbedBatch]]:
        """Per step, its batches (the same split for every step: the smallest batch limit wins)."""
        self.answered, self.started = None, time.perf_counter()
        catalog = self.parts.catalog
        infos = [catalog.get(r.model) for r in seg.routes]
        check_inputs(self.texts, infos[0], seg.routes[0].model)
        limits = [i.max_batch for i in infos if i is not None and i.max_batch]
        size = min([self.batch_size or min(limits or [DEFAULT_BATCH]), *limits])
        return [
            prepare_batches(step.route, self.texts, size, pooling=self.pooling if step.route.wire == "workers-ai"
                            else None, options=None, ctx=step.ctx, dimensions=self.dimensions, info=info)
            for step, info in zip(seg.steps, infos, strict=True)
        ]

    def _request(self, seg: Segment, batches: list[list[EmbedBatch]], i: int) -> tuple[list[int], list[Any]]:
        positions = list(range(len(seg.steps))) if self.answered is None else [self.answered]
        body = build_steps([seg.steps[p].route for p in positions], [batches[p][i].body for p in positions],
                           operation="embed", config=self.config)
        return positions, body

    def _answer(self, seg: Segment, h: Any, positions: list[int]) -> None:
        self.answered = positions[answering_step(h, len(positions))]
        if self.on_answer is not None:
            self.on_answer(seg, self.answered)

    def _finish(self, seg: Segment, batches: list[list[EmbedBatch]], i: int, h: Any, content: bytes,
                started: float) -> EmbedPart:
        assert self.answered is not None
        pos = self.answered
        batch = batches[pos][i]
        if not batch.route.via_gateway:
            batch = replace(batch, route=replace(batch.route, via_gateway=True))
        batch.started = started
        return finish_batch(batch, h, content, seg.steps[pos].ctx, self.parts.catalog)

    def _failed(self, seg: Segment, exc: errors.CloudflareError, started: float) -> None:
        step = seg.steps[self.answered if self.answered is not None else len(seg.steps) - 1]
        self.parts.books.failed(step.route, step.ctx, exc, started, "embed", None)
        exc.records = [*self._booked, *exc.records]

    def _answered(self, part: EmbedPart, bar: Bar, count: int) -> EmbedPart:
        records = [part.record]
        self.parts.books.settle(records, None)  # booked as it comes: a later failure does not lose it
        part.record = records[0]
        self._booked.append(part.record)
        bar(count)
        return part

    def _begin(self, seg: Segment) -> tuple[list[list[EmbedBatch]], Bar]:
        self._booked = []
        batches = self._plan(seg)
        return batches, progress_bar(self.progress, len(self.texts), seg.routes[0].model)

    def _paced(self, batches: list[list[EmbedBatch]], positions: list[int], i: int) -> dict[str, Any]:
        """The rate limit of the request's first step for batch ``i`` (see ``GatewayCalls.paced``): every step
        at first, then the step that answered alone, so a fallback's batches go at its own pace."""
        first = batches[positions[0]][i]
        return {"pace": self.parts.pace(first.route.model), "tokens": first.tokens}

    def _send(self, seg: Segment, batches: list[list[EmbedBatch]], i: int, bar: Bar) -> EmbedPart:
        positions, body = self._request(seg, batches, i)
        started = time.perf_counter()
        try:
            paced = self._paced(batches, positions, i)
            with self.parts.transport.stream(self.url, self.headers, body, model=label(seg),
                                             deadline=self.ctx.deadline, **paced) as (h, it):
                self._answer(seg, h, positions)
                content = b"".join(it)
            part = self._finish(seg, batches, i, h, content, started)
        except errors.CloudflareError as exc:
            self._failed(seg, exc, started)
            raise
        return self._answered(part, bar, batches[0][i].count)

    async def _asend(self, seg: Segment, batches: list[list[EmbedBatch]], i: int, bar: Bar) -> EmbedPart:
        positions, body = self._request(seg, batches, i)
        started = time.perf_counter()
        try:
            paced = self._paced(batches, positions, i)
            async with self.parts.transport.astream(self.url, self.headers, body, model=label(seg),
                                                    deadline=self.ctx.deadline, **paced) as (h, it):
                self._answer(seg, h, positions)
                content = b"".join([piece async for piece in it])
            part = self._finish(seg, batches, i, h, content, started)
        except errors.CloudflareError as exc:
            self._failed(seg, exc, started)
            raise
        return self._answered(part, bar, batches[0][i].count)

    def run(self, seg: Segment) -> EmbedResponse:
        batches, bar = self._begin(seg)
        try:
            if not batches[0]:
                return self._done(seg, [])
            first = self._send(seg, batches, 0, bar)  # every step: learns which one answers
            rest = range(1, len(batches[0]))
            if len(rest) > 1 and self.concurrency > 1:
                with ThreadPoolExecutor(max_workers=min(self.concurrency, len(rest))) as pool:
                    return self._done(seg, [first, *pool.map(lambda i: self._send(seg, batches, i, bar), rest)])
            return self._done(seg, [first, *(self._send(seg, batches, i, bar) for i in rest)])
        finally:
            bar(None)

    async def arun(self, seg: Segment) -> EmbedResponse:
        batches, bar = self._begin(seg)
        try:
            if not batches[0]:
                return self._done(seg, [])
            first = await self._asend(seg, batches, 0, bar)
            sem = asyncio.Semaphore(self.concurrency)

            async def one(i: int) -> EmbedPart:
                async with sem:
                    return await self._asend(seg, batches, i, bar)

            rest = await gather_or_cancel([one(i) for i in range(1, len(batches[0]))])
            return self._done(seg, [first, *rest])
        finally:
            bar(None)

    def _done(self, seg: Segment, parts: list[EmbedPart]) -> EmbedResponse:
        assert self.answered is not None or not parts
        return merge(seg.steps[self.answered or 0].route, parts, self.started)


def label(seg: Segment) -> str:
    """How a Universal Endpoint request is named in errors and logs."""
    return "universal(" + ", ".join(r.model for r in seg.routes) + ")"


__all__ = ["EmbedJob", "label"]
