"""An embed call through a cache: look every text up, send only the misses, store their vectors, merge in order.

The client gives :func:`embed_cached` (or :func:`aembed_cached`) its cache (wrapped in a :class:`CacheGuard`),
the call's :class:`~cfgateway.cache.base.KeySpace`, and two callbacks: ``send(texts) -> EmbedResponse`` (its
usual plan-and-send path, for the misses only) and ``book(records)`` (its books). Texts repeated in one call
are sent once.

What the caller gets: the vectors in input order, ``cached`` (how many inputs came from the cache), the sent
batches' usage and ``cost`` (Decimal, or None when a sent batch has no price; ``Decimal(0)`` when nothing was
sent), and ``records``: the sent batches' records plus, when anything came from the cache, one record
``operation="embed"``, ``cache_status="HIT"``, ``cost=0``, no tokens, with ``tags["embed_cache_hits"]`` (inputs
answered from the cache) and ``tags["embed_cache_misses"]`` (texts sent). It is booked in the ledger.

A cache that fails (Redis down, a locked or broken SQLite file, an exception from your own cache) never fails
the call: the :class:`CacheGuard` logs a warning on the first failure of an outage, embeds without the cache,
leaves it alone for ``retry_after`` seconds, and logs again (info) when it works again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cfgateway.cache.base import EmbeddingCache, KeySpace, Vector
from cfgateway.routing.routes import Route
from cfgateway.types import AttemptInfo, CallContext, EmbedResponse, GatewayMeta, Usage, UsageRecord

logger = logging.getLogger("cfgateway.cache")

HITS_TAG = "embed_cache_hits"
MISSES_TAG = "embed_cache_misses"
DEFAULT_RETRY_AFTER = 30.0
Send = Callable[[list[str]], EmbedResponse]
ASend = Callable[[list[str]], Awaitable[EmbedResponse]]
Book = Callable[[list[UsageRecord]], None]


class CacheGuard:
    """A cache whose failures never reach the caller: a failed read is all misses, a failed write is skipped."""

    def __init__(self, cache: EmbeddingCache, *, retry_after: float = DEFAULT_RETRY_AFTER) -> None:
        self.cache = cache
        self.blocking = bool(getattr(cache, "blocking", True))  # async clients call a blocking cache in a thread
        self.retry_after = retry_after
        self.failures = 0
        self._down_until: float | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CacheGuard({self.cache!r}, failures={self.failures})"

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        if not keys or not self._usable():
            return [None] * len(keys)
        try:
            found = self.cache.get_many(keys)
            if len(found) != len(keys):
                raise ValueError(f"get_many answered {len(found)} entries for {len(keys)} keys")
            out = [None if v is None else (v if type(v) is list else [float(x) for x in v]) for v in found]
        except Exception as exc:  # a cache never fails the call: logged (once per outage), then all misses
            self._failed(exc, "reading")
            return [None] * len(keys)
        self._worked()
        return out

    def put_many(self, items: Sequence[tuple[str, Vector]]) -> None:
        if not items or not self._usable():
            return
        try:
            self.cache.put_many(items)
        except Exception as exc:  # logged (once per outage); the vectors are still returned to the caller
            self._failed(exc, "writing")
            return
        self._worked()

    def close(self) -> None:
        self.cache.close()

    def _usable(self) -> bool:
        until = self._down_until
        return until is None or time.monotonic() >= until

    def _failed(self, exc: BaseException, doing: str) -> None:
        with self._lock:
            self.failures += 1
            first = self._down_until is None
            self._down_until = time.monotonic() + self.retry_after
        log = logger.warning if first else logger.debug
        log("embedding cache %r failed while %s (%s: %s); embedding without it, trying it again in %.0f s",
            self.cache, doing, type(exc).__name__, exc, self.retry_after)

    def _worked(self) -> None:
        if self._down_until is None:
            return
        with self._lock:
            was_down, self._down_until = self._down_until is not None, None
        if was_down:
            logger.info("embedding cache %r works again", self.cache)


_GUARDS: weakref.WeakKeyDictionary[Any, CacheGuard] = weakref.WeakKeyDictionary()
_GUARDS_LOCK = threading.Lock()


def guard_for(cache: EmbeddingCache | CacheGuard) -> CacheGuard:
    """The one guard of ``cache`` (clients sharing a cache share its outage state: one warning, not one each)."""
    if isinstance(cache, CacheGuard):
        return cache
    with _GUARDS_LOCK:
        try:
            guard = _GUARDS.get(cache)
            if guard is None:
                guard = _GUARDS[cache] = CacheGuard(cache)
        except TypeError:  # not weak-referenceable: a guard of its own
            guard = CacheGuard(cache)
        return guard


@dataclass(slots=True)
class Lookup:
    """One call's lookup: every key, what was found, and the distinct texts still to send."""

    keys: list[str]
    found: list[Vector | None]
    send_keys: list[str]
    send_texts: list[str]
    started: float

    @classmethod
    def of(cls, texts: Sequence[str], keys: list[str], found: list[Vector | None], started: float) -> Lookup:
        send: dict[str, str] = {}
        for k, t, v in zip(keys, texts, found, strict=True):
            if v is None and k not in send:
                send[k] = t
        return cls(keys, found, list(send), list(send.values()), started)

    @property
    def hits(self) -> int:
        return sum(v is not None for v in self.found)

    def new_items(self, vectors: list[Vector]) -> list[tuple[str, Vector]]:
        if len(vectors) != len(self.send_keys):  # the send path checks counts; never store misaligned vectors
            raise ValueError(f"sent {len(self.send_keys)} texts, got {len(vectors)} vectors")
        return list(zip(self.send_keys, vectors, strict=True))

    def merged(self, vectors: list[Vector]) -> list[Vector]:
        fresh = dict(zip(self.send_keys, vectors, strict=True))
        return [v if v is not None else fresh[k] for k, v in zip(self.keys, self.found, strict=True)]

    def finish(self, route: Route, ctx: CallContext, sent: EmbedResponse | None, book: Book) -> EmbedResponse:
        hits, latency = self.hits, time.perf_counter() - self.started
        records: list[Any] = []
        if hits:
            records = [hit_record(route, ctx, hits, len(self.send_texts), latency)]
            book(records)  # the ledger's copy replaces it in place
        if sent is None:
            return EmbedResponse(
                vectors=self.merged([]), model=route.model, provider=route.provider, usage=Usage(),
                gateway=GatewayMeta(), attempts=[AttemptInfo(route.model, "ok", None, latency)], cost=Decimal(0),
                records=records, cached=hits,
            )
        sent.vectors = self.merged(sent.vectors)
        sent.records = [*records, *sent.records]
        sent.cached = hits
        return sent


