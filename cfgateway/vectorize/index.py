"""One Vectorize index: reads, configuration and metadata indexes here; writes in :mod:`~.writes`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from cfgateway.vectorize import plans, wire
from cfgateway.vectorize.costs import monthly_cost
from cfgateway.vectorize.port import IndexClient
from cfgateway.vectorize.types import IndexConfig, IndexDescription, IndexInfo, Match, MetadataIndex, Mutation, Vector
from cfgateway.vectorize.validate import (
    check_index_name,
    check_list_count,
    check_metadata_type,
    check_namespace,
    check_property,
)
from cfgateway.vectorize.waiting import UNKNOWN
from cfgateway.vectorize.writes import IndexWrites

_DEFAULT: Any = object()  # "the handle's namespace"


class VectorizeIndex(IndexWrites):
    """A handle on one index of a :class:`~cfgateway.vectorize.VectorizeClient` (sync and async methods).

    Writes (:meth:`upsert`, :meth:`insert`, :meth:`delete_by_ids`) return :class:`Mutation` objects and, with
    ``wait=True``, return once the writes are readable. The configuration (dimensions, metric) is read once
    (:meth:`config`) and kept: it cannot change after creation.
    """

    def __init__(self, client: IndexClient, name: str, *, namespace: str | None = None) -> None:
        self.client = client
        self.name = check_index_name(name)
        self.namespace = check_namespace(namespace)
        self._config: IndexConfig | None = None

    def __repr__(self) -> str:
        return f"VectorizeIndex(name={self.name!r}, namespace={self.namespace!r})"

    # -- the index itself ------------------------------------------------------------------------------------
    def _keep(self, found: IndexDescription) -> IndexDescription:
        self._config = found.config
        return found

    def create(self, dimensions: int | None = None, *, metric: str | None = None, preset: str | None = None,
               description: str | None = None, exist_ok: bool = False) -> IndexDescription:
        return self._keep(self.client.create_index(self.name, dimensions=dimensions, metric=metric, preset=preset,
                                                   description=description, exist_ok=exist_ok))

    async def acreate(self, dimensions: int | None = None, *, metric: str | None = None, preset: str | None = None,
                      description: str | None = None, exist_ok: bool = False) -> IndexDescription:
        return self._keep(await self.client.acreate_index(self.name, dimensions=dimensions, metric=metric,
                                                          preset=preset, description=description, exist_ok=exist_ok))

    def delete(self) -> None:
        """Delete the whole index (its name can be used again afterwards)."""
        self._config = None
        self.client.delete_index(self.name)

    async def adelete(self) -> None:
        self._config = None
        await self.client.adelete_index(self.name)

    def describe(self) -> IndexDescription:
        return self._keep(self.client.send(wire.describe(self.name)))

    async def adescribe(self) -> IndexDescription:
        return self._keep(await self.client.asend(wire.describe(self.name)))

    def config(self) -> IndexConfig:
        """Dimensions and metric (read once; the metric a ``preset`` picks is read back, not assumed)."""
        return self._config or self.describe().config

    async def aconfig(self) -> IndexConfig:
        return self._config or (await self.adescribe()).config

    def info(self) -> IndexInfo:
        return self.client.send(wire.info(self.name))  # type: ignore[no-any-return]

    async def ainfo(self) -> IndexInfo:
        return await self.client.asend(wire.info(self.name))  # type: ignore[no-any-return]

    def monthly_cost(self, info: IndexInfo | None = None) -> Decimal | None:
        """List price of storing the index's vectors for a month (``None`` when unpriced)."""
        info = info or self.info()
        return monthly_cost(info.vector_count, info.dimensions, self.client.catalog.vectorize)

    # -- reads -----------------------------------------------------------------------------------------------
    def _known_dims(self) -> int | None:
        return self._config.dimensions if self._config is not None else None

    def _query_call(self, vector: Sequence[float] | None, vector_id: str | None, top_k: int, return_values: bool,
                    return_metadata: Any, filter: Mapping[str, Any] | None, namespace: Any, dims: int | None
                    ) -> tuple[wire.Call, bool, str]:
        mode = plans.return_metadata_mode(return_metadata)
        ns = self.namespace if namespace is _DEFAULT else namespace
        body, fetch = plans.query_body(vector=vector, vector_id=vector_id, top_k=top_k, return_values=return_values,
                                       return_metadata=mode, filter=filter, namespace=ns, dimensions=dims)
        billed = len(body["vector"]) if "vector" in body else (dims or 0)
        return wire.query(self.name, body, billed), fetch, mode

    def query(self, vector: Sequence[float] | None = None, *, vector_id: str | None = None, top_k: int = 5,
              return_values: bool = False, return_metadata: Any = "none", filter: Mapping[str, Any] | None = None,
              namespace: Any = _DEFAULT) -> list[Match]:
        """Nearest vectors, closest first. ``top_k`` up to 100, also with values or ``return_metadata="all"``
        (over 50 the values/metadata come from a second read). ``filter``: Vectorize or LangChain-style syntax.
        An empty answer to a filter on a property without a metadata index raises a clear error."""
        dims = self.config().dimensions if vector_id is not None else self._known_dims()
        call, fetch, mode = self._query_call(vector, vector_id, top_k, return_values, return_metadata, filter,
                                             namespace, dims)
        matches: list[Match] = self.client.send(call)
        if fetch and matches:
            matches = plans.fill(matches, self._raw_vectors([m.id for m in matches]), return_values, mode)
        if not matches and filter:
            missing = plans.unindexed(filter, self.list_metadata_indexes())
            if missing:
                raise plans.unindexed_error(self.name, missing)
        return matches

    async def aquery(self, vector: Sequence[float] | None = None, *, vector_id: str | None = None, top_k: int = 5,
                     return_values: bool = False, return_metadata: Any = "none",
                     filter: Mapping[str, Any] | None = None, namespace: Any = _DEFAULT) -> list[Match]:
        dims = (await self.aconfig()).dimensions if vector_id is not None else self._known_dims()
        call, fetch, mode = self._query_call(vector, vector_id, top_k, return_values, return_metadata, filter,
                                             namespace, dims)
        matches: list[Match] = await self.client.asend(call)
        if fetch and matches:
            matches = plans.fill(matches, await self._araw_vectors([m.id for m in matches]), return_values, mode)
        if not matches and filter:
            missing = plans.unindexed(filter, await self.alist_metadata_indexes())
            if missing:
                raise plans.unindexed_error(self.name, missing)
        return matches

    def get_by_ids(self, ids: Sequence[str]) -> list[Vector]:
        """The stored vectors, in the order of ``ids``; ids that do not exist are left out."""
        wanted = plans.check_unique_ids(ids)
        return plans.ordered(wanted, self._raw_vectors(wanted), self.namespace)

    async def aget_by_ids(self, ids: Sequence[str]) -> list[Vector]:
        wanted = plans.check_unique_ids(ids)
        return plans.ordered(wanted, await self._araw_vectors(wanted), self.namespace)

    def list_ids(self, count: int = 100, cursor: str | None = None) -> Any:
        """One page of ids (:class:`VectorIds`); pass its ``next_cursor`` for the next page."""
        return self.client.send(wire.list_vectors(self.name, check_list_count(count), cursor))

    async def alist_ids(self, count: int = 100, cursor: str | None = None) -> Any:
        return await self.client.asend(wire.list_vectors(self.name, check_list_count(count), cursor))

    def iter_ids(self, page: int = 1000) -> Iterator[str]:
        """Every id in the index, page by page (from a snapshot taken at the first page)."""
        cursor = None
        while True:
            got = self.list_ids(page, cursor)
            yield from got.ids
            if not got.truncated or not got.next_cursor:
                return
            cursor = got.next_cursor

    async def aiter_ids(self, page: int = 1000) -> AsyncIterator[str]:
        cursor = None
        while True:
            got = await self.alist_ids(page, cursor)
            for i in got.ids:
                yield i
            if not got.truncated or not got.next_cursor:
                return
            cursor = got.next_cursor

    # -- metadata indexes ------------------------------------------------------------------------------------
    def create_metadata_index(self, property_name: str, index_type: str, *, wait: bool = True,
                              timeout: float | None = None) -> Mutation:
        """Make ``property_name`` filterable (``"string"``, ``"number"`` or ``"boolean"``). Only vectors written
        after it exists are in it: write older vectors again to index them."""
        call = wire.create_metadata_index(self.name, check_property(property_name), check_metadata_type(index_type))
        before = self.info().processed_up_to_mutation if wait else UNKNOWN
        m = plans.index_mutation("metadata_index_create", self.name, self.client.send(call), property_name)
        if wait:
            self._wait([m], timeout, before)
        return m

    async def acreate_metadata_index(self, property_name: str, index_type: str, *, wait: bool = True,
                                     timeout: float | None = None) -> Mutation:
        call = wire.create_metadata_index(self.name, check_property(property_name), check_metadata_type(index_type))
        before = (await self.ainfo()).processed_up_to_mutation if wait else UNKNOWN
        m = plans.index_mutation("metadata_index_create", self.name, await self.client.asend(call), property_name)
        if wait:
            await self._await([m], timeout, before)
        return m

    def delete_metadata_index(self, property_name: str, *, wait: bool = True, timeout: float | None = None
                              ) -> Mutation:
        call = wire.delete_metadata_index(self.name, check_property(property_name))
        before = self.info().processed_up_to_mutation if wait else UNKNOWN
        m = plans.index_mutation("metadata_index_delete", self.name, self.client.send(call), property_name)
        if wait:
            self._wait([m], timeout, before)
        return m

    async def adelete_metadata_index(self, property_name: str, *, wait: bool = True, timeout: float | None = None
                                     ) -> Mutation:
        call = wire.delete_metadata_index(self.name, check_property(property_name))
        before = (await self.ainfo()).processed_up_to_mutation if wait else UNKNOWN
        m = plans.index_mutation("metadata_index_delete", self.name, await self.client.asend(call), property_name)
        if wait:
            await self._await([m], timeout, before)
        return m

    def list_metadata_indexes(self) -> list[MetadataIndex]:
        return self.client.send(wire.list_metadata_indexes(self.name))  # type: ignore[no-any-return]

    async def alist_metadata_indexes(self) -> list[MetadataIndex]:
        return await self.client.asend(wire.list_metadata_indexes(self.name))  # type: ignore[no-any-return]


__all__ = ["VectorizeIndex"]
