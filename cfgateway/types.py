"""Framework-free value types shared by every layer.

Plain dataclasses (not pydantic models) because they sit on the per-call hot path:
building and reading them must cost microseconds, not tens of microseconds.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
Operation = Literal["chat", "embed"]


class Secret:
    """A string that never shows itself in ``repr``/``str``/format output.

    Mirrors pydantic's ``SecretStr`` API (``get_secret_value``) without importing pydantic
    on the core client's import path.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __format__(self, spec: str) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:  # pickling keeps the value, never prints it
        return (Secret, (self._value,))


@dataclass(slots=True)
class Usage:
    """Token usage of one request. ``neurons`` is Workers AI's billing unit (a float)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    neurons: float | None = None

    def __add__(self, other: Usage) -> Usage:
        neurons = None
        if self.neurons is not None or other.neurons is not None:
            neurons = (self.neurons or 0.0) + (other.neurons or 0.0)
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_tokens + other.cached_tokens,
            neurons,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "neurons": self.neurons,
        }


@dataclass(slots=True)
class ToolCall:
    """A complete tool call: ``arguments`` is always a parsed JSON object."""

    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass(slots=True)
class ToolCallChunk:
    """A streamed piece of a tool call; ``arguments`` is a partial JSON string."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class ToolSpec:
    """A tool the model may call; ``parameters`` is a JSON schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


# Content parts: {"type": "text", "text": ...} or {"type": "image_url", "image_url": {"url": ...}}
ContentPart = dict[str, Any]


@dataclass(slots=True)
class Message:
    role: Role
    content: str | list[ContentPart] | None = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text, content parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.get("text", "") for p in self.content if p.get("type") == "text")


ToolChoice = Literal["auto", "none", "required"] | str  # a tool name forces that tool


@dataclass(slots=True)
class ChatRequest:
    """Everything a chat call can carry; ``None`` means "not sent" (the model's default)."""

    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    # {"type": "json_object"} or {"type": "json_schema", "json_schema": {<schema>}}
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    # Documented extra fields passed through as-is (e.g. reasoning_effort, lora, raw).
    extra_body: dict[str, Any] = field(default_factory=dict)
    # Per-call metadata: user id, tags (flows to cf-aig-metadata and the ledger).
    user: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class GatewayMeta:
    """The ``cf-aig-*`` response headers, parsed."""

    cache_status: str | None = None
    log_id: str | None = None
    event_id: str | None = None
    request_id: str | None = None
    step: int | None = None
    model: str | None = None
    provider: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}  # type: ignore[attr-defined]


@dataclass(slots=True)
class AttemptInfo:
    """One attempt of a call (for fallback reporting): which route and how it ended."""

    model: str
    outcome: str  # "ok" or the error class name
    error: str | None = None
    latency_s: float = 0.0


@dataclass(slots=True)
class ChatResponse:
    text: str
    model: str  # model string of the route that answered (docs/architecture.md convention)
    provider: str  # "workers-ai", "openai", ...
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    provider_model: str | None = None  # the provider's own id when it differs
    reasoning: str | None = None
    parsed: Any = None  # JSON-mode object, when the model returned one
    gateway: GatewayMeta = field(default_factory=GatewayMeta)
    attempts: list[AttemptInfo] = field(default_factory=list)
    cost: Decimal | None = None  # USD; None = unknown price (never a silent 0)
    id: str | None = None
    records: list[UsageRecord] = field(default_factory=list)  # one per attempt


@dataclass(slots=True)
class ChatChunk:
    """One streamed delta. The last chunk of a complete stream has ``final=True`` and usage."""

    text: str = ""
    reasoning: str = ""
    tool_call_chunks: list[ToolCallChunk] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    final: bool = False
    # Filled in by the client on the first and last chunks.
    model: str | None = None
    provider: str | None = None
    provider_model: str | None = None
    gateway: GatewayMeta | None = None
    attempts: list[AttemptInfo] = field(default_factory=list)
    cost: Decimal | None = None
    records: list[UsageRecord] = field(default_factory=list)


@dataclass(slots=True, repr=False)
class EmbedResponse:
    vectors: list[list[float]]
    model: str
    provider: str
    usage: Usage | None = None
    gateway: GatewayMeta = field(default_factory=GatewayMeta)
    attempts: list[AttemptInfo] = field(default_factory=list)
    cost: Decimal | None = None  # what was sent (0 when everything came from the cache); None when unpriced
    records: list[UsageRecord] = field(default_factory=list)
    cached: int = 0  # inputs answered by the client's embedding cache (cfgateway.cache), not sent

    def __repr__(self) -> str:
        # The shape, not the floats: a full repr of 5,000 x 768 floats takes ~0.5 s and megabytes, and
        # asyncio.run() reprs its main task's result on the way out (CPython 3.11's SIGINT check).
        dims = len(self.vectors[0]) if self.vectors else 0
        return (f"EmbedResponse(vectors=<{len(self.vectors)} x {dims}>, model={self.model!r}, "
                f"provider={self.provider!r}, usage={self.usage!r}, cost={self.cost!r}, "
                f"attempts={len(self.attempts)}, records={len(self.records)}, cached={self.cached})")


