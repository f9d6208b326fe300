"""Index management of :class:`~langchain_cfgateway.vectorstores.CloudflareVectorize` (sync and async)."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from cfgateway.errors import NotFoundError
from cfgateway.vectorize import IndexDescription, IndexInfo, MetadataIndex, Mutation, VectorizeIndex
from cfgateway.vectorize.plans import id_chunks

_MISSING_INDEX = (3000, 3005)


class VectorizeAdmin:
    """``create_index``, ``delete_index``, metadata indexes and ``info`` on the store's index."""

    index: VectorizeIndex
    embedding: Embeddings
    namespace: str | None

    def _probe_dims(self, dimensions: int | None, preset: str | None) -> int | None:
        if dimensions is None and preset is None:
            return len(self.embedding.embed_query("dimensions"))  # one embedding call tells the size
        return dimensions

    def create_index(self, dimensions: int | None = None, *, metric: str | None = None, preset: str | None = None,
                     description: str | None = None, exist_ok: bool = False) -> IndexDescription:
        """Create the store's index from ``dimensions`` (default: the embeddings' size) and ``metric`` (default
        cosine), or from a ``preset``. ``exist_ok``: an existing index with the same configuration is fine."""
        dims = self._probe_dims(dimensions, preset)
        return self.index.create(dims, metric=metric, preset=preset, description=description, exist_ok=exist_ok)

    async def acreate_index(self, dimensions: int | None = None, *, metric: str | None = None,
                            preset: str | None = None, description: str | None = None,
                            exist_ok: bool = False) -> IndexDescription:
        dims = dimensions
        if dimensions is None and preset is None:
            dims = len(await self.embedding.aembed_query("dimensions"))
        return await self.index.acreate(dims, metric=metric, preset=preset, description=description,
                                        exist_ok=exist_ok)

    def delete_index(self) -> None:
        self.index.delete()

    async def adelete_index(self) -> None:
        await self.index.adelete()

    def info(self) -> IndexInfo:
        """Dimensions, vector count and the last processed mutation."""
        return self.index.info()

    async def ainfo(self) -> IndexInfo:
        return await self.index.ainfo()

    def describe(self) -> IndexDescription:
        return self.index.describe()

    async def adescribe(self) -> IndexDescription:
        return await self.index.adescribe()

    def create_metadata_index(self, property_name: str, index_type: str = "string", *,
                              wait: bool = True) -> Mutation:
        """Make a metadata property filterable (``"string"``, ``"number"``, ``"boolean"``). Create it before
        adding documents: vectors written earlier are not in it."""
        return self.index.create_metadata_index(property_name, index_type, wait=wait)

    async def acreate_metadata_index(self, property_name: str, index_type: str = "string", *,
                                     wait: bool = True) -> Mutation:
        return await self.index.acreate_metadata_index(property_name, index_type, wait=wait)

    def list_metadata_indexes(self) -> list[MetadataIndex]:
        return self.index.list_metadata_indexes()

    async def alist_metadata_indexes(self) -> list[MetadataIndex]:
        return await self.index.alist_metadata_indexes()

    def delete_metadata_index(self, property_name: str, *, wait: bool = True) -> Mutation:
        return self.index.delete_metadata_index(property_name, wait=wait)

    async def adelete_metadata_index(self, property_name: str, *, wait: bool = True) -> Mutation:
        return await self.index.adelete_metadata_index(property_name, wait=wait)

    # -- helpers for from_texts and delete_all -----------------------------------------------------------
    def _ensure_index(self, dimensions: int | None, metric: str) -> None:
        try:
            self.index.describe()
        except NotFoundError as exc:
            if exc.code not in _MISSING_INDEX or dimensions is None:
                raise
            self.index.create(dimensions, metric=metric, exist_ok=True)

    async def _aensure_index(self, dimensions: int | None, metric: str) -> None:
        try:
            await self.index.adescribe()
        except NotFoundError as exc:
            if exc.code not in _MISSING_INDEX or dimensions is None:
                raise
            await self.index.acreate(dimensions, metric=metric, exist_ok=True)

    def _all_ids(self) -> list[str]:
        ids = list(self.index.iter_ids())
        if self.namespace is None:
            return ids
        return [v.id for chunk in id_chunks(ids) for v in self.index.get_by_ids(chunk) if v.namespace == self.namespace]

    async def _aall_ids(self) -> list[str]:
        ids = [i async for i in self.index.aiter_ids()]
        if self.namespace is None:
            return ids
        out: list[str] = []
        for chunk in id_chunks(ids):
            out += [v.id for v in await self.index.aget_by_ids(chunk) if v.namespace == self.namespace]
        return out


__all__ = ["VectorizeAdmin"]
