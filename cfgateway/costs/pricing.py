"""Pure pricing: tokens x the catalog's prices, as exact ``Decimal`` USD.

``None`` means "unknown price" (logged once per model on ``cfgateway.cost``), never a silent 0.
A gateway cache HIT costs exactly 0. Workers AI is priced from tokens like every other
provider (the catalog's $/M rows are the neuron price converted); neurons are tracked apart.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from cfgateway.costs.catalog import Catalog, ModelInfo, default_catalog
from cfgateway.errors import ConfigError
from cfgateway.types import Message, ToolSpec, Usage

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
    """An upper bound on the tokens of ``text`` for budget reservations: its UTF-8 size in bytes, plus one.

    Every tokenizer in use (byte-level BPE, SentencePiece with byte fallback, WordPiece) makes each token
    cover at least one byte of the text; SentencePiece may add one dummy-prefix piece. The old estimate,
    ``len(text) / 4``, let punctuation-heavy prompts spend ~4x a hard limit. Template and special tokens
    are per message (:func:`input_token_bound`) or per input (:func:`embed_token_bound`).
    """
    if text.isascii():
        return len(text) + 1
    return len(text.encode("utf-8", "surrogatepass")) + 1


# guess: chat templates add at most this many tokens per message (Llama 3: 5, OpenAI: 3-4, Anthropic: ~4),
# and per request (BOS, the assistant header that primes the answer, tool-use preambles).
MESSAGE_OVERHEAD_TOKENS = 8
REQUEST_OVERHEAD_TOKENS = 16
TOOL_OVERHEAD_TOKENS = 16
# guess: the most any provider counts for one image (gpt-4o-mini bills a 2048x768 high-detail image at
# 2,833 + 8 x 5,667 = 48,169 tokens); a caller who knows better reserves less with ``image_tokens=``.
IMAGE_TOKEN_BOUND = 50_000
EMBED_OVERHEAD_TOKENS = 2  # [CLS]/[SEP] or BOS/EOS per input text


def _json_tokens(value: Any) -> int:
    return estimate_tokens(json.dumps(value, ensure_ascii=False, default=str))


def _message_bound(m: Any, image_tokens: int) -> int:
    n = MESSAGE_OVERHEAD_TOKENS + estimate_tokens(m.role or "") + estimate_tokens(m.name or "")
    content = m.content
    if isinstance(content, str):
        n += estimate_tokens(content)
    elif isinstance(content, list):
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                n += estimate_tokens(str(part.get("text", "")))
            elif kind in ("image_url", "image", "input_image"):
                n += image_tokens
            else:  # unknown part kinds count as their JSON text (never as nothing)
                n += _json_tokens(part)
    for tc in m.tool_calls or ():
        n += TOOL_OVERHEAD_TOKENS + estimate_tokens(tc.name or "") + _json_tokens(tc.arguments)
    if m.tool_call_id:
        n += estimate_tokens(m.tool_call_id)
    return n


def input_token_bound(
    messages: Sequence[Message],
    tools: Sequence[ToolSpec] = (),
    response_format: dict[str, Any] | None = None,
    *,
    image_tokens: int = IMAGE_TOKEN_BOUND,
) -> int:
    """An upper bound on a chat request's input tokens: what a budget reservation should hold.

    Text as UTF-8 bytes (:func:`estimate_tokens`), per-message template tokens, tool calls and tool specs as
    their JSON text, a JSON schema (some providers put it in the prompt), ``image_tokens`` per image part.
    The call settles at the provider's reported usage, so the bound only decides what is held meanwhile.
    """
    n = REQUEST_OVERHEAD_TOKENS + sum(_message_bound(m, image_tokens) for m in messages)
    for t in tools:
        n += TOOL_OVERHEAD_TOKENS + _json_tokens([t.name, t.description, t.parameters])
    if response_format:
        n += _json_tokens(response_format)
    return n


def embed_token_bound(texts: Sequence[str]) -> int:
    """An upper bound on the input tokens of an embedding call over ``texts``."""
    return sum(estimate_tokens(t) + EMBED_OVERHEAD_TOKENS for t in texts)


__all__ = [
    "cost_from_tokens",
    "cost_of",
    "custom_cost_header",
    "embed_token_bound",
    "estimate_tokens",
    "input_token_bound",
    "max_cost_of",
    "neurons_cost",
    "neurons_of",
    "priced_info",
]