def hit_record(route: Route, ctx: CallContext, hits: int, misses: int, latency: float) -> UsageRecord:
    """The ledger's line for the inputs answered from the cache: $0, no tokens, no neurons."""
    return UsageRecord(
        ts=time.time(), model=route.model, provider=route.provider, operation="embed", neurons=0.0, cost=Decimal(0),
        latency_s=latency, outcome="ok", attempt=ctx.attempt, fallback=ctx.fallback, cache_status="HIT",
        user=ctx.user, tags={**ctx.metadata, HITS_TAG: hits, MISSES_TAG: misses}, call_id=ctx.call_id,
    )


def is_cache_record(record: UsageRecord) -> bool:
    """A record of inputs answered by the embedding cache (not a request: nothing was sent)."""
    return record.cache_status == "HIT" and HITS_TAG in record.tags


def embed_cached(guard: CacheGuard, space: KeySpace, route: Route, ctx: CallContext, texts: list[str],
                 send: Send, book: Book) -> EmbedResponse:
    started, keys = time.perf_counter(), space.keys(texts)
    lookup = Lookup.of(texts, keys, guard.get_many(keys), started)
    sent = send(lookup.send_texts) if lookup.send_texts else None
    if sent is not None:
        guard.put_many(lookup.new_items(sent.vectors))
    return lookup.finish(route, ctx, sent, book)


async def aembed_cached(guard: CacheGuard, space: KeySpace, route: Route, ctx: CallContext, texts: list[str],
                        send: ASend, book: Book) -> EmbedResponse:
    started, keys = time.perf_counter(), space.keys(texts)
    found = await asyncio.to_thread(guard.get_many, keys) if guard.blocking else guard.get_many(keys)
    lookup = Lookup.of(texts, keys, found, started)
    sent = await send(lookup.send_texts) if lookup.send_texts else None
    if sent is not None:
        items = lookup.new_items(sent.vectors)
        if guard.blocking:
            await asyncio.to_thread(guard.put_many, items)
        else:
            guard.put_many(items)
    return lookup.finish(route, ctx, sent, book)


__all__ = [
    "DEFAULT_RETRY_AFTER", "HITS_TAG", "MISSES_TAG", "CacheGuard", "Lookup", "aembed_cached", "embed_cached",
    "guard_for", "hit_record", "is_cache_record",
]
