"""What an index (:class:`~cfgateway.vectorize.VectorizeIndex`) needs of its client: a structural type, so the
index modules depend on this, not on :mod:`cfgateway.vectorize.client` (which builds indexes)."""

from __future__ import annotations

from typing import Any, Protocol

from cfgateway.costs.catalog import Catalog
from cfgateway.vectorize import wire
from cfgateway.vectorize.types import IndexDescription
from cfgateway.vectorize.waiting import WaitPolicy


class IndexClient(Protocol):
    catalog: Catalog
    wait_policy: WaitPolicy
    max_concurrency: int

    def send(self, call: wire.Call) -> Any: ...

    async def asend(self, call: wire.Call) -> Any: ...

    def create_index(self, name: str, *, dimensions: int | None = None, metric: str | None = None,
                     preset: str | None = None, description: str | None = None,
                     exist_ok: bool = False) -> IndexDescription: ...

    async def acreate_index(self, name: str, *, dimensions: int | None = None, metric: str | None = None,
                            preset: str | None = None, description: str | None = None,
                            exist_ok: bool = False) -> IndexDescription: ...

    def delete_index(self, name: str) -> None: ...

    async def adelete_index(self, name: str) -> None: ...


__all__ = ["IndexClient"]