_id_prefix = os.urandom(8).hex()
_id_counter = itertools.count()


def _reseed_ids() -> None:
    """A forked child gets its own prefix, so its ids never repeat the parent's."""
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = os.urandom(8).hex(), itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_ids)


def new_call_id() -> str:
    """A unique 32-hex-digit call id: a random per-process prefix and a counter (cheaper than uuid4)."""
    return f"{_id_prefix}{next(_id_counter):016x}"


@dataclass(slots=True)
class CallContext:
    """Per-call facts that outlive one attempt: ids, user, deadline, attempt numbering."""

    call_id: str = field(default_factory=new_call_id)
    user: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0
    fallback: bool = False
    deadline: float | None = None  # time.monotonic() value


# ---------------------------------------------------------------------------------------------
# Usage records: one per attempt (the ledger's rows; responses, chunks and errors carry them).

_record_counter = itertools.count()
_record_prefix: tuple[int, str] = (0, "")


def new_id() -> str:
    """Unique across processes and hosts, cheap: a per-process random prefix + a counter."""
    global _record_prefix
    pid = os.getpid()
    if _record_prefix[0] != pid:  # new process (including after fork)
        _record_prefix = (pid, os.urandom(8).hex())
    return f"{_record_prefix[1]}-{next(_record_counter)}"


@dataclass(slots=True)
class UsageRecord:
    """One attempt of one call: what was used, what it cost, how it ended."""

    ts: float  # wall-clock start of the attempt (epoch seconds); its UTC day is its bucket
    model: str
    provider: str
    operation: str  # "chat" | "embed"
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # a subset of input_tokens
    neurons: float | None = None
    cost: Decimal | None = None  # USD; None = unknown price (never a silent 0)
    latency_s: float = 0.0
    ttft_s: float | None = None
    outcome: str = "ok"  # or the error class name
    attempt: int = 0
    fallback: bool = False
    cache_status: str | None = None
    log_id: str | None = None
    stream: bool = False
    stream_complete: bool | None = None
    user: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""
    # Identifies this record in every ledger: adding it twice (a spooled record replayed after a write whose
    # answer was lost) counts it once. Not part of equality.
    record_id: str = field(default_factory=new_id, compare=False)
    # Shadow comparisons (outcome "shadow"; the record's own figures are the candidate's):
    similarity: float | None = None  # cosine of the two answers' embeddings, or tool-call agreement (0..1)
    baseline: str | None = None  # the route whose answer it was compared against
    baseline_latency_s: float | None = None
    baseline_cost: Decimal | None = None
    error: str | None = None  # the candidate's error class name when it failed

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def shadow(self) -> bool:
        """Spent on a shadow comparison, not an answer a caller got: a pair's record (the candidate's side),
        or the embedding that compared the pair (:attr:`shadow_pair` tells them apart)."""
        return self.outcome == "shadow"

    @property
    def shadow_pair(self) -> bool:
        """A shadow pair's record (the candidate's side, with the similarity), not the embedding that compared it
        (``tags["shadow"] == "similarity"``)."""
        return self.outcome == "shadow" and self.tags.get("shadow") != "similarity"

    @property
    def succeeded(self) -> bool:
        """An answer came back: ``ok``, or a shadow whose candidate did not fail."""
        return self.outcome == "ok" or (self.outcome == "shadow" and self.error is None)

    @property
    def cache_hit(self) -> bool:
        return (self.cache_status or "").upper() == "HIT"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``cost`` as a decimal string)."""
        d = {name: getattr(self, name) for name in _FIELDS}
        d["cost"] = None if self.cost is None else str(self.cost)
        d["baseline_cost"] = None if self.baseline_cost is None else str(self.baseline_cost)
        d["tags"] = dict(self.tags)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UsageRecord:
        kw = {k: d[k] for k in _FIELDS if k in d}
        cost = kw.get("cost")
        kw["cost"] = None if cost is None else Decimal(str(cost))
        base = kw.get("baseline_cost")
        kw["baseline_cost"] = None if base is None else Decimal(str(base))
        return cls(**kw)


_FIELDS: tuple[str, ...] = tuple(UsageRecord.__dataclass_fields__)
