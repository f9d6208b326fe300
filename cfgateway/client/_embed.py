"""The embed flows: every batch of an :class:`~cfgateway.calls.embed.EmbedPlan` sent, ``max_concurrency`` at a
time, answers read in order and booked. A batch that fails for good stops the batches not yet sent (each
one would be billed) and the batches already answered are still booked."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from cfgateway import errors
from cfgateway.calls.books import Books, Hold
from cfgateway.calls.embed import (
    EmbedBatch,
    EmbedPart,
    EmbedPlan,
    batch_error,
    finish_batch,
    gather_or_cancel,
    merge,
    progress_bar,
)
from cfgateway.client._parts import CallParts
from cfgateway.http.transport import RawResponse
from cfgateway.types import CallContext, EmbedResponse


def _batch_failed(
    parts: CallParts, b: EmbedBatch, ctx: CallContext, exc: errors.CloudflareError
) -> errors.CloudflareError:
    parts.books.failed(b.route, ctx, exc, b.started, "embed", None)
    return batch_error(b, exc)


def _post_batch(parts: CallParts, b: EmbedBatch, ctx: CallContext, failed: list[errors.CloudflareError]) -> RawResponse:
    if failed:  # another batch failed for good: this one is not sent (it would be billed for nothing)
        raise failed[0]
    b.started = time.perf_counter()
    try:
        return parts.transport.post(b.url, b.headers, b.body, model=b.route.model, deadline=ctx.deadline,
                                    pace=parts.pace(b.route.model), tokens=b.tokens)
    except errors.CloudflareError as exc:
        failed.append(_batch_failed(parts, b, ctx, exc))
        raise failed[0] from None


def _read_batch(parts: CallParts, b: EmbedBatch, raw: RawResponse, ctx: CallContext) -> EmbedPart:
    try:
        return finish_batch(b, raw.headers, raw.content, ctx, parts.catalog)
    except errors.CloudflareError as exc:
        raise _batch_failed(parts, b, ctx, exc) from None


def send_embed(parts: CallParts, plan: EmbedPlan, max_concurrency: int, progress: bool) -> EmbedResponse:
    batches, ctx = plan.batches, plan.ctx
    hold = parts.books.hold(plan.route, ctx, plan.input_tokens, 0) if batches else None
    bar = progress_bar(progress, sum(b.count for b in batches), plan.route.model)
    answers: list[EmbedPart] = []
    failed: list[errors.CloudflareError] = []  # the first batch that failed for good stops the others
    try:
        if len(batches) <= 1 or max_concurrency <= 1:
            for b in batches:
                answers.append(_read_batch(parts, b, _post_batch(parts, b, ctx, failed), ctx))
                bar(b.count)
        else:  # threads only send; this thread decodes, in order, while they wait on the network
            with ThreadPoolExecutor(max_workers=min(max_concurrency, len(batches))) as pool:
                sent = pool.map(lambda b: _post_batch(parts, b, ctx, failed), batches)  # a failure stops the rest
                for b, raw in zip(batches, sent, strict=True):
                    answers.append(_read_batch(parts, b, raw, ctx))
                    bar(b.count)
    except BaseException:
        _book(parts.books, answers, hold)  # what was answered was billed
        raise
    finally:
        bar(None)
    _book(parts.books, answers, hold)
    return merge(plan.route, answers, plan.started)


async def asend_embed(parts: CallParts, plan: EmbedPlan, max_concurrency: int, progress: bool) -> EmbedResponse:
    batches, ctx = plan.batches, plan.ctx
    hold = parts.books.hold(plan.route, ctx, plan.input_tokens, 0) if batches else None
    bar = progress_bar(progress, sum(b.count for b in batches), plan.route.model)
    sem = asyncio.Semaphore(max(1, max_concurrency))
    done: list[EmbedPart] = []
    failed: list[errors.CloudflareError] = []  # the first batch that failed for good stops the others

    async def one(b: EmbedBatch) -> EmbedPart:
        async with sem:  # a slot covers the request only, not the decoding of its answer
            if failed:
                raise failed[0]
            b.started = time.perf_counter()
            try:
                raw = await parts.transport.apost(b.url, b.headers, b.body, model=b.route.model,
                                                  deadline=ctx.deadline, pace=parts.pace(b.route.model),
                                                  tokens=b.tokens)
            except errors.CloudflareError as exc:
                failed.append(_batch_failed(parts, b, ctx, exc))
                raise failed[0] from None
        # Let the task woken by the freed slot send its request before this one decodes (~1-2 ms of CPU
        # for 100 vectors): the next batch's network wait then overlaps this batch's decoding.
        await asyncio.sleep(0)
        answer = _read_batch(parts, b, raw, ctx)
        done.append(answer)
        bar(b.count)
        return answer

    try:
        answers = await gather_or_cancel([one(b) for b in batches])  # a failure stops the batches not yet sent
    except BaseException:
        _book(parts.books, done, hold)
        raise
    finally:
        bar(None)
    _book(parts.books, answers, hold)
    return merge(plan.route, answers, plan.started)


def _book(books: Books, answers: list[EmbedPart], hold: Hold) -> None:
    """Book the answered batches (the ledger's copies of the records go back on the parts)."""
    records = [a.record for a in answers]
    books.settle(records, hold)
    for answer, rec in zip(answers, records, strict=True):
        answer.record = rec


__all__ = ["asend_embed", "send_embed"]
