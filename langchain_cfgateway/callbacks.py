"""Cost tracking for LangChain: :class:`CloudflareCostCallbackHandler` and :func:`get_cloudflare_callback`.

>>> from langchain_cfgateway import ChatCloudflare, get_cloudflare_callback
>>> with get_cloudflare_callback() as cb:          # doctest: +SKIP
...     ChatCloudflare().invoke("Hello")
...     print(cb.total_cost, cb.by_model)

For :class:`~langchain_cfgateway.ChatCloudflare` the handler adds the exact usage records the core
client priced (``response_metadata["cfgateway_records"]``: every attempt, fallbacks included, a
gateway cache HIT at $0). Any other chat model that reports ``usage_metadata`` (``ChatOpenAI``,
``ChatAnthropic``, ...) is priced from cfgateway's catalog by its model name (``gpt-4o-mini`` ->
``openai/gpt-4o-mini``). A model without a price is never counted as $0: it is counted in
``unpriced_calls``, its ``by_model`` cost is ``None``, and a warning is logged once per model.
Streams are counted once, when they end. Embeddings made with
:class:`~langchain_cfgateway.CloudflareEmbeddings` inside the block are counted too (LangChain has no
embedding callbacks: the embeddings class reports its records to the block directly).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from cfgateway.costs.tally import CostLine, CostTally, catalog_name

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

    from cfgateway.costs.catalog import Catalog

# The catalog, ledger and pricing modules (and LangChain's tracer context) load on first use, so
# importing this module costs next to nothing. The figures live in cfgateway.costs.tally.CostTally, shared
# with the LlamaIndex handler.


class CloudflareCostCallbackHandler(CostTally, BaseCallbackHandler):
    """Adds up tokens and USD cost (exact ``Decimal``) of every chat-model call it sees; thread-safe.

    Figures (from :class:`cfgateway.costs.tally.CostTally`): ``total_cost``, ``prompt_tokens``,
    ``completion_tokens``, ``total_tokens``, ``cached_tokens``, ``neurons``, ``successful_requests``,
    ``failed_requests``, ``fallbacks``, ``unpriced_calls``, ``by_model``, ``by_provider``.
    """

    run_inline: bool = True
    raise_error: bool = False

    logger = logging.getLogger("langchain_cfgateway.cost")

    def __init__(self, catalog: Catalog | None = None) -> None:
        BaseCallbackHandler.__init__(self)
        CostTally.__init__(self, catalog)
        self._starts: dict[UUID, tuple[str | None, str | None]] = {}

    def __repr__(self) -> str:
        return self.summary()

    def __copy__(self) -> CloudflareCostCallbackHandler:
        return self  # one tally, however LangChain copies its handler lists

    def __deepcopy__(self, memo: Any) -> CloudflareCostCallbackHandler:
        return self

    # -- callbacks ------------------------------------------------------------------------------
    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        meta = metadata or {}
        with self.lock:
            self._starts[run_id] = (meta.get("ls_provider"), meta.get("ls_model_name"))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        from cfgateway.costs.ledger import UsageRecord

        with self.lock:
            provider, model = self._starts.pop(run_id, (None, None))
            for generations in response.generations:
                for gen in generations:
                    message = getattr(gen, "message", None)
                    meta = getattr(message, "response_metadata", None) or {}
                    records = meta.get("cfgateway_records")
                    if isinstance(records, list):
                        self.add_records([UsageRecord.from_dict(r) for r in records], ok=True)
                    else:
                        self._add_foreign(message, meta, provider, model)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        from cfgateway.costs.ledger import UsageRecord

        with self.lock:
            self._starts.pop(run_id, None)
            records = getattr(error, "records", None)
            if isinstance(records, list) and all(isinstance(r, UsageRecord) for r in records):
                self.add_records(list(records), ok=False)
            else:
                self.add_failure()

    def _add_foreign(
        self, message: Any, meta: Mapping[str, Any], provider: str | None, start_model: str | None
    ) -> None:
        name = str(meta.get("model_name") or meta.get("model") or start_model or "unknown")
        usage = getattr(message, "usage_metadata", None)
        tokens = None
        if usage:
            details = usage.get("input_token_details") or {}
            tokens = (int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0),
                      int(details.get("cache_read") or 0))
        self.add_foreign(name, provider, tokens, alt_name=start_model)


_callback_var: ContextVar[CloudflareCostCallbackHandler | None] = ContextVar("cloudflare_cost_callback", default=None)
_hook_lock = threading.Lock()
_hook_registered = False


def _register_hook() -> None:
    """Tell LangChain's callback configuration about the context variable (once, on first use)."""
    global _hook_registered
    if _hook_registered:
        return
    with _hook_lock:
        if not _hook_registered:
            from langchain_core.tracers.context import register_configure_hook

            register_configure_hook(_callback_var, inheritable=True)
            _hook_registered = True


def report_embeddings(records: Sequence[Any]) -> None:
    """Count one embedding call's usage records in the :func:`get_cloudflare_callback` block around it.

    LangChain fires no callbacks for embeddings, so :class:`~langchain_cfgateway.CloudflareEmbeddings`
    reports here after each core call (the block's handler lives in a context variable, which LangChain
    copies into its worker threads and asyncio copies into tasks)."""
    handler = _callback_var.get()
    if handler is not None and records:
        with handler.lock:
            handler.add_embedding_records(records)


@contextmanager
def get_cloudflare_callback() -> Iterator[CloudflareCostCallbackHandler]:
    """Count every chat-model call made inside the ``with`` block (sync, async, streamed, nested
    chains, threads started by LangChain), like ``get_openai_callback``, and every
    :class:`~langchain_cfgateway.CloudflareEmbeddings` call (``embedding_requests``, ``embedding_tokens``,
    ``embedding_cost``; included in ``total_cost`` and ``total_tokens``)."""
    _register_hook()
    handler = CloudflareCostCallbackHandler()
    token = _callback_var.set(handler)
    try:
        yield handler
    finally:
        _callback_var.reset(token)


__all__ = ["CloudflareCostCallbackHandler", "CostLine", "catalog_name", "get_cloudflare_callback"]
