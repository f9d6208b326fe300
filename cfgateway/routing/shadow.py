"""Shadow comparisons, the pure parts: what to shadow, which calls are sampled, the daily spend cap, and
how a streamed answer is put back together to be compared.

>>> s = Shadow("@cf/meta/llama-3.3-70b-instruct-fp8-fast", sample=0.1, max_cost="5")
>>> s.max_cost
Decimal('5')

A sampled share of the calls answered by the current route (the *baseline*) is also sent to the
*candidate* in the background; the pair becomes one ledger record with outcome ``shadow``
(:func:`cfgateway.routing.gates.shadow_record`). The sending is in :mod:`cfgateway.fallback._shadows`.

- **Sampling.** A call is sampled when ``bucket(key, "shadow:" + name)`` is below ``sample * 10000``,
  where the key is the call id (``by="call"``, the default: a share of calls) or the user id
  (``by="user"``: a share of users, all of whose calls are shadowed; calls without a user fall back to
  their call id). The hash is sha256, the same in every process.
- **The cap** (``max_cost``, USD per UTC day, shadow spend only: the candidate's calls and the embeddings
  that compare them) is held in the ledger's key-value state under ``shadow:{name}:spend:{day}``, changed
  only by compare-and-set, so every process sharing the ledger shares one cap. A pair holds its worst case
  before anything is sent and settles to its actual cost after, like a budget reservation; a pair that
  would cross the cap is not sent.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from cfgateway.costs.ledger.memory import MemoryLedger
from cfgateway.costs.ledger.record import DAY_S, day_of
from cfgateway.costs.ledger.state import StateStore
from cfgateway.errors import ConfigError
from cfgateway.routing.buckets import BUCKETS, bucket
from cfgateway.routing.model_strings import check_model_string
from cfgateway.routing.similarity import Embed, answer_similarity
from cfgateway.types import ChatChunk, ChatResponse, ToolCall

logger = logging.getLogger("cfgateway.shadow")

DEFAULT_SIMILARITY_MODEL = "@cf/baai/bge-base-en-v1.5"
SAMPLE_BY = ("call", "user")
_TRIES = 50


def _usd(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"shadow max_cost must be an amount in USD per day (e.g. 5 or '2.50'), "
                          f"got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"shadow max_cost must be a non-negative amount in USD per day, got {value!r}")
    return amount


@dataclass(frozen=True, slots=True)
class Shadow:
    """Send a sampled share of the baseline's calls to ``candidate`` too, in the background, and record
    how alike the answers are (see the module docstring).

    ``sample``: the share in ``[0, 1]`` (0.1 = 10 %). ``similarity_model``: the embedding model whose
    cosine compares text answers (tool calls are compared by name and arguments). ``max_cost``: USD per
    UTC day of shadow spend, shared by every process on the ledger (``None``: no cap of its own; budgets
    still apply). ``baseline``: the route whose answers are shadowed (default: the rollout's old route,
    else the chain's primary). ``by``: ``"call"`` or ``"user"``. ``name``: the cap's key (default: the
    candidate). ``workers`` / ``max_pending``: background threads and the queue bound; a shadow that
    finds the queue full is dropped and counted, never waited for.
    """

    candidate: str
    sample: float = 0.1
    similarity_model: str = DEFAULT_SIMILARITY_MODEL
    max_cost: Decimal | int | float | str | None = None  # kept as a Decimal (``daily_cap``)
    baseline: str | None = None
    by: str = "call"
    name: str | None = None
    workers: int = 2
    max_pending: int = 100

    def __post_init__(self) -> None:
        check_model_string(self.candidate)
        check_model_string(self.similarity_model)
        if self.baseline is not None:
            check_model_string(self.baseline)
            if self.baseline == self.candidate:
                raise ConfigError(f"a shadow's candidate and baseline must differ, both are {self.candidate!r}")
        sample = self.sample
        if isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 <= sample <= 1:
            raise ConfigError(f"shadow sample is a share from 0 to 1 (0.1 = 10 % of calls), got {sample!r}")
        object.__setattr__(self, "max_cost", _usd(self.max_cost))
        if self.by not in SAMPLE_BY:
            raise ConfigError(f"shadow by= must be 'call' or 'user', got {self.by!r}")
        for name in ("workers", "max_pending"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"shadow {name} must be a whole number >= 1, got {value!r}")
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ConfigError(f"shadow name must be a non-empty string, got {self.name!r}")

    @property
    def daily_cap(self) -> Decimal | None:
        """``max_cost`` as the Decimal it is kept as (USD per UTC day), or ``None``."""
        return self.max_cost if isinstance(self.max_cost, Decimal) else _usd(self.max_cost)

    @property
    def key(self) -> str:
        """The name the cap and the sampling salt use."""
        return self.name or self.candidate

    def sampled(self, call_id: str, user: str | None = None) -> bool:
        """Whether this call is shadowed (stable: the same answer in every process)."""
        if self.sample <= 0:
            return False
        if self.sample >= 1:
            return True
        key = user if self.by == "user" and user else call_id
        return bucket(key, f"shadow:{self.key}") < round(self.sample * BUCKETS)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Shadow:
        """A shadow from a settings table (``[profiles.prod.shadow]``, a proxy's ``[shadows.NAME]``)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a shadow is a table with candidate, sample, similarity_model, max_cost; got {data!r}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown or not isinstance(data.get("candidate"), str):
            raise ConfigError(f"shadow setting: a candidate model string is required; unknown key(s) "
                              f"{', '.join(unknown) or 'none'}; known: {', '.join(known)}")
        values = dict(data)
        if "sample" in values:
            try:
                values["sample"] = float(values["sample"])
            except (TypeError, ValueError):
                raise ConfigError(f"shadow sample is a share from 0 to 1, got {data['sample']!r}") from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["max_cost"] = None if self.max_cost is None else str(self.max_cost)
        return out


# -- the cap -------------------------------------------------------------------------------------
def cap_key(name: str, day: int) -> str:
    return f"shadow:{name}:spend:{day}"


class ShadowCap:
    """Shadow spend per UTC day against ``limit``, shared through the ledger's state (see the module
    docstring). A ledger without a key-value state gets a cap for this process only (logged)."""

    def __init__(self, ledger: Any, name: str, limit: Decimal, clock: Callable[[], float] = time.time) -> None:
        if isinstance(ledger, StateStore):
            self.store: StateStore = ledger
        else:
            logger.warning("shadow %s: the ledger %r keeps no shared state; max_cost is counted in this process "
                           "only", name, ledger)
            self.store = MemoryLedger()
        self.name, self.limit, self.clock = name, limit, clock

    def spent(self, day: int | None = None) -> Decimal:
        """Held + settled shadow spend of ``day`` (default: today, UTC)."""
        text = self.store.get_state(cap_key(self.name, day_of(self.clock()) if day is None else day))
        return Decimal(json.loads(text)["spent"]) if text else Decimal(0)

    def _change(self, day: int, change: Callable[[Decimal], Decimal | None]) -> bool:
        key = cap_key(self.name, day)
        for attempt in range(_TRIES):
            old = self.store.get_state(key)
            now = Decimal(json.loads(old)["spent"]) if old else Decimal(0)
            new = change(now)
            if new is None:
                return False
            value = json.dumps({"spent": str(max(new, Decimal(0))), "limit": str(self.limit)})
            if self.store.compare_and_set(key, old, value, expires=(day + 2) * DAY_S):
                return True
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise RuntimeError(f"shadow {self.name}: the cap's state kept changing under {_TRIES} compare-and-set tries")

    def hold(self, amount: Decimal) -> int | None:
        """Hold ``amount`` against today's cap; the day it was held on, or ``None`` when it would cross it."""
        day = day_of(self.clock())
        fits = self._change(day, lambda now: now + amount if now + amount <= self.limit else None)
        return day if fits else None

    def adjust(self, day: int, delta: Decimal) -> None:
        """Settle a hold made on ``day``: add ``actual - held`` (negative to give back)."""
        if delta:
            self._change(day, lambda now: now + delta)

    def next_day(self) -> float:
        """When today's cap ends (epoch seconds): shadows stopped by the cap start again then."""
        return float((day_of(self.clock()) + 1) * DAY_S)


# -- comparing -----------------------------------------------------------------------------------
def compare_answers(baseline: ChatResponse, candidate: ChatResponse, embed: Embed) -> float:
    """:func:`~cfgateway.routing.similarity.answer_similarity`, with empty text answers settled without
    the embedding model (an embedding of nothing has no direction): two empty answers agree (1.0), one
    empty answer against a non-empty one does not (0.0)."""
    if not (baseline.tool_calls or candidate.tool_calls):
        empty = (not baseline.text.strip(), not candidate.text.strip())
        if all(empty):
            return 1.0
        if any(empty):
            return 0.0
    return answer_similarity(baseline, candidate, embed)


@dataclass(slots=True)
class AnswerCollector:
    """The answer a stream delivered, put together from its chunks (text and tool calls), to be compared
    once the stream is complete."""

    parts: list[str] = field(default_factory=list)
    tools: dict[int, list[Any]] = field(default_factory=dict)  # index -> [id, name, argument pieces]

    def add(self, chunk: ChatChunk) -> None:
        if chunk.text:
            self.parts.append(chunk.text)
        for piece in chunk.tool_call_chunks:
            slot = self.tools.setdefault(piece.index, [None, None, []])
            slot[0] = slot[0] or piece.id
            slot[1] = slot[1] or piece.name
            if piece.arguments:
                slot[2].append(piece.arguments)

    def response(self, final: ChatChunk) -> ChatResponse:
        """The whole answer (``final``: the stream's last chunk, with its model, usage and records)."""
        calls = []
        for index in sorted(self.tools):
            tid, name, pieces = self.tools[index]
            calls.append(ToolCall(name or "", _arguments("".join(pieces)), tid or ""))
        return ChatResponse(
            text="".join(self.parts), model=final.model or "", provider=final.provider or "", tool_calls=calls,
            finish_reason=final.finish_reason, usage=final.usage, provider_model=final.provider_model,
            attempts=list(final.attempts), cost=final.cost, records=list(final.records),
        )


def _arguments(text: str) -> dict[str, Any]:
    """A streamed tool call's arguments as an object (what does not parse is compared as its text)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"__unparsed__": text}
    return value if isinstance(value, dict) else {"__value__": value}


__all__ = [
    "DEFAULT_SIMILARITY_MODEL",
    "SAMPLE_BY",
    "AnswerCollector",
    "Shadow",
    "ShadowCap",
    "cap_key",
    "compare_answers",
]
