"""Sans-IO embedding logic: input checks, batching at the model's limit, request building, merging.

:func:`plan_embed` decides a whole embed call before any I/O (its batches, each with URL, headers and body
dict, and what the budget holds); :func:`finish_batch` reads one answer into an :class:`EmbedPart`;
:func:`merge` joins the parts in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from cfgateway import errors
from cfgateway.calls.outcome import gateway_meta, load_json, make_record, price
from cfgateway.calls.plan import call_metadata, request_headers
from cfgateway.costs.catalog import Catalog, ModelInfo
from cfgateway.costs.pricing import embed_token_bound, estimate_tokens
from cfgateway.routing.routes import GatewayOptions, Route
from cfgateway.types import AttemptInfo, CallContext, EmbedResponse, GatewayMeta, Usage, UsageRecord
from cfgateway.wire import WIRES
from cfgateway.wire.common import fast_loads

T = TypeVar("T")

DEFAULT_BATCH = 100
MAX_DEFAULT_BATCH = 512
CHARS_PER_TOKEN_CEILING = 8  # no tokenizer packs more than this many characters into a token on real text


def batch_size_for(info: ModelInfo | None, requested: int | None) -> int:
    limit = info.max_batch if info and info.max_batch else None
    if requested is not None:
        if requested < 1:
            raise errors.ConfigError(f"batch_size must be at least 1, got {requested}")
        if limit is not None and requested > limit:
            raise errors.ConfigError(
                f"batch_size {requested} is above {info.model if info else 'the model'}'s limit of {limit} inputs "
                f"per request; use batch_size<={limit} (or leave it unset to use the limit)"
            )
        return requested
    return min(limit or DEFAULT_BATCH, MAX_DEFAULT_BATCH)


def dims_field(route: Route, info: ModelInfo | None, dimensions: int | None) -> dict[str, Any] | None:
    """The request field that asks ``route`` for ``dimensions``-long vectors, or None when none is needed.

    A route whose native size is ``dimensions`` needs nothing; a route that shortens vectors on request
    (catalog ``flex_dims``: OpenAI text-embedding-3, Qwen3-Embedding) gets ``{"dimensions": n}``; any other
    route is refused before sending. A model the catalog does not know is sent the field on the OpenAI wire
    (the service decides) and refused on Workers AI's native wire, which has no such field.
    """
    if dimensions is None:
        return None
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
        raise errors.InvalidInputError(f"dimensions must be a positive whole number, got {dimensions!r}")
    if info is not None and info.dims == dimensions:
        return None
    if info is not None and info.flex_dims and info.dims is not None:
        if dimensions > info.dims:
            raise errors.InvalidInputError(
                f"{route.model} gives at most {info.dims}-dimensional vectors; ask for dimensions<={info.dims}"
            )
        return {"dimensions": dimensions}
    if info is None and route.wire == "openai":
        return {"dimensions": dimensions}
    native = f"{info.dims}-dimensional vectors" if info is not None and info.dims else "vectors of its own size"
    raise errors.InvalidInputError(
        f"{route.model} gives {native} and cannot shorten them to dimensions={dimensions}; use a model that "
        "takes dimensions= (catalog 'flex_dims': openai/text-embedding-3-*, custom-deepinfra/Qwen/Qwen3-Embedding-8B) "
        "or leave dimensions unset"
    )


def check_inputs(texts: list[str], info: ModelInfo | None, model: str) -> None:
    """Reject inputs every route would reject, naming the index."""
    if isinstance(texts, str):
        raise errors.InvalidInputError("embed() takes a list of strings; wrap a single text in a list")
    max_tokens = info.max_input_tokens if info else None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise errors.InvalidInputError(f"input {i} is a {type(t).__name__}, not a string")
        if not t.strip():
            raise errors.InvalidInputError(f"input {i} is empty; {model} rejects empty strings — drop or fill it")
        if max_tokens and len(t) > max_tokens * CHARS_PER_TOKEN_CEILING:
            raise errors.InvalidInputError(
                f"input {i} is {len(t)} characters, far above {model}'s limit of {max_tokens} tokens; "
                "split it into smaller chunks"
            )


@dataclass(slots=True)
class EmbedBatch:
    route: Route
    index: int  # position of the first text in the whole input
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    count: int
    started: float = 0.0
    dims: int | None = None  # the vector size asked for with dimensions=, checked on the answer
    tokens: int = 0  # estimated input tokens (for a tokens-per-minute limit)


@dataclass(slots=True)
class EmbedPart:
    """One batch's answer."""

    vectors: list[list[float]]
    usage: Usage | None
    gateway: GatewayMeta
    record: UsageRecord


@dataclass(slots=True)
class EmbedPlan:
    """A whole embed call, decided: its batches in order and the input tokens the budget holds."""

    route: Route
    ctx: CallContext
    batches: list[EmbedBatch]
    input_tokens: int
    started: float = field(default_factory=time.perf_counter)


