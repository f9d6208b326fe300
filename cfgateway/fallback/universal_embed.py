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
from typing import TYPE_CHECKING, Any

from cfgateway import errors
from cfgateway.embedding import (
    DEFAULT_BATCH,
    EmbedBatch,
    check_inputs,
    finish_batch,
    gather_or_cancel,
    merge,
    prepare_batches,
    progress_bar,
)
from cfgateway.fallback.universal_plan import Segment, answering_step, build_steps, step_config, universal_headers
from cfgateway.routing.routes import GatewayOptions
from cfgateway.types import CallContext, EmbedResponse

if TYPE_CHECKING:
    from cfgateway.fallback.universal import UniversalMode

_Part = Any  # (vectors, usage, gateway, record)


class EmbedJob:
    """One embed call in gateway mode; :meth:`run` / :meth:`arun` try one segment of steps."""

    def __init__(
        self, mode: UniversalMode, texts: list[str], ctx: CallContext, batch_size: int | None,
        pooling: str | None, options: GatewayOptions | None, *, max_concurrency: int = 8, progress: bool = False,
        dimensions: int | None = None,
    ) -> None:
        self.dimensions = dimensions
        self.mode = mode
        self.concurrency = max(1, max_concurrency)
        self.progress = progress
        self._booked: list[Any] = []  # records of the batches answered so far (already in the ledger)
        self.client = mode.client
        self.texts = texts
        self.ctx = ctx
        self.batch_size = batch_size
        self.pooling = pooling
        self.options = options
        self.answered: int | None = None  # position in the segment of the step that answered
        self.on_answer: Callable[[Segment, int], None] | None = None  # books the steps that failed before it
        self.started = 0.0
        meta = dict(ctx.metadata)
        if ctx.user:
            meta.setdefault("user", ctx.user)
        self.headers = universal_headers(self.client.settings, options, meta)
        self.config = step_config(options, mode.config_override, default_timeout_ms=mode.default_timeout_ms)

    def latency(self) -> float:
        return time.perf_counter() - self.started

    def _plan(self, seg: Segment) -> list[list[EmbedBatch]]:
        """Per step, its batches (the same split for every step: the smallest batch limit wins)."""
        self.answered, self.started = None, time.perf_counter()
        catalog = self.client.catalog
        infos = [catalog.get(r.model) for r in seg.routes]
        check_inputs(self.texts, infos[0], seg.routes[0].model)
        limits = [i.max_batch for i in infos if i is not None and i.max_batch]
        size = min([self.batch_size or min(limits or [DEFAULT_BATCH]), *limits])
        return [
            prepare_batches(r, self.texts, size, pooling=self.pooling if r.wire == "workers-ai" else None,
                            options=None, ctx=c, dimensions=self.dimensions, info=info)
            for (_, r, c), info in zip(seg.steps, infos, strict=True)
        ]

    def _request(self, seg: Segment, batches: list[list[EmbedBatch]], i: int) -> tuple[list[int], bytes]:
        positions = list(range(len(seg.steps))) if self.answered is None else [self.answered]
        body = build_steps([seg.steps[p][1] for p in positions], [batches[p][i].body for p in positions],
                           operation="embed", config=self.config)
        return positions, body

    def _answer(self, seg: Segment, h: Any, positions: list[int]) -> None:
        self.answered = positions[answering_step(h, len(positions))]
        if self.on_answer is not None:
            self.on_answer(seg, self.answered)

    def _finish(
        self, seg: Segment, batches: list[list[EmbedBatch]], i: int, h: Any, content: bytes, started: float
    ) -> _Part:
        assert self.answered is not None
        pos = self.answered
        batch = batches[pos][i]
        if not batch.route.via_gateway:
            batch = replace(batch, route=replace(batch.route, via_gateway=True))
        batch.started = started
        return finish_batch(batch, h, content, seg.steps[pos][2], self.client.catalog)

    def _failed(self, seg: Segment, exc: errors.CloudflareError, started: float) -> None:
        pos = self.answered if self.answered is not None else len(seg.steps) - 1
        _, route, ctx = seg.steps[pos]
        self.client._failed(route, ctx, exc, started, "embed", None)
        exc.records = [*self._booked, *exc.records]  # type: ignore[attr-defined]

    def _answered(self, part: _Part, bar: Callable[[int | None], None], count: int) -> _Part:
        self.client._settle([part[3]], None)  # booked as it comes: a later failure does not lose it
        self._booked.append(part[3])
        bar(count)
        return part

    def _begin(self, seg: Segment) -> tuple[list[list[EmbedBatch]], Callable[[int | None], None]]:
        self._booked = []
        batches = self._plan(seg)
        return batches, progress_bar(self.progress, len(self.texts), seg.routes[0].model)

    def _send(self, seg: Segment, batches: list[list[EmbedBatch]], i: int, bar: Callable[[int | None], None]) -> _Part:
        positions, body = self._request(seg, batches, i)
        started = time.perf_counter()
        try:
            with self.client.transport.stream(self.mode.url, self.headers, body, model=self.mode.label(seg),
                                              deadline=self.ctx.deadline) as (h, it):
                self._answer(seg, h, positions)
                content = b"".join(it)
            part = self._finish(seg, batches, i, h, content, started)
        except errors.CloudflareError as exc:
            self._failed(seg, exc, started)
            raise
        return self._answered(part, bar, batches[0][i].count)

    async def _asend(
        self, seg: Segment, batches: list[list[EmbedBatch]], i: int, bar: Callable[[int | None], None]
    ) -> _Part:
        positions, body = self._request(seg, batches, i)
        started = time.perf_counter()
        try:
            async with self.client.transport.astream(self.mode.url, self.headers, body, model=self.mode.label(seg),
                                                     deadline=self.ctx.deadline) as (h, it):
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

            async def one(i: int) -> _Part:
                async with sem:
                    return await self._asend(seg, batches, i, bar)

            rest = await gather_or_cancel([one(i) for i in range(1, len(batches[0]))])
            return self._done(seg, [first, *rest])
        finally:
            bar(None)

    def _done(self, seg: Segment, parts: list[_Part]) -> EmbedResponse:
        assert self.answered is not None or not parts
        return merge(seg.steps[self.answered or 0][1], parts, self.started)


__all__ = ["EmbedJob"]
