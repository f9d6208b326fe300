"""Model facts and prices from a dated data file (``cfgateway/data/catalog.json``).

Prices are ``Decimal`` USD per million tokens; ``None`` means "no published price" —
never a silent zero. Users extend or override rows with their own JSON file
(``CFGATEWAY_CATALOG`` / ``catalog=`` setting) in the same format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

_DATA = "catalog.json"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    model: str
    kind: str  # "chat" | "embed"
    provider: str
    input_price: Decimal | None = None  # USD per million input tokens
    output_price: Decimal | None = None
    cached_input_price: Decimal | None = None
    neurons_in: int | None = None  # Workers AI neurons per million tokens
    neurons_out: int | None = None
    context_window: int | None = None
    function_calling: bool = False
    json_mode: bool = False
    shape: str = "legacy"  # Workers AI result shape: "legacy" | "openai"
    dims: int | None = None
    rpm: int | None = None  # the provider's published requests per minute (Workers AI: per model, per account)
    flex_dims: bool = False  # takes a ``dimensions`` request field: vectors of any size up to ``dims``
    max_input_tokens: int | None = None
    max_batch: int | None = None
    pooling: bool = False
    source: str = ""
    as_of: str = ""
    vision: bool | None = None  # takes image inputs; None = not known
    native_stream: bool = True  # False: answers JSON to ``stream: true`` on /ai/run (gpt-oss, kimi)
    custom: bool = False  # a user-supplied row (file, env or constructor), not the shipped catalog

    @property
    def priced(self) -> bool:
        return self.input_price is not None and self.output_price is not None


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class VectorizePrices:
    """Vectorize's published prices (the catalog's ``"vectorize"`` row); ``None`` = unknown price.

    Queried dimensions: each query's vector dimensions, plus every stored vector's dimensions once a month;
    stored dimensions: stored vectors x dimensions, per month. Free allocations are not subtracted.
    """

    queried_per_million: Decimal | None = None  # USD per million queried vector dimensions
    stored_per_million_month: Decimal | None = None  # USD per million stored vector dimensions per month
    included_queried_month: int | None = None
    included_stored: int | None = None
    source: str = ""
    as_of: str = ""

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> VectorizePrices:
        return cls(
            queried_per_million=_dec(r.get("usd_per_million_queried_dimensions")),
            stored_per_million_month=_dec(r.get("usd_per_million_stored_dimensions_month")),
            included_queried_month=r.get("included_queried_dimensions_month"),
            included_stored=r.get("included_stored_dimensions"),
            source=r.get("source", ""),
            as_of=r.get("as_of", ""),
        )


def _row(model: str, r: dict[str, Any], custom: bool = False) -> ModelInfo:
    return ModelInfo(
        model=model,
        kind=r.get("kind", "chat"),
        provider=r.get("provider") or ("workers-ai" if model.startswith("@") else model.split("/", 1)[0]),
        input_price=_dec(r.get("input")),
        output_price=_dec(r.get("output")),
        cached_input_price=_dec(r.get("cached_input")),
        neurons_in=r.get("neurons_in"),
        neurons_out=r.get("neurons_out"),
        context_window=r.get("context_window"),
        function_calling=bool(r.get("function_calling", False)),
        json_mode=bool(r.get("json_mode", False)),
        shape=r.get("shape", "legacy"),
        dims=r.get("dims"),
        rpm=r.get("rpm"),
        flex_dims=bool(r.get("flex_dims", False)),
        max_input_tokens=r.get("max_input_tokens"),
        max_batch=r.get("max_batch"),
        pooling=bool(r.get("pooling", False)),
        source=r.get("source", ""),
        as_of=r.get("as_of", ""),
        vision=r.get("vision"),
        native_stream=bool(r.get("native_stream", True)),
        custom=custom,
    )


class Catalog:
    """Model rows keyed by model string, plus Workers AI's neuron price facts."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.as_of: str = doc.get("as_of", "")
        wa = doc.get("workers_ai", {})
        self.usd_per_1000_neurons = Decimal(str(wa.get("usd_per_1000_neurons", "0.011")))
        self.free_neurons_per_day = int(wa.get("free_neurons_per_day", 10000))
        self.models: dict[str, ModelInfo] = {m: _row(m, r) for m, r in doc.get("models", {}).items()}
        self.vectorize = VectorizePrices.from_row(doc.get("vectorize", {}))

    def get(self, model: str) -> ModelInfo | None:
        info = self.models.get(model)
        if info is None and model.startswith("workers-ai/"):
            info = self.models.get(model[len("workers-ai/") :])
        return info

    def extended(self, doc: dict[str, Any]) -> Catalog:
        """A copy with rows from ``doc`` (same format) added or replacing existing ones."""
        merged = Catalog({"as_of": self.as_of, "models": {}})
        merged.usd_per_1000_neurons = self.usd_per_1000_neurons
        merged.free_neurons_per_day = self.free_neurons_per_day
        merged.models = dict(self.models)
        merged.models.update({m: _row(m, r, custom=True) for m, r in doc.get("models", {}).items()})
        merged.vectorize = VectorizePrices.from_row(doc["vectorize"]) if "vectorize" in doc else self.vectorize
        return merged


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    text = resources.files("cfgateway.data").joinpath(_DATA).read_text(encoding="utf-8")
    return Catalog(json.loads(text))


@lru_cache(maxsize=8)
def load_catalog(path: str | None = None) -> Catalog:
    """The shipped catalog, extended by the JSON file at ``path`` when given."""
    base = default_catalog()
    if not path:
        return base
    return base.extended(json.loads(Path(path).read_text(encoding="utf-8")))


def get_model(model: str) -> ModelInfo | None:
    """Facts and prices for a model string from the shipped catalog, or ``None``."""
    return default_catalog().get(model)


__all__ = ["Catalog", "ModelInfo", "VectorizePrices", "default_catalog", "get_model", "load_catalog"]
