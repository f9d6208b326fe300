"""Pure pricing: tokens x the catalog's prices, as exact ``Decimal`` USD.

``None`` means "unknown price" (logged once per model on ``cfgateway.cost``), never a silent 0.
A gateway cache HIT costs exactly 0. Workers AI is priced from tokens like every other
provider (the catalog's $/M rows are the neuron price converted); neurons are tracked apart.
"""

from __future__ import annotations

import logging
import math
import threading
from decimal import Decimal

from cfgateway.costs.catalog import Catalog, ModelInfo, default_catalog
from cfgateway.errors import ConfigError
from cfgateway.types import Usage

logger = logging.getLogger("cfgateway.cost")

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_unpriced(model: str) -> None:
    if model in _warned:
        return
    with _warned_lock:
        if model in _warned:
            return
        _warned.add(model)
    logger.warning(
        "no price for model %r in the catalog: its cost is recorded as unknown (None), not $0; "
        "add a row with a user catalog file (CFGATEWAY_CATALOG / catalog=)",
        model,
    )


def _reset_warnings() -> None:
    """Forget which models were warned about (tests)."""
    with _warned_lock:
        _warned.clear()


def priced_info(model: str, catalog: Catalog | None = None) -> ModelInfo | None:
    """The catalog row of ``model`` when it has both prices, else ``None`` (and the one warning)."""
    info = (catalog or default_catalog()).get(model)
    if info is None or info.input_price is None or info.output_price is None:
        _warn_unpriced(model)
        return None
    return info


def cost_from_tokens(info: ModelInfo, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> Decimal:
    """Exact USD for a priced row. ``cached_tokens`` are a subset of ``input_tokens`` (OpenAI's
    convention; the Anthropic wire module adds cache reads into ``input_tokens``)."""
    assert info.input_price is not None and info.output_price is not None
    cached = min(max(cached_tokens, 0), input_tokens)
    total = (input_tokens - cached) * info.input_price + output_tokens * info.output_price
    if cached:
        rate = info.cached_input_price if info.cached_input_price is not None else info.input_price
        total += cached * rate
    return total / _MILLION


def cost_of(model: str, usage: Usage, *, cache_hit: bool = False, catalog: Catalog | None = None) -> Decimal | None:
    """USD cost of one response's ``usage`` on ``model``; ``None`` when the model has no price."""
    if cache_hit:
        return _ZERO
    info = priced_info(model, catalog)
    if info is None:
        return None
    return cost_from_tokens(info, usage.input_tokens, usage.output_tokens, usage.cached_tokens)


def max_cost_of(
    model: str, input_tokens: int, max_output_tokens: int, *, catalog: Catalog | None = None
) -> Decimal | None:
    """Worst-case USD of a call (every input token at the uncached price, every allowed output
    token produced): what a budget reservation holds until the call settles."""
    info = priced_info(model, catalog)
    if info is None:
        return None
    return cost_from_tokens(info, max(input_tokens, 0), max(max_output_tokens, 0))


def neurons_of(model: str, usage: Usage, *, catalog: Catalog | None = None) -> float | None:
    """Workers AI neurons for ``usage`` from the catalog's neurons-per-million rates, or ``None``
    when the row has none (not a Workers AI model, or unknown)."""
    info = (catalog or default_catalog()).get(model)
    if info is None or info.neurons_in is None:
        return None
    out_rate = info.neurons_out or 0
    return (usage.input_tokens * info.neurons_in + usage.output_tokens * out_rate) / 1_000_000


def neurons_cost(neurons: float, *, catalog: Catalog | None = None) -> Decimal:
    """USD for ``neurons`` at Workers AI's unit price ($ per 1,000 neurons)."""
    cat = catalog or default_catalog()
    return Decimal(str(neurons)) * cat.usd_per_1000_neurons / 1000


def _plain(value: Decimal) -> str:
    """A JSON number without exponent notation (``0.00000015``, not ``1.5E-7``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _to_decimal(value: Decimal | int | float | str, name: str) -> Decimal:
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError:
        raise ConfigError(f"{name} must be a number of USD per million tokens, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"{name} must be a non-negative number of USD per million tokens, got {value!r}")
    return d


def custom_cost_header(input_per_m: Decimal | int | float | str, output_per_m: Decimal | int | float | str) -> str:
    """The ``cf-aig-custom-cost`` header value for prices given in USD per million tokens::

    >>> custom_cost_header(Decimal("1"), Decimal("2"))
    '{"per_token_in":0.000001,"per_token_out":0.000002}'
    """
    per_in = _to_decimal(input_per_m, "input_per_m") / _MILLION
    per_out = _to_decimal(output_per_m, "output_per_m") / _MILLION
    # json.dumps would turn a Decimal into a string; the gateway wants numbers.
    return f'{{"per_token_in":{_plain(per_in)},"per_token_out":{_plain(per_out)}}}'


def estimate_tokens(text: str) -> int:
    """A cheap token estimate for reservations: ``len(text) / 4`` rounded up, at least 1."""
    return max(1, math.ceil(len(text) / 4))


__all__ = [
    "cost_from_tokens",
    "cost_of",
    "custom_cost_header",
    "estimate_tokens",
    "max_cost_of",
    "neurons_cost",
    "neurons_of",
    "priced_info",
]
