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
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload

from cfgateway import ConfigError, Usage

if TYPE_CHECKING:
    from cfgateway.catalog import Catalog
    from cfgateway.ledger import UsageRecord

logger = logging.getLogger("llama_index_cfgateway.cost")

RECORDS_KEY = "cfgateway_records"
_SEEN_LIMIT = 10_000
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
_INPUT_KEYS = ("prompt_tokens", "input_tokens", "prompt_token_count")
_OUTPUT_KEYS = ("completion_tokens", "output_tokens", "candidates_token_count")


@dataclass
class CostLine:
    """Totals for one model or provider. ``cost`` is ``None`` once a call of it had no price."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    neurons: float = 0.0
    cost: Decimal | None = Decimal(0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, inp: int, out: int, cached: int, neurons: float | None, cost: Decimal | None, calls: int) -> None:
        self.requests += calls
        self.prompt_tokens += inp
        self.completion_tokens += out
        self.cached_tokens += cached
        self.neurons += neurons or 0.0
        self.cost = None if cost is None or self.cost is None else self.cost + cost


def catalog_name(name: str, catalog: Catalog) -> str | None:
    """The catalog row a foreign model name refers to (``gpt-4o-mini-2024-07-18`` ->
    ``openai/gpt-4o-mini`` when that is the only row of that name), or ``None``."""
    bases = [name]
    stripped = _DATE_SUFFIX.sub("", name)
    if stripped != name:
        bases.append(stripped)
    for base in bases:
        if catalog.get(base) is not None:
            return base
    for base in bases:
        hits = [m for m in catalog.models if m.split("/", 1)[-1] == base and not m.startswith("@")]
        if len(hits) == 1:
            return hits[0]
    return None


def _default_catalog() -> Catalog:
    from cfgateway.catalog import load_catalog
    from cfgateway.config import load_settings

    try:
        return load_catalog(load_settings().catalog)
    except ConfigError:
        return load_catalog(None)


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


class CloudflareCostHandler(BaseCallbackHandler):
    """Adds up tokens and USD cost (exact ``Decimal``) of every LLM call it sees; thread-safe.

    Figures: ``total_cost`` (priced calls; ``unpriced_calls`` counts the others), ``llm_cost``,
    ``embedding_cost``, ``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
    ``cached_tokens``, ``neurons``, ``successful_requests``, ``failed_requests``, ``fallbacks``
    (calls answered by a fallback model), ``embedding_requests``, ``embedding_tokens`` and the
    ``by_model`` / ``by_provider`` breakdowns (:class:`CostLine`).
    """

    def __init__(self, catalog: Catalog | None = None) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self.catalog = catalog or _default_catalog()
        self._lock = threading.Lock()
        # LLM events open in this context: an LLM event starting inside another one marks the outer
        # one as a wrapper (StructuredLLM and the like), whose own end is then not counted again.
        self._open: ContextVar[tuple[str, ...]] = ContextVar(f"cf_cost_open_{id(self)}", default=())
        self.reset()

    def reset(self) -> None:
        """Zero every figure."""
        with self._lock:
            self.llm_cost = Decimal(0)
            self.embedding_cost = Decimal(0)
            self.prompt_tokens = 0
            self.completion_tokens = 0
            self.cached_tokens = 0
            self.neurons = 0.0
            self.successful_requests = 0
            self.failed_requests = 0
            self.fallbacks = 0
            self.unpriced_calls = 0
            self.embedding_requests = 0
            self.embedding_tokens = 0
            self.by_model: dict[str, CostLine] = {}
            self.by_provider: dict[str, CostLine] = {}
            self._starts: dict[str, str | None] = {}
            self._wrappers: set[str] = set()
            self._seen: OrderedDict[str, None] = OrderedDict()
            self._warned: set[str] = set()

    @property
    def total_cost(self) -> Decimal:
        return self.llm_cost + self.embedding_cost

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __repr__(self) -> str:
        return (
            f"Tokens Used: {self.total_tokens}\n\tPrompt Tokens: {self.prompt_tokens}\n"
            f"\t\tPrompt Tokens Cached: {self.cached_tokens}\n\tCompletion Tokens: {self.completion_tokens}\n"
            f"Successful Requests: {self.successful_requests}\nFailed Requests: {self.failed_requests}\n"
            f"Fallbacks: {self.fallbacks}\nEmbedding Requests: {self.embedding_requests}\n"
            f"Total Cost (USD): ${self.total_cost}"
            + (f" (+ {self.unpriced_calls} unpriced calls)" if self.unpriced_calls else "")
        )

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
        with self._lock:
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
        from cfgateway.ledger import UsageRecord  # deferred (cheap import); loaded by the first call anyway

        open_events = self._open.get()
        if event_id in open_events:
            self._open.set(tuple(e for e in open_events if e != event_id))
        error = payload.get(EventPayload.EXCEPTION)
        response = payload.get(EventPayload.RESPONSE, payload.get(EventPayload.COMPLETION))
        extra = getattr(response, "additional_kwargs", None) or {}
        records = extra.get(RECORDS_KEY) if isinstance(extra, Mapping) and error is None else None
        with self._lock:
            start_model = self._starts.pop(event_id, None)
            if event_id in self._wrappers:
                self._wrappers.discard(event_id)
                if not isinstance(records, list):
                    return  # a wrapper around LLM calls already counted on their own
            if error is not None:
                failed = getattr(error, "records", None)
                if isinstance(failed, list) and failed and all(isinstance(r, UsageRecord) for r in failed):
                    self._add_records(failed, ok=False)
                else:
                    self.failed_requests += 1
            elif isinstance(records, list):
                self._add_records([r if isinstance(r, UsageRecord) else UsageRecord.from_dict(r) for r in records],
                                  ok=True)
            else:
                self._add_foreign(response, start_model)

    def on_cfgateway_records(self, records: Sequence[UsageRecord], operation: str = "embed") -> None:
        """Records handed over directly (CloudflareEmbedding's batches)."""
        with self._lock:
            for r in records:
                cost = self._price(r)
                self.embedding_requests += 1 if r.ok else 0
                self.embedding_tokens += r.input_tokens
                if cost is not None:
                    self.embedding_cost += cost
                self._lines(r.model, r.provider, r.input_tokens, 0, 0, r.neurons, cost, 1 if r.ok else 0)

    # -- tallying (under the lock) --------------------------------------------------------------
    def _price(self, r: UsageRecord) -> Decimal | None:
        """The record's cost; ``None`` (counted and warned about) when its price is unknown."""
        if r.cost is not None:
            return r.cost
        if not r.ok and not (r.input_tokens or r.output_tokens):
            return Decimal(0)  # a failed attempt that used nothing costs nothing
        from cfgateway.pricing import cost_of

        usage = Usage(r.input_tokens, r.output_tokens, r.total_tokens, r.cached_tokens, r.neurons)
        cost = None
        if r.input_tokens or r.output_tokens or r.cache_hit:
            cost = cost_of(r.model, usage, cache_hit=r.cache_hit, catalog=self.catalog)
        if cost is None:  # no price, or an answer that reported no usage: unknown, never $0
            self._unpriced(r.model)
        return cost

    def _unpriced(self, model: str) -> None:
        self.unpriced_calls += 1
        if model not in self._warned:
            self._warned.add(model)
            logger.warning("no price for %r: its cost is unknown (None) and left out of total_cost, "
                           "not counted as $0", model)

    def _add_records(self, records: list[UsageRecord], *, ok: bool) -> None:
        call_ids = {r.call_id for r in records if r.call_id}
        if call_ids and all(c in self._seen for c in call_ids):
            return  # the same answer seen again: already counted
        for c in call_ids:
            self._seen[c] = None
        while len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        if ok:
            self.successful_requests += 1
            self.fallbacks += any(r.fallback and r.ok for r in records)
        else:
            self.failed_requests += 1
        for r in records:
            cost = self._price(r)
            self._tally(r.model, r.provider, r.input_tokens, r.output_tokens, r.cached_tokens, r.neurons, cost,
                        calls=1 if r.ok else 0)

    def _add_foreign(self, response: Any, start_model: str | None) -> None:
        self.successful_requests += 1
        raw = getattr(response, "raw", None)
        raw_model = raw.get("model") if isinstance(raw, Mapping) else None
        name = str(start_model or raw_model or "unknown")
        key = catalog_name(name, self.catalog)
        if key is None and raw_model:
            key = catalog_name(str(raw_model), self.catalog)
        info = self.catalog.get(key) if key else None
        tokens = _tokens(response) if response is not None else None
        inp, out, cached = tokens or (0, 0, 0)
        cost = None
        if key and tokens is not None:
            from cfgateway.pricing import cost_of

            cost = cost_of(key, Usage(inp, out, inp + out, cached), catalog=self.catalog)
        if cost is None:
            self._unpriced(key or name)
        self._tally(key or name, info.provider if info else "unknown", inp, out, cached, None, cost, calls=1)

    def _tally(
        self, model: str, provider: str, inp: int, out: int, cached: int, neurons: float | None,
        cost: Decimal | None, *, calls: int,
    ) -> None:
        self.prompt_tokens += inp
        self.completion_tokens += out
        self.cached_tokens += cached
        self.neurons += neurons or 0.0
        if cost is not None:
            self.llm_cost += cost
        self._lines(model, provider, inp, out, cached, neurons, cost, calls)

    def _lines(
        self, model: str, provider: str, inp: int, out: int, cached: int, neurons: float | None,
        cost: Decimal | None, calls: int,
    ) -> None:
        self.by_model.setdefault(model, CostLine()).add(inp, out, cached, neurons, cost, calls)
        self.by_provider.setdefault(provider, CostLine()).add(inp, out, cached, neurons, cost, calls)


__all__ = ["CloudflareCostHandler", "CostLine", "catalog_name"]
