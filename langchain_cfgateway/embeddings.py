"""``CloudflareEmbeddings``: LangChain embeddings over cfgateway's core client.

Batches at the model's limit (from the catalog: 100 for bge, 32 for qwen3-embedding, 2048 for
OpenAI), runs up to ``max_concurrency`` batches at once (threads for sync, tasks for async),
keeps the input order, and rejects empty or oversized inputs before sending, naming the index.
Each call's usage records are counted by an enclosing ``get_cloudflare_callback()`` block.

``cache=`` (a URL or a :class:`cfgateway.cache.EmbeddingCache`; default: the ``embed_cache`` setting) sends
only the texts the cache lacks; the cache keys by the answering route's model string, the dimensions and
the pooling. To use LangChain's own ``CacheBackedEmbeddings`` instead, name its namespace with
:meth:`CloudflareEmbeddings.cache_namespace` (a ``LocalFileStore`` refuses the ``@`` of ``@cf/...``); see
docs/embedding-cache.md.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from langchain_core.embeddings import Embeddings
from pydantic import AliasChoices, ConfigDict, Field, model_validator

from langchain_cfgateway._connection import CloudflareConnection, refuse_unknown
from langchain_cfgateway._errors import as_langchain
from langchain_cfgateway.callbacks import report_embeddings

DEFAULT_EMBEDDING_MODEL = "@cf/baai/bge-base-en-v1.5"


class CloudflareEmbeddings(CloudflareConnection, Embeddings):
    """Embeddings from Workers AI (``@cf/baai/bge-*``, ``@cf/qwen/qwen3-embedding-0.6b``, ...) or an
    OpenAI-wire provider behind AI Gateway (``openai/text-embedding-3-small``,
    ``custom-deepinfra/Qwen/Qwen3-Embedding-8B``).

    >>> from langchain_cfgateway import CloudflareEmbeddings
    >>> emb = CloudflareEmbeddings()                      # bge-base, settings from CLOUDFLARE_*  # doctest: +SKIP
    >>> emb.embed_documents(["a", "b"])                                                        # doctest: +SKIP
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=())

    model: str = Field(default=DEFAULT_EMBEDDING_MODEL, validation_alias=AliasChoices("model", "model_name"))
    batch_size: int | None = Field(default=None, ge=1)
    """Texts per request; default: the model's limit from the catalog."""
    max_concurrency: int = Field(default=8, ge=1)
    """Batches in flight at once."""
    pooling: Literal["mean", "cls"] | None = None
    """bge models only: ``"cls"`` is more accurate on long inputs (not compatible with ``"mean"`` vectors)."""
    show_progress_bar: bool = False
    """A tqdm bar over texts embedded (tqdm is imported only when this is on)."""
    dimensions: int | None = Field(default=None, ge=1)
    """Vector size to ask for (``CFGATEWAY_EMBED_DIMENSIONS``, config key ``embed_dimensions``): sent where the
    route shortens vectors on request (OpenAI text-embedding-3, Qwen3-Embedding), refused before sending
    elsewhere; fallbacks must serve the same size."""

    cache: Any = Field(default=None, exclude=True, repr=False)
    """An embedding cache: a URL (``memory://``, ``sqlite:///embeddings.db``, ``redis://host:6379/0``) or a
    :class:`cfgateway.cache.EmbeddingCache`; ``None``: the ``embed_cache`` setting (``CFGATEWAY_EMBED_CACHE``),
    if any; ``False``: no cache. Only the texts it lacks are sent; never serialised."""

    _ALIASES: ClassVar[dict[str, str]] = {"profile": "config_profile"}

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown(cls, data: Any) -> Any:
        return refuse_unknown(cls, data, aliases=cls._ALIASES)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if self.cache is not None:
            from cfgateway.cache import resolve_embed_cache

            resolve_embed_cache(self.cache)  # a bad URL or object raises ConfigError now, not on the first call

    def _client_options(self) -> dict[str, Any]:
        return {} if self.cache is None else {"embed_cache": self.cache}

    def cache_namespace(self) -> str:
        """A key-safe namespace for LangChain's ``CacheBackedEmbeddings`` over these vectors (model, dimensions,
        pooling): letters, digits, ``-``, ``_`` and ``.`` only, so a ``LocalFileStore`` takes it."""
        from cfgateway.cache import namespace

        return namespace(self.model, self.dimensions, self.pooling)

    def _options(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "max_concurrency": self.max_concurrency,
            "progress": self.show_progress_bar,
            "pooling": self.pooling,
        }

    def _embed(self, texts: list[str]) -> list[list[float]]:
        try:
            resp = self._client().embed(texts, **self._options())
        except Exception as exc:
            report_embeddings(getattr(exc, "records", None) or [])
            as_langchain(exc)
            raise
        report_embeddings(resp.records)
        return resp.vectors

    async def _aembed(self, texts: list[str]) -> list[list[float]]:
        try:
            resp = await self._client().aembed(texts, **self._options())
        except Exception as exc:
            report_embeddings(getattr(exc, "records", None) or [])
            as_langchain(exc)
            raise
        report_embeddings(resp.records)
        return resp.vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order. ``[]`` for ``[]``."""
        if isinstance(texts, list) and not texts:
            return []
        return self._embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if isinstance(texts, list) and not texts:
            return []
        return await self._aembed(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._aembed([text]))[0]


__all__ = ["CloudflareEmbeddings"]
