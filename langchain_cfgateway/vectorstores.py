"""``CloudflareVectorize``: a LangChain ``VectorStore`` over Cloudflare Vectorize v2 (REST).

The text is stored in each vector's metadata under ``text_key`` (default ``"text"``), so a vector carries its
text and metadata within Vectorize's 10 KiB per vector. Writes are upserts of at most 5,000 vectors per request,
sent concurrently while the next texts are embedded; with ``wait=True`` (default) a write returns once it is
readable (Vectorize applies writes asynchronously), so a search right after ``add_documents`` sees them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from pydantic import SecretStr

from cfgateway.vectorize import Match, Mutation, Vector, WaitPolicy
from cfgateway.vectorize.scoring import mmr, relevance
from langchain_cfgateway import _vectorize as h
from langchain_cfgateway._vectorize_admin import VectorizeAdmin


class CloudflareVectorize(VectorizeAdmin, VectorStore):
    """Cloudflare Vectorize as a LangChain vector store.

    >>> from langchain_cfgateway import CloudflareVectorize
    >>> store = CloudflareVectorize("docs")          # bge-base embeddings, CLOUDFLARE_* settings  # doctest: +SKIP
    >>> store.create_index(768, metric="cosine", exist_ok=True)                                        # doctest: +SKIP
    >>> store.add_texts(["a", "b"], metadatas=[{"lang": "en"}, {"lang": "fr"}])                       # doctest: +SKIP
    >>> store.similarity_search("a", k=1, filter={"lang": "en"})                                      # doctest: +SKIP
    """

    def __init__(
        self,
        index_name: str,
        embedding: Embeddings | None = None,
        *,
        account_id: str | None = None,
        api_token: str | SecretStr | None = None,
        base_url: str | None = None,
        namespace: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        max_retries: int | None = None,
        wait_timeout: float | None = None,
        wait_policy: WaitPolicy | None = None,
        text_key: str = "text",
        max_concurrency: int = 4,
        tracker: Any = None,
        config_profile: str | None = None,
        profile: str | None = None,
    ) -> None:
        settings: dict[str, Any] = {"account_id": account_id, "api_token": api_token, "base_url": base_url,
                                    "timeout": timeout, "max_retries": max_retries}
        profile = config_profile or profile
        self.embedding = embedding or h.default_embedding(tracker, profile, **settings)
        tracker = tracker if tracker is not None else getattr(self.embedding, "tracker", None)
        if wait_timeout is not None:
            wait_policy = replace(wait_policy or WaitPolicy(), timeout=wait_timeout)
        self.index = h.connect(index_name, namespace=namespace, tracker=tracker, wait_policy=wait_policy,
                               max_concurrency=max_concurrency, config_profile=profile, **settings)
        self.index_name = self.index.name
        self.namespace = self.index.namespace
        self.wait = wait
        self.text_key = h.check_text_key(text_key)
        self.last_mutations: list[Mutation] = []

    def __repr__(self) -> str:
        return f"CloudflareVectorize(index_name={self.index_name!r}, namespace={self.namespace!r}, wait={self.wait})"

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    # -- writing -------------------------------------------------------------------------------------------
    def _sync_batches(self, texts: Sequence[str], ids: list[str], stored: list[dict[str, Any]],
                      namespace: str | None) -> Iterator[list[Vector]]:
        for a, b in h.chunks(len(texts)):  # embedded lazily: chunk n+1 embeds while chunk n uploads
            yield h.vectors(ids[a:b], self.embedding.embed_documents(list(texts[a:b])), stored[a:b], namespace)

    async def _async_batches(self, texts: Sequence[str], ids: list[str], stored: list[dict[str, Any]],
                             namespace: str | None) -> AsyncIterator[list[Vector]]:
        for a, b in h.chunks(len(texts)):
            values = await self.embedding.aembed_documents(list(texts[a:b]))
            yield h.vectors(ids[a:b], values, stored[a:b], namespace)

    def add_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
                  ids: list[str] | None = None, namespace: str | None = None, **kwargs: Any) -> list[str]:
        """Embed and upsert ``texts``; returns their ids (given, or generated uuid4 strings). An id that exists is
        replaced (values, text and metadata)."""
        h.refuse_kwargs(kwargs, "add_texts")
        texts = list(texts)
        if not texts:
            return []
        out_ids, stored = h.rows(texts, metadatas, ids, self.text_key)
        batches = self._sync_batches(texts, out_ids, stored, namespace)
        self.last_mutations = self.index.write_batches("upsert", batches, wait=self.wait)
        return out_ids

    async def aadd_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
                         ids: list[str] | None = None, namespace: str | None = None, **kwargs: Any) -> list[str]:
        h.refuse_kwargs(kwargs, "aadd_texts")
        texts = list(texts)
        if not texts:
            return []
        out_ids, stored = h.rows(texts, metadatas, ids, self.text_key)
        batches = self._async_batches(texts, out_ids, stored, namespace)
        self.last_mutations = await self.index.awrite_batches("upsert", batches, wait=self.wait)
        return out_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id (missing ids are fine). ``ids=None`` deletes every vector only with ``delete_all=True``
        (Vectorize has no "delete all": the ids are listed and deleted; with a namespace, only that namespace's)."""
        if ids is None:
            if not kwargs.pop("delete_all", False):
                raise ValueError("delete() needs ids; to delete every vector pass delete_all=True (or delete_index())")
            ids = self._all_ids()
        h.refuse_kwargs(kwargs, "delete")
        self.last_mutations = self.index.delete_by_ids(list(ids), wait=self.wait)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids is None:
            if not kwargs.pop("delete_all", False):
                raise ValueError("adelete() needs ids; to delete every vector pass delete_all=True")
            ids = await self._aall_ids()
        h.refuse_kwargs(kwargs, "adelete")
        self.last_mutations = await self.index.adelete_by_ids(list(ids), wait=self.wait)
        return True

    def wait_for_mutations(self, mutations: Sequence[Mutation] | None = None) -> None:
        """Wait for writes made with ``wait=False`` (default: the last write's mutations)."""
        self.index.wait_for(self.last_mutations if mutations is None else mutations)

    async def await_for_mutations(self, mutations: Sequence[Mutation] | None = None) -> None:
        await self.index.await_for(self.last_mutations if mutations is None else mutations)

    # -- reading -------------------------------------------------------------------------------------------
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents in the order of ``ids``; ids that do not exist are left out."""
        return [h.to_document(v, self.text_key) for v in self.index.get_by_ids(list(ids))]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [h.to_document(v, self.text_key) for v in await self.index.aget_by_ids(list(ids))]

    def _pairs(self, matches: list[Match]) -> list[tuple[Document, float]]:
        return [(h.to_document(m, self.text_key), m.score) for m in matches]

    def similarity_search_by_vector_with_score(self, embedding: list[float], k: int = 4,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        """``(document, score)`` pairs, closest first; the score is Vectorize's (cosine similarity, or euclidean
        distance / negative dot product where lower is closer). ``filter``: Vectorize or LangChain-style dict."""
        h.check_search_kwargs(kwargs, "similarity search")
        return self._pairs(self.index.query(embedding, top_k=k, return_metadata="all", **kwargs))

    async def asimilarity_search_by_vector_with_score(self, embedding: list[float], k: int = 4,
                                                      **kwargs: Any) -> list[tuple[Document, float]]:
        h.check_search_kwargs(kwargs, "similarity search")
        return self._pairs(await self.index.aquery(embedding, top_k=k, return_metadata="all", **kwargs))

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        return self.similarity_search_by_vector_with_score(self.embedding.embed_query(query), k, **kwargs)

    async def asimilarity_search_with_score(self, query: str, k: int = 4,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        vector = await self.embedding.aembed_query(query)
        return await self.asimilarity_search_by_vector_with_score(vector, k, **kwargs)

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_by_vector_with_score(embedding, k, **kwargs)]

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in await self.asimilarity_search_by_vector_with_score(embedding, k, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        metric = self.index.config().metric
        return lambda score: relevance(metric, score)

    async def _asimilarity_search_with_relevance_scores(self, query: str, k: int = 4,
                                                        **kwargs: Any) -> list[tuple[Document, float]]:
        metric = (await self.index.aconfig()).metric
        pairs = await self.asimilarity_search_with_score(query, k, **kwargs)
        return [(d, relevance(metric, s)) for d, s in pairs]

    # -- maximal marginal relevance ------------------------------------------------------------------------
    def _mmr(self, embedding: list[float], matches: list[Match], k: int, lambda_mult: float) -> list[Document]:
        picks = mmr(embedding, [m.values or [] for m in matches], k, lambda_mult)
        return [h.to_document(matches[i], self.text_key) for i in picks]

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, **kwargs: Any) -> list[Document]:
        """``fetch_k`` candidates (up to 100; over 50 their values come from a second read), then ``k`` of them
        by maximal marginal relevance (computed here, in pure Python)."""
        h.check_search_kwargs(kwargs, "max_marginal_relevance_search")
        found = self.index.query(embedding, top_k=max(fetch_k, k), return_values=True, return_metadata="all",
                                 **kwargs)
        return self._mmr(embedding, found, k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                       lambda_mult: float = 0.5, **kwargs: Any) -> list[Document]:
        h.check_search_kwargs(kwargs, "max_marginal_relevance_search")
        found = await self.index.aquery(embedding, top_k=max(fetch_k, k), return_values=True,
                                        return_metadata="all", **kwargs)
        return self._mmr(embedding, found, k, lambda_mult)

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      **kwargs: Any) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(self.embedding.embed_query(query), k, fetch_k,
                                                            lambda_mult, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, **kwargs: Any) -> list[Document]:
        vector = await self.embedding.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, **kwargs)

    # -- constructors --------------------------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict[str, Any]] | None = None, *,
                   ids: list[str] | None = None, index_name: str | None = None, metric: str = "cosine",
                   **kwargs: Any) -> CloudflareVectorize:
        """A store on ``index_name`` holding ``texts``; the index is created (dimensions from the embeddings,
        ``metric``) when it does not exist."""
        if not index_name:
            raise ValueError("from_texts needs index_name= (the Vectorize index to use or create)")
        store = cls(index_name, embedding, **kwargs)
        store._ensure_index(len(embedding.embed_query(texts[0])) if texts else None, metric)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict[str, Any]] | None = None,
                          *, ids: list[str] | None = None, index_name: str | None = None, metric: str = "cosine",
                          **kwargs: Any) -> CloudflareVectorize:
        if not index_name:
            raise ValueError("afrom_texts needs index_name= (the Vectorize index to use or create)")
        store = cls(index_name, embedding, **kwargs)
        dims = len(await embedding.aembed_query(texts[0])) if texts else None
        await store._aensure_index(dims, metric)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store


__all__ = ["CloudflareVectorize"]
