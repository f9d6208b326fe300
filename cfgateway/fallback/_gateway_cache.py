"""The embedding cache in gateway mode: one Universal Endpoint call for every route, vectors kept per model.

The texts are looked up in the first route's key space (the route that answers unless it fails); only the
missing ones are sent. Vectors are stored under the model that really answered. When a fallback answered and
some texts had come from the cache, those cached vectors belong to another model and cannot be mixed in:
the whole call is sent again without the cache, so one call's vectors always come from one model (the
answers of the first send are billed and booked, and kept in the cache under their own model).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cfgateway.cache.base import KeySpace
from cfgateway.cache.flow import CacheGuard, Lookup
from cfgateway.client import Client
from cfgateway.types import CallContext, EmbedResponse

Send = Callable[[list[str]], EmbedResponse]
ASend = Callable[[list[str]], Awaitable[EmbedResponse]]
Member = Callable[[str], Client]


class GatewayCache:
    """One gateway-mode embed call's cache: ``member(model)`` gives the chain's client of a route (its cache,
    key space and books)."""

    def __init__(self, member: Member, first: str, texts: list[str], ctx: CallContext, pooling: str | None,
                 dimensions: int | None) -> None:
        self.member, self.texts, self.ctx = member, texts, ctx
        self.pooling, self.dimensions = pooling, dimensions
        self.first = member(first)
        self.found = self.first.cache_for(None, texts, None, pooling, dimensions)

    @property
    def active(self) -> bool:
        return self.found is not None

    def space_of(self, model: str) -> KeySpace:
        client = self.member(model)
        return client.key_space(client.route(), self.pooling, self.dimensions)

    def _parts(self) -> tuple[CacheGuard, KeySpace, Any]:
        assert self.found is not None
        return self.found

    def lookup(self) -> Lookup:
        guard, space, _ = self._parts()
        keys = space.keys(self.texts)
        return Lookup.of(self.texts, keys, guard.get_many(keys), time.perf_counter())

    def items(self, model: str, texts: list[str], vectors: list[Any]) -> list[tuple[str, Any]]:
        return list(zip(self.space_of(model).keys(texts), vectors, strict=True))

    def outcome(self, lookup: Lookup, sent: EmbedResponse) -> EmbedResponse | None:
        """The answer when ``sent`` (the missing texts) can be merged with the hits; None when it cannot (a
        fallback answered and there were hits): the call must be sent again whole."""
        route = self._parts()[2]
        if sent.model == route.model:
            return lookup.finish(route, self.ctx, sent, self.first.book_hits)
        if not lookup.hits:  # nothing cached: the fallback's answer stands; repeated texts were sent once
            sent.vectors = lookup.merged(sent.vectors)
            return sent
        return None

    @staticmethod
    def combined(sent: EmbedResponse, again: EmbedResponse) -> EmbedResponse:
        """``again`` (the whole call) carrying the first send's records and cost too: both were billed."""
        again.records = [*sent.records, *again.records]
        again.cost = None if sent.cost is None or again.cost is None else sent.cost + again.cost
        return again

    def run(self, send: Send) -> EmbedResponse:
        guard, _, route = self._parts()
        lookup = self.lookup()
        if not lookup.send_texts:
            return lookup.finish(route, self.ctx, None, self.first.book_hits)
        sent = send(lookup.send_texts)
        guard.put_many(self.items(sent.model, lookup.send_texts, sent.vectors))
        done = self.outcome(lookup, sent)
        if done is not None:
            return done
        again = send(self.texts)
        guard.put_many(self.items(again.model, self.texts, again.vectors))
        return self.combined(sent, again)

    async def arun(self, send: ASend) -> EmbedResponse:
        guard, _, route = self._parts()
        lookup = await asyncio.to_thread(self.lookup) if guard.blocking else self.lookup()
        if not lookup.send_texts:
            return lookup.finish(route, self.ctx, None, self.first.book_hits)
        sent = await send(lookup.send_texts)
        await self._aput(guard, self.items(sent.model, lookup.send_texts, sent.vectors))
        done = self.outcome(lookup, sent)
        if done is not None:
            return done
        again = await send(self.texts)
        await self._aput(guard, self.items(again.model, self.texts, again.vectors))
        return self.combined(sent, again)

    @staticmethod
    async def _aput(guard: CacheGuard, items: list[tuple[str, Any]]) -> None:
        if guard.blocking:
            await asyncio.to_thread(guard.put_many, items)
        else:
            guard.put_many(items)


__all__ = ["GatewayCache"]
