"""What the call flows need from a client: its books, transport and catalog (one object, no client type)."""

from __future__ import annotations

from dataclasses import dataclass

from cfgateway.calls.books import Books
from cfgateway.costs.catalog import Catalog
from cfgateway.http.pacing import Pacer
from cfgateway.http.transport import Transport
from cfgateway.routing.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class CallParts:
    books: Books
    transport: Transport
    catalog: Catalog
    limiter: RateLimiter | None = None

    def pace(self, model: str) -> Pacer | None:
        """The route's client-side rate limit, or None (no limit: nothing to do)."""
        return self.limiter.pace(model) if self.limiter else None


__all__ = ["CallParts"]
