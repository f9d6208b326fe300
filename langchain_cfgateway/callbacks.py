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
Streams are counted once, when they end.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from cfgateway import ConfigError, Usage

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

    from cfgateway.catalog import Catalog
    from cfgateway.ledger import UsageRecord

# The catalog, ledger and pricing modules (and LangChain's tracer context) load on first use, so
# importing this module costs next to nothing.

logger = logging.getLogger("langchain_cfgateway.cost")

_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
# LangChain ls_provider -> the catalog's provider prefix, where they differ.
_SEEN_LIMIT = 10_000
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
    ``openai`` -> ``openai/gpt-4o-mini``), or ``None``."""
    bases = [name]
    stripped = _DATE_SUFFIX.sub("", name)
    if stripped != name:
        bases.append(stripped)
    prefixes = []
    if provider:
        prefixes.append(_PROVIDER_ALIASES.get(provider, provider))
    for base in bases:
        if catalog.get(base) is not None:
            return base
        for p in prefixes:
            if catalog.get(f"{p}/{base}") is not None:
                return f"{p}/{base}"
    for base in bases:  # no provider hint: a unique match under any provider
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


class CloudflareCostCallbackHandler(BaseCallbackHandler):
    """Adds up tokens and USD cost (exact ``Decimal``) of every chat-model call it sees; thread-safe."""

    run_inline: bool = True
    raise_error: bool = False

    def __init__(self, catalog: Catalog | None = None) -> None:
        super().__init__()
        self.catalog = catalog or _default_catalog()
        self.total_cost = Decimal(0)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cached_tokens = 0
        self.neurons = 0.0
        self.successful_requests = 0
        self.failed_requests = 0
        self.fallbacks = 0
        self.unpriced_calls = 0
        self.by_model: dict[str, CostLine] = {}
        self.by_provider: dict[str, CostLine] = {}
        self._lock = threading.Lock()
        self._starts: dict[UUID, tuple[str | None, str | None]] = {}
        self._seen_calls: OrderedDict[str, None] = OrderedDict()  # bounded: recent call ids
        self._warned: set[str] = set()

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __repr__(self) -> str:
        return (
            f"Tokens Used: {self.total_tokens}\n\tPrompt Tokens: {self.prompt_tokens}\n"
            f"\t\tPrompt Tokens Cached: {self.cached_tokens}\n\tCompletion Tokens: {self.completion_tokens}\n"
            f"Successful Requests: {self.successful_requests}\nFailed Requests: {self.failed_requests}\n"
            f"Fallbacks: {self.fallbacks}\nTotal Cost (USD): ${self.total_cost}"
            + (f" (+ {self.unpriced_calls} unpriced calls)" if self.unpriced_calls else "")
        )

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
        with self._lock:
            self._starts[run_id] = (meta.get("ls_provider"), meta.get("ls_model_name"))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        from cfgateway.ledger import UsageRecord

        with self._lock:
            provider, model = self._starts.pop(run_id, (None, None))
            for generations in response.generations:
                for gen in generations:
                    message = getattr(gen, "message", None)
                    meta = getattr(message, "response_metadata", None) or {}
                    records = meta.get("cfgateway_records")
                    if isinstance(records, list):
                        self._add_records([UsageRecord.from_dict(r) for r in records], ok=True)
                    else:
                        self._add_foreign(message, meta, provider, model)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        from cfgateway.ledger import UsageRecord

        with self._lock:
            self._starts.pop(run_id, None)
            records = getattr(error, "records", None)
            if isinstance(records, list) and all(isinstance(r, UsageRecord) for r in records):
                self._add_records(list(records), ok=False)
            else:
                self.failed_requests += 1

    # -- tallying (called under the lock) ------------------------------------------------------
    def _add_records(self, records: list[UsageRecord], *, ok: bool) -> None:
        from cfgateway.pricing import cost_of

        call_ids = {r.call_id for r in records if r.call_id}
        if call_ids and all(c in self._seen_calls for c in call_ids):
            return  # the same answer again (LangChain's LLM cache): already counted
        for c in call_ids:
            self._seen_calls[c] = None
        while len(self._seen_calls) > _SEEN_LIMIT:
            self._seen_calls.popitem(last=False)
        if ok:
            self.successful_requests += 1
            self.fallbacks += any(r.fallback and r.ok for r in records)
        else:
            self.failed_requests += 1
        for r in records:
            cost = r.cost
            if cost is None and (r.input_tokens or r.output_tokens):
                usage = Usage(r.input_tokens, r.output_tokens, r.total_tokens, r.cached_tokens, r.neurons)
                cost = cost_of(r.model, usage, cache_hit=r.cache_hit, catalog=self.catalog)
            elif cost is None:
                cost = Decimal(0)  # an attempt that used nothing (a failed request) costs nothing
            self._tally(r.model, r.provider, r.input_tokens, r.output_tokens, r.cached_tokens, r.neurons, cost,
                        calls=1 if r.ok else 0)

    def _add_foreign(
        self, message: Any, meta: Mapping[str, Any], provider: str | None, start_model: str | None
    ) -> None:
        self.successful_requests += 1
        name = str(meta.get("model_name") or meta.get("model") or start_model or "unknown")
        usage = getattr(message, "usage_metadata", None)
        key = catalog_name(name, provider, self.catalog) or (start_model and catalog_name(start_model, provider,
                                                                                            self.catalog))
        if not usage:
            self._tally(key or name, provider or "unknown", 0, 0, 0, None, None, calls=1)
            return
        from cfgateway.pricing import cost_of

        details = usage.get("input_token_details") or {}
        cached = int(details.get("cache_read") or 0)
        inp, out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        cost = cost_of(key, Usage(inp, out, inp + out, cached), catalog=self.catalog) if key else None
        info = self.catalog.get(key) if key else None
        self._tally(key or name, info.provider if info else (provider or "unknown"), inp, out, cached, None, cost,
                    calls=1)

    def _tally(
        self, model: str, provider: str, inp: int, out: int, cached: int, neurons: float | None,
        cost: Decimal | None, *, calls: int,
    ) -> None:
        self.prompt_tokens += inp
        self.completion_tokens += out
        self.cached_tokens += cached
        self.neurons += neurons or 0.0
        if cost is None:
            self.unpriced_calls += 1
            if model not in self._warned:
                self._warned.add(model)
                logger.warning("no price for %r: its cost is unknown (None) and left out of total_cost, "
                               "not counted as $0", model)
        else:
            self.total_cost += cost
        self.by_model.setdefault(model, CostLine()).add(inp, out, cached, neurons, cost, calls)
        self.by_provider.setdefault(provider, CostLine()).add(inp, out, cached, neurons, cost, calls)


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


@contextmanager
def get_cloudflare_callback() -> Iterator[CloudflareCostCallbackHandler]:
    """Count every chat-model call made inside the ``with`` block (sync, async, streamed, nested
    chains, threads started by LangChain), like ``get_openai_callback``."""
    _register_hook()
    handler = CloudflareCostCallbackHandler()
    token = _callback_var.set(handler)
    try:
        yield handler
    finally:
        _callback_var.reset(token)


__all__ = ["CloudflareCostCallbackHandler", "CostLine", "catalog_name", "get_cloudflare_callback"]