def plan_embed(
    route: Route, texts: list[str], *, batch_size: int | None, pooling: str | None, options: GatewayOptions | None,
    ctx: CallContext, info: ModelInfo | None, dimensions: int | None = None,
) -> EmbedPlan:
    """Check the inputs, split them at the model's batch limit, build every request."""
    check_inputs(texts, info, route.model)
    size = batch_size_for(info, batch_size)
    batches = prepare_batches(route, texts, size, pooling=pooling, options=options, ctx=ctx, dimensions=dimensions,
                              info=info)
    return EmbedPlan(route, ctx, batches, embed_token_bound(texts))


def prepare_batches(
    route: Route,
    texts: list[str],
    size: int,
    *,
    pooling: str | None,
    options: GatewayOptions | None,
    ctx: CallContext,
    dimensions: int | None = None,
    info: ModelInfo | None = None,
) -> list[EmbedBatch]:
    if route.embed_url is None:
        raise errors.ConfigError(f"{route.model}: {route.provider} has no embeddings endpoint behind AI Gateway")
    wire = WIRES[route.wire]
    if pooling is not None and route.wire != "workers-ai":
        raise errors.ConfigError(f"{route.model}: pooling is a Workers AI bge option; leave it unset for this route")
    extra = dims_field(route, info, dimensions)
    headers = request_headers(route, options, call_metadata(ctx) if route.via_gateway else None)
    out = []
    for start in range(0, len(texts), size):
        chunk = texts[start : start + size]
        body = wire.build_embed_body(chunk, route.body_model, pooling=pooling if route.wire == "workers-ai" else None,
                                     extra=extra)
        out.append(EmbedBatch(route, start, route.embed_url, headers, body, len(chunk), dims=dimensions,
                              tokens=sum(estimate_tokens(t) for t in chunk)))
    return out


def finish_batch(b: EmbedBatch, headers: Any, content: bytes, ctx: CallContext, catalog: Catalog | None) -> EmbedPart:
    try:
        payload = fast_loads(content)  # orjson when installed: decoding floats is most of a big job's CPU
    except ValueError:
        payload = load_json(content, b.route.model)  # raises the usual MalformedResponseError
    vectors, usage = WIRES[b.route.wire].parse_embed(payload)
    if len(vectors) != b.count:
        raise errors.MalformedResponseError(
            f"{b.route.model}: asked for {b.count} embeddings, got {len(vectors)}", model=b.route.model
        )
    if b.dims is not None and vectors and len(vectors[0]) != b.dims:
        raise errors.MalformedResponseError(
            f"{b.route.model}: asked for {b.dims}-dimensional vectors, got {len(vectors[0])}", model=b.route.model
        )
    gw = gateway_meta(b.route, headers)
    cost = price(b.route, usage, gw, catalog)
    rec = make_record(
        b.route, ctx, operation="embed", usage=usage, latency=time.perf_counter() - b.started, gateway=gw, cost=cost
    )
    return EmbedPart(vectors, usage, gw, rec)


def batch_error(b: EmbedBatch, exc: errors.CloudflareError) -> errors.CloudflareError:
    """Name the input range of a batch the server rejected (the batch's own error stays the cause)."""
    if isinstance(exc, errors.APIError) and exc.status == 400:
        exc.message = f"{exc.message} (inputs {b.index}..{b.index + b.count - 1})"
        exc.args = (exc._render(),)
    return exc


def merge(route: Route, parts: list[EmbedPart], started: float) -> EmbedResponse:
    vectors: list[list[float]] = []
    usage: Usage | None = None
    records = []
    costs = []
    for part in parts:
        vectors.extend(part.vectors)
        if part.usage is not None:
            usage = part.usage if usage is None else usage + part.usage
        records.append(part.record)
        costs.append(part.record.cost)
    total: Decimal | None = None
    if costs and all(c is not None for c in costs):
        total = sum((c for c in costs if c is not None), Decimal(0))
    gw = parts[-1].gateway if parts else GatewayMeta()
    latency = time.perf_counter() - started
    return EmbedResponse(
        vectors=vectors, model=route.model, provider=route.provider, usage=usage, gateway=gw,
        attempts=[AttemptInfo(route.model, "ok", None, latency)], cost=total, records=records,
    )


def progress_bar(enabled: bool, total: int, model: str) -> Callable[[int | None], None]:
    """A progress callback: ``bar(n)`` advances, ``bar(None)`` closes. tqdm is imported only when enabled."""
    if not enabled or total == 0:
        return lambda n: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=f"Embedding ({model})", unit="text")

    def step(n: int | None) -> None:
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return step


async def gather_or_cancel(aws: list[Coroutine[Any, Any, T]]) -> list[T]:
    """``asyncio.gather`` that, when one fails (or the caller is cancelled), cancels the others before
    raising: batches not yet sent are not sent (each one costs money), none is left running."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


__all__ = [
    "EmbedBatch", "EmbedPart", "EmbedPlan", "batch_error", "batch_size_for", "check_inputs", "dims_field",
    "finish_batch", "gather_or_cancel", "merge", "plan_embed", "prepare_batches", "progress_bar",
]
