"""Gateway-side fallback for embeddings.

Vectors of one call must come from one model, so the first batch goes out with every step and the
step that answers it serves the remaining batches alone (one-step requests, so the gateway's own
retries still apply). A later batch that fails sends the whole call on to the steps after that one.
Batches go one after another (guess: simplicity over throughput in this mode; use the client-side
mode for large corpora).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cfgateway import errors
from cfgateway.calls import CallContext
from cfgateway.embedding import DEFAULT_BATCH, EmbedBatch, check_inputs, finish_batch, merge, prepare_batches
from cfgateway.fallback.universal_plan import Segment, answering_step, build_steps, step_config, universal_headers
from cfgateway.routes import GatewayOptions
from cfgateway.types import EmbedResponse

if TYPE_CHECKING:
    from cfgateway.fallback.universal import UniversalMode

_Part = Any  # (vectors, usage, gateway, record)


class EmbedJob:
    """One embed call in gateway mode; :meth:`run` / :meth:`arun` try one segment of steps."""

    def __init__(
        self, mode: UniversalMode, texts: list[str], ctx: CallContext, batch_size: int | None,
        pooling: str | None, options: GatewayOptions | None,
    ) -> None:
        self.mode = mode
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
                            options=None, ctx=c)
            for _, r, c in seg.steps
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

    def _failed(self, seg: Segment, exc: errors.CloudflareError, parts: list[_Part], started: float) -> None:
        pos = self.answered if self.answered is not None else len(seg.steps) - 1
        _, route, ctx = seg.steps[pos]
        self.client._settle([p[3] for p in parts], None)
        self.client._failed(route, ctx, exc, started, "embed", None)
        exc.records = [*(p[3] for p in parts), *exc.records]  # type: ignore[attr-defined]

    def _done(self, seg: Segment, parts: list[_Part]) -> EmbedResponse:
        assert self.answered is not None or not parts
        route = seg.steps[self.answered or 0][1]
        self.client._settle([p[3] for p in parts], None)
        return merge(route, parts, self.started)

    def run(self, seg: Segment) -> EmbedResponse:
        batches = self._plan(seg)
        parts: list[_Part] = []
        transport, url = self.client.transport, self.mode.url
        for i in range(len(batches[0])):
            positions, body = self._request(seg, batches, i)
            started = time.perf_counter()
            try:
                with transport.stream(url, self.headers, body, model=self.mode.label(seg),
                                      deadline=self.ctx.deadline) as (h, it):
                    self._answer(seg, h, positions)
                    content = b"".join(it)
                parts.append(self._finish(seg, batches, i, h, content, started))
            except errors.CloudflareError as exc:
                self._failed(seg, exc, parts, started)
                raise
        return self._done(seg, parts)

    async def arun(self, seg: Segment) -> EmbedResponse:
        batches = self._plan(seg)
        parts: list[_Part] = []
        transport, url = self.client.transport, self.mode.url
        for i in range(len(batches[0])):
            positions, body = self._request(seg, batches, i)
            started = time.perf_counter()
            try:
                async with transport.astream(url, self.headers, body, model=self.mode.label(seg),
                                             deadline=self.ctx.deadline) as (h, it):
                    self._answer(seg, h, positions)
                    content = b"".join([piece async for piece in it])
                parts.append(self._finish(seg, batches, i, h, content, started))
            except errors.CloudflareError as exc:
                self._failed(seg, exc, parts, started)
                raise
        return self._done(seg, parts)


__all__ = ["EmbedJob"]
