"""``CloudflareVectorizeStore``: a LlamaIndex vector store over Cloudflare Vectorize v2 (REST).

Nodes are stored with their text (``stores_text=True``): LlamaIndex's node JSON and the text go into each vector's
metadata (at most 10 KiB per vector, so keep chunks under ~8,000 characters). ``delete(ref_doc_id)`` finds a
document's nodes through a metadata index on ``ref_doc_id`` (:meth:`CloudflareVectorizeStore.create_index` makes
it); without one it scans the index. Writes return once readable when ``wait=True`` (the default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)

from cfgateway.config import load_settings
from cfgateway.vectorize import IndexDescription, IndexInfo, Match, Vector, VectorizeClient, VectorizeIndex, WaitPolicy
from cfgateway.vectorize.filters import filter_properties
from cfgateway.vectorize.plans import id_chunks
from cfgateway.vectorize.scoring import mmr
from cfgateway.vectorize.validate import check_metadata_key
from llama_index_cfgateway import _vectorize as h

log = logging.getLogger("llama_index_cfgateway.vector_stores")
_FULL_PAGE = 100  # Vectorize's topK limit: a filtered lookup returns at most this many ids per round


class CloudflareVectorizeStore(BasePydanticVectorStore):
    """Cloudflare Vectorize as a LlamaIndex vector store.

    >>> store = CloudflareVectorizeStore(index_name="docs")          # CLOUDFLARE_* settings  # doctest: +SKIP
    >>> store.create_index(768, exist_ok=True)          # + a metadata index on ref_doc_id   # doctest: +SKIP
    >>> index = VectorStoreIndex.from_documents(docs,
    ...     storage_context=StorageContext.from_defaults(vector_store=store))               # doctest: +SKIP
    """

    stores_text: bool = True
    flat_metadata: bool = False
    index_name: str
    namespace: str | None = None
    wait: bool = True
    text_key: str = "text"
    account_id: str | None = None
    api_token: SecretStr | str | None = Field(default=None, exclude=True, repr=False)
    base_url: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    wait_timeout: float | None = None
    max_concurrency: int = 4
    profile: str | None = None
    tracker: Any = Field(default=None, exclude=True, repr=False)
    wait_policy: Any = Field(default=None, exclude=True, repr=False)

    _index: VectorizeIndex = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        settings = load_settings(profile=self.profile, account_id=self.account_id, api_token=self.api_token,
                                 base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries)
        policy = self.wait_policy or WaitPolicy()
        if self.wait_timeout is not None:
            policy = replace(policy, timeout=self.wait_timeout)
        client = VectorizeClient(settings=settings, tracker=self.tracker, wait_policy=policy,
                                 max_concurrency=self.max_concurrency)
        self._index = client.index(self.index_name, namespace=self.namespace)
        check_metadata_key(self.text_key, "text_key")
        if self.api_token is not None and not isinstance(self.api_token, SecretStr):
            self.api_token = SecretStr(self.api_token)

    @classmethod
    def class_name(cls) -> str:
        return "CloudflareVectorizeStore"

    @property
    def client(self) -> VectorizeIndex:
        """The core :class:`cfgateway.vectorize.VectorizeIndex`."""
        return self._index

    # -- index management --------------------------------------------------------------------------------
    def create_index(self, dimensions: int | None = None, *, metric: str | None = None, preset: str | None = None,
                     exist_ok: bool = False, ref_doc_index: bool = True) -> IndexDescription:
        """Create the index, and (``ref_doc_index``) a string metadata index on ``ref_doc_id`` so that
        ``delete(ref_doc_id)`` is a filtered lookup instead of a scan."""
        found = self._index.create(dimensions, metric=metric, preset=preset, exist_ok=exist_ok)
        if ref_doc_index and h.REF_DOC_KEY not in {m.property_name for m in self._index.list_metadata_indexes()}:
            self._index.create_metadata_index(h.REF_DOC_KEY, "string")
        return found

    async def acreate_index(self, dimensions: int | None = None, *, metric: str | None = None,
                            preset: str | None = None, exist_ok: bool = False,
                            ref_doc_index: bool = True) -> IndexDescription:
        found = await self._index.acreate(dimensions, metric=metric, preset=preset, exist_ok=exist_ok)
        listed = await self._index.alist_metadata_indexes()
        if ref_doc_index and h.REF_DOC_KEY not in {m.property_name for m in listed}:
            await self._index.acreate_metadata_index(h.REF_DOC_KEY, "string")
        return found

    def delete_index(self) -> None:
        self._index.delete()

    def info(self) -> IndexInfo:
        return self._index.info()

    # -- add ----------------------------------------------------------------------------------------------
    def _vectors(self, nodes: Sequence[BaseNode]) -> list[Vector]:
        return [h.to_vector(n, self.text_key, self.flat_metadata, self.namespace) for n in nodes]

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Upsert the nodes (with their embeddings) in requests of at most 5,000; returns their ids."""
        vectors = self._vectors(nodes)
        if vectors:
            self._index.write_batches("upsert", [vectors], wait=self.wait)
        return [v.id for v in vectors]

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        vectors = self._vectors(nodes)
        if vectors:
            await self._index.awrite_batches("upsert", [vectors], wait=self.wait)
        return [v.id for v in vectors]

    # -- delete ---------------------------------------------------------------------------------------------
    def _indexed(self, spec: dict[str, Any]) -> bool:
        return set(filter_properties(spec)) <= {m.property_name for m in self._index.list_metadata_indexes()}

    def _scan(self, keep: Callable[[Vector], bool]) -> list[Vector]:
        found = [v for chunk in id_chunks(list(self._index.iter_ids())) for v in self._index.get_by_ids(chunk)]
        return [v for v in found if (self.namespace is None or v.namespace == self.namespace) and keep(v)]

    async def _ascan(self, keep: Callable[[Vector], bool]) -> list[Vector]:
        ids = [i async for i in self._index.aiter_ids()]
        found = [v for chunk in id_chunks(ids) for v in await self._index.aget_by_ids(chunk)]
        return [v for v in found if (self.namespace is None or v.namespace == self.namespace) and keep(v)]

    def _delete_where(self, spec: dict[str, Any], keep: Callable[[Vector], bool]) -> None:
        """Delete what ``spec`` matches: filtered lookups of up to 100 ids while the properties are
        metadata-indexed (each round waits, so the next one sees the rest), else a scan of every id."""
        if not self._indexed(spec):
            log.warning("no metadata index on %s in %r: scanning every vector to delete (create_index() makes one "
                        "on ref_doc_id)", filter_properties(spec), self.index_name)
            self._index.delete_by_ids([v.id for v in self._scan(keep)], wait=self.wait)
            return
        dims = self._index.config().dimensions
        while True:
            found = self._index.query(h.probe(dims), top_k=_FULL_PAGE, filter=spec)
            full = len(found) == _FULL_PAGE
            self._index.delete_by_ids([m.id for m in found], wait=self.wait or full)
            if not full:
                return

    async def _adelete_where(self, spec: dict[str, Any], keep: Callable[[Vector], bool]) -> None:
        listed = {m.property_name for m in await self._index.alist_metadata_indexes()}
        if not set(filter_properties(spec)) <= listed:
            log.warning("no metadata index on %s in %r: scanning every vector to delete", filter_properties(spec),
                        self.index_name)
            await self._index.adelete_by_ids([v.id for v in await self._ascan(keep)], wait=self.wait)
            return
        dims = (await self._index.aconfig()).dimensions
        while True:
            found = await self._index.aquery(h.probe(dims), top_k=_FULL_PAGE, filter=spec)
            full = len(found) == _FULL_PAGE
            await self._index.adelete_by_ids([m.id for m in found], wait=self.wait or full)
            if not full:
                return

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id``."""
        _refuse(delete_kwargs, "delete")
        self._delete_where({h.REF_DOC_KEY: ref_doc_id}, lambda v: (v.metadata or {}).get(h.REF_DOC_KEY) == ref_doc_id)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        _refuse(delete_kwargs, "adelete")
        await self._adelete_where({h.REF_DOC_KEY: ref_doc_id},
                                  lambda v: (v.metadata or {}).get(h.REF_DOC_KEY) == ref_doc_id)

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **delete_kwargs: Any) -> None:
        """Delete by node id, by filters (metadata-indexed properties, else a scan), or both (ids, then the
        filters applied to them here)."""
        _refuse(delete_kwargs, "delete_nodes")
        if node_ids is None and filters is None:
            raise ValueError("delete_nodes needs node_ids or filters (clear() deletes everything)")
        if node_ids is not None:
            chosen = h.local_filter(self._index.get_by_ids(node_ids), filters) if filters else None
            self._index.delete_by_ids(node_ids if chosen is None else [v.id for v in chosen], wait=self.wait)
            return
        self._delete_where(_spec(filters), lambda v: bool(h.local_filter([v], filters)))

    async def adelete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                            **delete_kwargs: Any) -> None:
        _refuse(delete_kwargs, "adelete_nodes")
        if node_ids is None and filters is None:
            raise ValueError("adelete_nodes needs node_ids or filters (aclear() deletes everything)")
        if node_ids is not None:
            chosen = h.local_filter(await self._index.aget_by_ids(node_ids), filters) if filters else None
            await self._index.adelete_by_ids(node_ids if chosen is None else [v.id for v in chosen], wait=self.wait)
            return
        await self._adelete_where(_spec(filters), lambda v: bool(h.local_filter([v], filters)))

    def clear(self) -> None:
        """Delete every vector (of the store's namespace, if it has one)."""
        self._index.delete_by_ids([v.id for v in self._scan(lambda v: True)], wait=self.wait)

    async def aclear(self) -> None:
        await self._index.adelete_by_ids([v.id for v in await self._ascan(lambda v: True)], wait=self.wait)

    # -- read -----------------------------------------------------------------------------------------------
    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Nodes by id (in that order), optionally filtered; with filters only, every vector is scanned."""
        vectors = self._index.get_by_ids(node_ids) if node_ids is not None else self._scan(lambda v: True)
        return [h.to_node(v, self.text_key) for v in h.local_filter(vectors, filters)]

    async def aget_nodes(self, node_ids: list[str] | None = None,
                         filters: MetadataFilters | None = None) -> list[BaseNode]:
        vectors = await self._index.aget_by_ids(node_ids) if node_ids is not None else await self._ascan(
            lambda v: True)
        return [h.to_node(v, self.text_key) for v in h.local_filter(vectors, filters)]

    def _finish(self, query: VectorStoreQuery, vector: list[float], matches: list[Match], metric: str
                ) -> VectorStoreQueryResult:
        if query.mode == VectorStoreQueryMode.MMR:
            lam = query.mmr_threshold if query.mmr_threshold is not None else 0.5
            picks = mmr(vector, [m.values or [] for m in matches], query.similarity_top_k, lam)
            matches = [matches[i] for i in picks]
        return h.result(matches, metric, self.text_key)

    def _fetch_k(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> int:
        unknown = set(kwargs) - {"mmr_prefetch_k"}
        if unknown:
            raise TypeError(f"query got unknown argument(s) {', '.join(sorted(unknown))}; it takes mmr_prefetch_k")
        if query.mode != VectorStoreQueryMode.MMR:
            return query.similarity_top_k
        return int(kwargs.get("mmr_prefetch_k") or min(100, max(20, 4 * query.similarity_top_k)))

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Nearest nodes; ``filters`` and ``doc_ids`` go to Vectorize, ``node_ids`` restrict the search to those
        nodes (read by id and scored here, exactly)."""
        vector, top_k = h.check_query(query), self._fetch_k(query, kwargs)
        metric = self._index.config().metric
        if query.node_ids:
            found = h.local_filter(self._index.get_by_ids(query.node_ids), query.filters)
            found = [v for v in found if not query.doc_ids or (v.metadata or {}).get(h.REF_DOC_KEY) in query.doc_ids]
            return self._finish(query, vector, h.score_locally(metric, vector, found, top_k), metric)
        spec = h.with_doc_ids(h.to_filter(query.filters), query.doc_ids)
        mmr_mode = query.mode == VectorStoreQueryMode.MMR
        matches = self._index.query(vector, top_k=top_k, return_values=mmr_mode, return_metadata="all", filter=spec)
        return self._finish(query, vector, matches, metric)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        vector, top_k = h.check_query(query), self._fetch_k(query, kwargs)
        metric = (await self._index.aconfig()).metric
        if query.node_ids:
            found = h.local_filter(await self._index.aget_by_ids(query.node_ids), query.filters)
            found = [v for v in found if not query.doc_ids or (v.metadata or {}).get(h.REF_DOC_KEY) in query.doc_ids]
            return self._finish(query, vector, h.score_locally(metric, vector, found, top_k), metric)
        spec = h.with_doc_ids(h.to_filter(query.filters), query.doc_ids)
        mmr_mode = query.mode == VectorStoreQueryMode.MMR
        matches = await self._index.aquery(vector, top_k=top_k, return_values=mmr_mode, return_metadata="all",
                                           filter=spec)
        return self._finish(query, vector, matches, metric)


def _refuse(kwargs: dict[str, Any], where: str) -> None:
    if kwargs:
        raise TypeError(f"{where} got unknown argument(s) {', '.join(sorted(kwargs))}")


def _spec(filters: MetadataFilters | None) -> dict[str, Any]:
    spec = h.to_filter(filters)
    if not spec:
        raise ValueError("delete_nodes got filters with no condition: that would delete everything (use clear())")
    return spec


__all__ = ["CloudflareVectorizeStore"]
