"""``CloudflareEmbedding``: a LlamaIndex ``BaseEmbedding`` over cfgateway's core client.

``embed_batch_size`` defaults to the model's per-request limit from the catalog (100 for bge,
32 for qwen3-embedding, 2048 for OpenAI). LlamaIndex cuts the input into batches of that size;
async batches then run concurrently, at most ``max_concurrency`` requests in flight per event
loop (LlamaIndex itself would start them all at once); sync batches are sent ``max_concurrency`` at a time
from threads (LlamaIndex's own loop sends one after another), with one embedding event per batch and the
progress bar kept. Input order is kept; empty or oversized
inputs are refused before sending, naming the index. ``model_name`` is the real model string,
so every batch is priced; the usage records reach a :class:`CloudflareCostHandler` on the
embedding's callback manager. The user id and tags of ``instrument_tags`` (see
:mod:`llama_index_cfgateway._request`) go with every batch, as for the LLM.

``cache=`` (a URL or a :class:`cfgateway.cache.EmbeddingCache`; default: the ``embed_cache`` setting) sends
only the texts the cache lacks, keyed by model, dimensions and pooling (LlamaIndex's own ``embeddings_cache``
keys by the text alone). An ``IngestionPipeline(cache=IngestionCache())`` works too: this class serialises
the same way every time and never includes its cache or tokens; see docs/embedding-cache.md.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar, Literal

import llama_index.core.instrumentation as instrument
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.instrumentation.events.embedding import EmbeddingEndEvent, EmbeddingStartEvent
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from llama_index_cfgateway._connection import CloudflareConnection, refuse_unknown
from llama_index_cfgateway._request import call_context

DEFAULT_EMBEDDING_MODEL = "@cf/baai/bge-base-en-v1.5"
_FALLBACK_BATCH = 100
_MAX_BATCH = 2048  # BaseEmbedding's own upper bound
RECORDS_HOOK = "on_cfgateway_records"  # duck-typed: CloudflareCostHandler implements it
_SEMS_LOCK = threading.Lock()
dispatcher = instrument.get_dispatcher(__name__)


class CloudflareEmbedding(CloudflareConnection, BaseEmbedding):
    """Embeddings from Workers AI (``@cf/baai/bge-*``, ``@cf/baai/bge-m3``,
    ``@cf/qwen/qwen3-embedding-0.6b``, ...) or an OpenAI-wire provider behind AI Gateway
    (``openai/text-embedding-3-small``, ``custom-deepinfra/Qwen/Qwen3-Embedding-8B``).

    >>> from llama_index.core import Settings
    >>> from llama_index_cfgateway import CloudflareEmbedding
    >>> Settings.embed_model = CloudflareEmbedding()   # bge-base, settings from CLOUDFLARE_*  # doctest: +SKIP
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=())

    model_name: str = Field(default=DEFAULT_EMBEDDING_MODEL, description="Model string (@cf/... or provider/model).")
    max_concurrency: int = Field(default=8, ge=1, description="Batch requests in flight at once (async).")
    pooling: Literal["mean", "cls"] | None = Field(
        default=None, description="bge models only: 'cls' is more accurate on long inputs (not mean-compatible)."
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Vector size to ask for (CFGATEWAY_EMBED_DIMENSIONS, config key "
        "embed_dimensions): sent where the route shortens vectors on request (OpenAI text-embedding-3, "
        "Qwen3-Embedding), refused before sending elsewhere; fallbacks must serve the same size.",
    )

    cache: Any = Field(
        default=None, exclude=True, description="An embedding cache: a URL (memory://, sqlite:///embeddings.db, "
        "redis://host:6379/0) or a cfgateway.cache.EmbeddingCache; None: the embed_cache setting "
        "(CFGATEWAY_EMBED_CACHE), if any; False: no cache. Only the texts it lacks are sent; never serialised.",
    )

    _ALIASES: ClassVar[dict[str, str]] = {"model": "model_name", "api_key": "api_token"}
    _TRANSIENT: ClassVar[tuple[str, ...]] = ("_cf_client", "_cf_client_key", "_sems")
    _sems: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown(cls, data: Any) -> Any:
        return refuse_unknown(cls, data, cls._ALIASES)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if self.cache is not None:
            from cfgateway.cache import resolve_embed_cache

            resolve_embed_cache(self.cache)  # a bad URL or object raises ConfigError now, not on the first call
        if "embed_batch_size" not in self.model_fields_set:
            info = self._model_info()
            limit = info.max_batch if info is not None and info.max_batch else _FALLBACK_BATCH
            self.embed_batch_size = min(limit, _MAX_BATCH)

    @classmethod
    def class_name(cls) -> str:
        return "CloudflareEmbedding"

    def _model_string(self) -> str:
        return self.model_name

    def to_payload(self) -> dict[str, Any]:
        return {**super().to_payload(), **self._safe_payload()}

    def _client_options(self) -> dict[str, Any]:
        return {} if self.cache is None else {"embed_cache": self.cache}

    def cache_namespace(self) -> str:
        """A key-safe name for these vectors (model, dimensions, pooling): e.g. an ``IngestionCache`` collection."""
        from cfgateway.cache import namespace

        return namespace(self.model_name, self.dimensions, self.pooling)

    # -- sending ------------------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        # The user id / tags of LlamaIndex's instrument_tags reach gateway logs and cost records.
        return {"max_concurrency": self.max_concurrency, "pooling": self.pooling, "context": call_context()}

    def _report(self, records: list[Any]) -> None:
        """Hand the batch's usage records to cost handlers on this model's callback manager."""
        for handler in getattr(self.callback_manager, "handlers", ()):
            hook = getattr(handler, RECORDS_HOOK, None)
            if hook is not None:
                hook(records, operation="embed")

    def _embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        resp = self._client().embed(texts, **self._options())
        self._report(resp.records)
        return resp.vectors

    def _semaphore(self) -> asyncio.Semaphore:
        """One semaphore per running event loop: the limit spans every batch LlamaIndex starts."""
        loop = asyncio.get_running_loop()
        with _SEMS_LOCK:
            if self._sems is None:
                self._sems = weakref.WeakKeyDictionary()
            sem = self._sems.get(loop)
            if sem is None:
                sem = self._sems[loop] = asyncio.Semaphore(self.max_concurrency)
        return sem  # type: ignore[no-any-return]

    async def _aembed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        async with self._semaphore():
            resp = await self._client().aembed(texts, **self._options())
        self._report(resp.records)
        return resp.vectors

    # -- batches: concurrent, one request and one embedding event per LlamaIndex batch ---------------
    def _check(self, texts: list[str]) -> None:
        """Refuse inputs every route would refuse, naming the index, before any batch is sent."""
        from cfgateway.calls.embed import check_inputs  # deferred: keeps `import` cheap

        client = self._client()
        check_inputs(texts, client.model_info(), client.route().model)

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **kwargs: Any) -> list[Embedding]:
        """LlamaIndex's batch loop, with the batches sent ``max_concurrency`` at a time instead of one after
        another. An embeddings cache or a rate limiter on this model keeps LlamaIndex's own loop."""
        if (self.embeddings_cache is not None or self.rate_limiter is not None or self.max_concurrency <= 1
                or len(texts) <= self.embed_batch_size):
            return super().get_text_embedding_batch(texts, show_progress, **kwargs)
        return self._concurrent_batches(list(texts), show_progress)

    @dispatcher.span
    def _concurrent_batches(self, texts: list[str], show_progress: bool) -> list[Embedding]:
        size = self.embed_batch_size
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        # bad input is refused before anything is sent, naming its index in ``texts`` (~2 ms for 5,000 texts)
        self._check(texts)
        events = self._start_events(len(batches))
        bar = _progress(show_progress, len(texts))
        out: list[Embedding] = []
        done = 0
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(batches))) as pool:
            # each batch's records reach the cost handlers as it is answered: one that fails does not hide
            # the batches answered (and billed) after it
            futures: list[Future[list[Embedding]]] = [pool.submit(self._embed, b) for b in batches]
            try:
                for batch, event_id, fut in zip(batches, events, futures, strict=True):
                    vectors = fut.result()
                    out.extend(vectors)
                    self._end_events([event_id], [(batch, vectors)], None)
                    done += 1
                    if bar is not None:
                        bar.update(len(batch))
            except BaseException as exc:
                for f in futures:  # batches not yet sent are not sent (each one would be billed)
                    f.cancel()
                self._end_events(events[done:], [], exc)
                raise
            finally:
                if bar is not None:
                    bar.close()
        return out

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """LlamaIndex's async batch loop (batches at once, ``max_concurrency`` in flight), with its events built
        without re-validating the vectors. ``num_workers``, a cache or a rate limiter keep LlamaIndex's own."""
        if (self.embeddings_cache is not None or self.rate_limiter is not None or self.num_workers
                or len(texts) <= self.embed_batch_size):
            return await super().aget_text_embedding_batch(texts, show_progress, **kwargs)
        return await self._aconcurrent_batches(list(texts), show_progress)

    @dispatcher.span
    async def _aconcurrent_batches(self, texts: list[str], show_progress: bool) -> list[Embedding]:
        size = self.embed_batch_size
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        self._check(texts)  # bad input: nothing sent
        events = self._start_events(len(batches))
        bar = _progress(show_progress, len(texts))

        async def one(batch: list[str]) -> list[Embedding]:
            vectors = await self._aembed(batch)
            if bar is not None:
                bar.update(len(batch))
            return vectors

        from cfgateway.calls.embed import gather_or_cancel  # deferred: keeps `import` cheap

        try:
            answers = await gather_or_cancel([one(b) for b in batches])  # batches not yet sent are not sent
        except BaseException as exc:
            self._end_events(events, [], exc)
            raise
        finally:
            if bar is not None:
                bar.close()
        self._end_events(events, list(zip(batches, answers, strict=True)), None)
        return [v for vectors in answers for v in vectors]

    def _start_events(self, n: int) -> list[str]:
        model_dict = self.to_payload()
        events = []
        for _ in range(n):  # started together, ended in batch order (as LlamaIndex's async loop)
            dispatcher.event(EmbeddingStartEvent(model_dict=model_dict))
            events.append(self.callback_manager.on_event_start(CBEventType.EMBEDDING,
                                                               payload={EventPayload.SERIALIZED: model_dict}))
        return events

    def _end_events(self, events: list[str], done: list[tuple[list[str], list[Embedding]]],
                    exc: BaseException | None) -> None:
        """End the events of the ``done`` batches with their vectors, the rest with ``exc``."""
        for event_id, (batch, vectors) in zip(events, done, strict=False):
            payload: dict[str, Any] = {EventPayload.CHUNKS: batch, EventPayload.EMBEDDINGS: vectors}
            self.callback_manager.on_event_end(CBEventType.EMBEDDING, payload=payload, event_id=event_id)
            # built, not validated: pydantic re-checking 100 x 768 floats we decoded costs ~1 ms a batch
            dispatcher.event(EmbeddingEndEvent.model_construct(chunks=batch, embeddings=vectors))
        for event_id in events[len(done) :]:
            self.callback_manager.on_event_end(CBEventType.EMBEDDING, payload={EventPayload.EXCEPTION: exc},
                                               event_id=event_id)

    # -- BaseEmbedding hooks ---------------------------------------------------------------------
    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._aembed([query]))[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aembed([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(list(texts))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed(list(texts))


def _progress(enabled: bool, total: int) -> Any:
    """LlamaIndex's progress bar (same description), advanced per batch; tqdm comes with llama-index-core."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Generating embeddings")


__all__ = ["DEFAULT_EMBEDDING_MODEL", "CloudflareEmbedding"]
