"""Cost tracking for LlamaIndex: :class:`CloudflareCostHandler`, a callback handler.

>>> from llama_index.core import Settings
>>> from llama_index.core.callbacks import CallbackManager
>>> from llama_index_cfgateway import CloudflareCostHandler
>>> cost = CloudflareCostHandler()
>>> Settings.callback_manager = CallbackManager([cost])     # every LLM and embedding call
>>> # ... query engines, chat engines, agents ...
>>> print(cost.total_cost, cost.by_model)                      # doctest: +SKIP

For :class:`~llama_index_cfgateway.CloudflareLLM` the handler adds the exact usage records the core
client priced (``additional_kwargs["cfgateway_records"]``: every attempt, fallbacks included, a
gateway cache HIT at $0), once per call: a stream is counted when it ends, from its last chunk.
:class:`~llama_index_cfgateway.CloudflareEmbedding` hands it each batch's records too (kept apart
in ``embedding_requests``/``embedding_tokens``/``embedding_cost``, included in ``total_cost``).
Any other LLM whose responses carry ``raw["usage"]`` is priced from cfgateway's catalog by its
model name. A model without a price is never counted as $0: it is counted in ``unpriced_calls``,
its ``by_model`` cost is ``None``, and a warning is logged once per model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload

from cfgateway.costs.tally import CostLine, CostTally, catalog_name

if TYPE_CHECKING:
    from cfgateway.costs.catalog import Catalog
    from cfgateway.costs.ledger import UsageRecord

RECORDS_KEY = "cfgateway_records"
_INPUT_KEYS = ("prompt_tokens", "input_tokens", "prompt_token_count")
_OUTPUT_KEYS = ("completion_tokens", "output_tokens", "candidates_token_count")


def _tokens(response: Any) -> tuple[int, int, int] | None:
    """(input, output, cached) from a foreign response's ``raw["usage"]``, or ``None``."""
    raw: Any = getattr(response, "raw", None)
    if hasattr(raw, "model_dump"):
        raw = raw.model_dump()
    usage: Any = (raw.get("usage") or raw.get("usage_metadata")) if isinstance(raw, Mapping) else None
    if usage is not None and not isinstance(usage, Mapping):
        usage = usage.model_dump() if hasattr(usage, "model_dump") else vars(usage)
    if not usage:
        return None
    inp = next((int(usage[k] or 0) for k in _INPUT_KEYS if k in usage), 0)
    out = next((int(usage[k] or 0) for k in _OUTPUT_KEYS if k in usage), 0)
    details = usage.get("prompt_tokens_details") or {}
    cached = int(usage.get("cached_tokens") or (details.get("cached_tokens") if isinstance(details, Mapping) else 0)
                 or 0)
    return inp, out, cached


class CloudflareCostHandler(CostTally, BaseCallbackHandler):
    """Adds up tokens and USD cost (exact ``Decimal``) of every LLM call it sees; thread-safe.

    Figures (from :class:`cfgateway.costs.tally.CostTally`): ``total_cost`` (priced calls; ``unpriced_calls``
    counts the others), ``llm_cost``, ``embedding_cost``, ``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``, ``cached_tokens``, ``neurons``, ``successful_requests``, ``failed_requests``,
    ``fallbacks`` (calls answered by a fallback model), ``embedding_requests``, ``embedding_tokens`` and
    the ``by_model`` / ``by_provider`` breakdowns (:class:`CostLine`).
    """

    logger = logging.getLogger("llama_index_cfgateway.cost")

    def __init__(self, catalog: Catalog | None = None) -> None:
        BaseCallbackHandler.__init__(self, event_starts_to_ignore=[], event_ends_to_ignore=[])
        # LLM events open in this context: an LLM event starting inside another one marks the outer
        # one as a wrapper (StructuredLLM and the like), whose own end is then not counted again.
        self._open: ContextVar[tuple[str, ...]] = ContextVar(f"cf_cost_open_{id(self)}", default=())
        CostTally.__init__(self, catalog)

    def reset(self) -> None:
        """Zero every figure."""
        with self.lock:
            CostTally.reset(self)
            self._starts: dict[str, str | None] = {}
            self._wrappers: set[str] = set()

    def __repr__(self) -> str:
        return self.summary()

    # -- callback manager hooks ------------------------------------------------------------------
    def start_trace(self, trace_id: str | None = None) -> None:
        return None

    def end_trace(self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None) -> None:
        return None

    def on_event_start(
        self, event_type: CBEventType, payload: dict[str, Any] | None = None, event_id: str = "",
        parent_id: str = "", **kwargs: Any,
    ) -> str:
        if event_type != CBEventType.LLM:
            return event_id
        serialized = (payload or {}).get(EventPayload.SERIALIZED)
        name = serialized.get("model_name") if isinstance(serialized, Mapping) else None
        open_events = self._open.get()
        with self.lock:
            self._starts[event_id] = str(name) if name else None
            if open_events:
                self._wrappers.add(open_events[-1])
        self._open.set((*open_events, event_id))
        return event_id

    def on_event_end(
        self, event_type: CBEventType, payload: dict[str, Any] | None = None, event_id: str = "", **kwargs: Any,
    ) -> None:
        if event_type != CBEventType.LLM or payload is None:
            return
        from cfgateway.costs.ledger import UsageRecord  # deferred (cheap import); loaded by the first call anyway

        open_events = self._open.get()
        if event_id in open_events:
            self._open.set(tuple(e for e in open_events if e != event_id))
        error = payload.get(EventPayload.EXCEPTION)
        response = payload.get(EventPayload.RESPONSE, payload.get(EventPayload.COMPLETION))
        extra = getattr(response, "additional_kwargs", None) or {}
        records = extra.get(RECORDS_KEY) if isinstance(extra, Mapping) and error is None else None
        with self.lock:
            start_model = self._starts.pop(event_id, None)
            if event_id in self._wrappers:
                self._wrappers.discard(event_id)
                if not isinstance(records, list):
                    return  # a wrapper around LLM calls already counted on their own
            if error is not None:
                failed = getattr(error, "records", None)
                if isinstance(failed, list) and failed and all(isinstance(r, UsageRecord) for r in failed):
                    self.add_records(failed, ok=False)
                else:
                    self.add_failure()
            elif isinstance(records, list):
                self.add_records([r if isinstance(r, UsageRecord) else UsageRecord.from_dict(r) for r in records],
                                  ok=True)
            else:
                self._add_foreign(response, start_model)

    def on_cfgateway_records(self, records: Sequence[UsageRecord], operation: str = "embed") -> None:
        """Records handed over directly (CloudflareEmbedding's batches)."""
        with self.lock:
            self.add_embedding_records(records)

    def _add_foreign(self, response: Any, start_model: str | None) -> None:
        raw = getattr(response, "raw", None)
        raw_model = raw.get("model") if isinstance(raw, Mapping) else None
        tokens = _tokens(response) if response is not None else None
        self.add_foreign(str(start_model or raw_model or "unknown"), None, tokens,
                         alt_name=str(raw_model) if raw_model else None)


__all__ = ["CloudflareCostHandler", "CostLine", "catalog_name"]
