"""Running cost totals for the frameworks' cost callbacks (LangChain and LlamaIndex share this).

:class:`CostTally` adds up the exact :class:`~cfgateway.costs.ledger.UsageRecord` objects our own models
attach (every attempt, fallbacks included, counted once per call id) and prices any other model's
reported usage from the catalog. An unknown price is never a silent $0: it is counted in
``unpriced_calls``, its ``by_model`` cost becomes ``None``, and one warning is logged per model.
Callers hold :attr:`CostTally.lock` while they call the ``add_*`` methods.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from cfgateway.types import Usage

if TYPE_CHECKING:
    from cfgateway.costs.catalog import Catalog
    from cfgateway.costs.ledger import UsageRecord

# catalog, config, ledger and pricing load on first use: the adapters import this module at import time.

logger = logging.getLogger("cfgateway.cost")

_SEEN_LIMIT = 10_000
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
# a framework's provider name -> the catalog's provider prefix, where they differ
_PROVIDER_ALIASES = {"mistralai": "mistral", "azure": "openai", "azure_openai": "openai", "xai": "grok"}


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


def catalog_name(name: str, provider: str | None, catalog: Catalog) -> str | None:
    """The catalog row a foreign model name refers to (``gpt-4o-mini-2024-07-18`` with provider
    ``openai`` -> ``openai/gpt-4o-mini``; without a provider, the unique row of that name), or ``None``."""
    bases = [name]
    stripped = _DATE_SUFFIX.sub("", name)
    if stripped != name:
        bases.append(stripped)
    prefix = _PROVIDER_ALIASES.get(provider, provider) if provider else None
    for base in bases:
        if catalog.get(base) is not None:
            return base
        if prefix and catalog.get(f"{prefix}/{base}") is not None:
            return f"{prefix}/{base}"
    for base in bases:
        hits = [m for m in catalog.models if m.split("/", 1)[-1] == base and not m.startswith("@")]
        if len(hits) == 1:
            return hits[0]
    return None


def settings_catalog() -> Catalog:
    """The catalog the settings name (``CFGATEWAY_CATALOG``), or the shipped one when settings are unusable."""
    from cfgateway.config import load_settings
    from cfgateway.costs.catalog import load_catalog
    from cfgateway.errors import ConfigError

    try:
        return load_catalog(load_settings().catalog)
    except ConfigError:
        return load_catalog(None)


class CostTally:
    """Thread-safe (via :attr:`lock`) running totals: cost, tokens, requests, per model and provider."""

    logger = logger  # subclasses warn under their own package's name

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or settings_catalog()
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Zero every figure."""
        with self.lock:
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
            self.embedding_cache_hits = 0  # inputs answered by the embedding cache: no request, no tokens, $0
            self.by_model: dict[str, CostLine] = {}
            self.by_provider: dict[str, CostLine] = {}
            self._seen: OrderedDict[str, None] = OrderedDict()
            self._warned: set[str] = set()

    @property
    def total_cost(self) -> Decimal:
        """Priced spend, chat and embeddings (``unpriced_calls`` counts what could not be priced)."""
        return self.llm_cost + self.embedding_cost

    @property
    def total_tokens(self) -> int:
        """Every token counted: chat prompt + completion, and embedding input (so it equals the sum of
        ``by_model``'s lines; ``prompt_tokens`` and ``completion_tokens`` are the chat models' alone)."""
        return self.prompt_tokens + self.completion_tokens + self.embedding_tokens

    def summary(self) -> str:
        embedded = f"\tEmbedding Tokens: {self.embedding_tokens}\n" if self.embedding_tokens else ""
        text = (
            f"Tokens Used: {self.total_tokens}\n\tPrompt Tokens: {self.prompt_tokens}\n"
            f"\t\tPrompt Tokens Cached: {self.cached_tokens}\n\tCompletion Tokens: {self.completion_tokens}\n"
            f"{embedded}"
            f"Successful Requests: {self.successful_requests}\nFailed Requests: {self.failed_requests}\n"
            f"Fallbacks: {self.fallbacks}\n"
        )
        if self.embedding_requests:
            text += f"Embedding Requests: {self.embedding_requests}\n"
        if self.embedding_cache_hits:
            text += f"Embedding Cache Hits: {self.embedding_cache_hits}\n"
        text += f"Total Cost (USD): ${self.total_cost}"
        return text + (f" (+ {self.unpriced_calls} unpriced calls)" if self.unpriced_calls else "")

    # -- adding (callers hold the lock) ---------------------------------------------------------
    def add_records(self, records: list[UsageRecord], *, ok: bool) -> None:
        """One call's records (every attempt). A call id seen before (a cached answer) is not counted again."""
        call_ids = {r.call_id for r in records if r.call_id}
        if call_ids and all(c in self._seen for c in call_ids):
            return
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
            cost = self.price(r)
            self._tally(r.model, r.provider, r.input_tokens, r.output_tokens, r.cached_tokens, r.neurons, cost,
                        calls=1 if r.ok else 0)

    def add_embedding_records(self, records: Iterable[UsageRecord]) -> None:
        from cfgateway.cache.flow import HITS_TAG, is_cache_record

        for r in records:
            if is_cache_record(r):  # nothing was sent: counted as hits, never as a request, tokens or spend
                self.embedding_cache_hits += int(r.tags.get(HITS_TAG) or 0)
                continue
            cost = self.price(r)
            self.embedding_requests += 1 if r.ok else 0
            self.embedding_tokens += r.input_tokens
            self.neurons += r.neurons or 0.0
            if cost is not None:
                self.embedding_cost += cost
            self._lines(r.model, r.provider, r.input_tokens, 0, 0, r.neurons, cost, 1 if r.ok else 0)

    def add_foreign(
        self, name: str, provider: str | None, tokens: tuple[int, int, int] | None, *, alt_name: str | None = None
    ) -> None:
        """A successful call of a model that is not ours, priced from its reported ``(in, out, cached)`` tokens."""
        self.successful_requests += 1
        key = catalog_name(name, provider, self.catalog) or (
            catalog_name(alt_name, provider, self.catalog) if alt_name else None)
        info = self.catalog.get(key) if key else None
        inp, out, cached = tokens or (0, 0, 0)
        cost = None
        if key and tokens is not None:
            from cfgateway.costs.pricing import cost_of

            cost = cost_of(key, Usage(inp, out, inp + out, cached), catalog=self.catalog)
        if cost is None:
            self._unpriced(key or name)
        self._tally(key or name, info.provider if info else (provider or "unknown"), inp, out, cached, None, cost,
                    calls=1)

    def add_failure(self) -> None:
        self.failed_requests += 1

    # -- internals ------------------------------------------------------------------------------
    def price(self, r: UsageRecord) -> Decimal | None:
        """The record's cost; ``None`` (counted and warned about) when its price is unknown."""
        if r.cost is not None:
            return r.cost
        if not r.ok and not (r.input_tokens or r.output_tokens):
            return Decimal(0)  # a failed attempt that used nothing costs nothing
        cost = None
        if r.input_tokens or r.output_tokens or r.cache_hit:
            from cfgateway.costs.pricing import cost_of

            usage = Usage(r.input_tokens, r.output_tokens, r.total_tokens, r.cached_tokens, r.neurons)
            cost = cost_of(r.model, usage, cache_hit=r.cache_hit, catalog=self.catalog)
        if cost is None:  # no price, or an answer that reported no usage: unknown, never $0
            self._unpriced(r.model)
        return cost

    def _unpriced(self, model: str) -> None:
        self.unpriced_calls += 1
        if model not in self._warned:
            self._warned.add(model)
            self.logger.warning("no price for %r: its cost is unknown (None) and left out of total_cost, "
                           "not counted as $0", model)

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


__all__ = ["CostLine", "CostTally", "catalog_name", "settings_catalog"]
