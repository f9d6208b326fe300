"""What the call flows need from a client: its books, transport and catalog (one object, no client type)."""

from __future__ import annotations

from dataclasses import dataclass

from cfgateway.calls.books import Books
from cfgateway.costs.catalog import Catalog
from cfgateway.http.transport import Transport


@dataclass(frozen=True, slots=True)
class CallParts:
    books: Books
    transport: Transport
    catalog: Catalog


__all__ = ["CallParts"]
