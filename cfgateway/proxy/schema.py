"""The OpenAI request shapes the proxy accepts (chat completions, embeddings), as strict pydantic models.

Every field a client may send is declared: unknown fields, wrong types, out-of-range numbers, NaN and
fractional token counts are refused with a 400 that names the field (``param``), never sent upstream.
Values the proxy cannot serve (``logprobs``, ``logit_bias``, ``n`` above its limit, audio) are refused
in :mod:`cfgateway.proxy.convert`, also by name. Responses API shapes are in :mod:`cfgateway.proxy.schema_responses`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")
LOOSE = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")  # parts whose extra keys are harmless

# A cfgateway model string, an alias or a bare name: letters, digits and ``@ / . _ - : +`` only, no ``..``,
# ``?``, ``#``, ``%``, whitespace or control characters; it ends up in an upstream URL path.
MODEL_RE = re.compile(r"^[A-Za-z0-9@][A-Za-z0-9@/._:+-]{0,199}$")
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_TOKENS = 1_000_000

Text = Annotated[str, Field(max_length=4_000_000)]
Short = Annotated[str, Field(max_length=512)]


def check_model(value: str) -> str:
    """The model field as sent, or ValueError naming what is wrong with it."""
    if not MODEL_RE.match(value) or ".." in value or any(seg in ("", ".") for seg in value.split("/")):
        raise ValueError(
            "model must be a cfgateway model string ('@cf/meta/…', 'openai/gpt-4o-mini'), an alias or a bare "
            "name with the default provider: letters, digits and @/._:+- only, no '..', at most 200 characters"
        )
    return value


def check_tool_name(value: str) -> str:
    """A function name as sent, or ValueError (it is echoed into upstream bodies and tool-call ids)."""
    if not TOOL_NAME_RE.match(value):
        raise ValueError("a function name is 1-64 characters among a-z, A-Z, 0-9, _ . -")
    return value


ModelName = Annotated[str, Field(min_length=1, max_length=200)]


class _Model(BaseModel):
    model_config = STRICT
    model: ModelName = ""  # left out: the proxy's configured default (chat_model / embed_model), or a 400

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        return check_model(v)


class ImageURL(BaseModel):
    model_config = LOOSE
    url: Annotated[str, Field(max_length=20_000_000)]
    detail: Literal["auto", "low", "high"] | None = None


class ContentPart(BaseModel):
    """``{"type": "text", "text"}`` or ``{"type": "image_url", "image_url": {"url"}}``."""

    model_config = LOOSE
    type: Literal["text", "image_url", "input_text", "input_image"]
    text: Text | None = None
    image_url: ImageURL | None = None

    @model_validator(mode="after")
    def _fields(self) -> ContentPart:
        if self.type in ("text", "input_text") and self.text is None:
            raise ValueError("a text part needs 'text'")
        if self.type in ("image_url", "input_image") and self.image_url is None:
            raise ValueError("an image part needs 'image_url': {'url': …}")
        return self


Content = Text | Annotated[list[ContentPart], Field(max_length=1000)]


class FunctionCall(BaseModel):
    model_config = LOOSE
    name: Annotated[str, Field(min_length=1, max_length=64)]
    arguments: Text = "{}"

    @field_validator("arguments")
    @classmethod
    def _arguments(cls, v: str) -> str:
        try:
            parsed = json.loads(v or "{}")
        except (ValueError, RecursionError):
            raise ValueError('arguments must be a JSON object in a string, e.g. \'{"city": "Paris"}\'') from None
        if not isinstance(parsed, dict):
            raise ValueError("arguments must encode a JSON object")
        return v


class ToolCallIn(BaseModel):
    model_config = LOOSE
    id: Short = ""
    type: Literal["function"] = "function"
    function: FunctionCall


Role = Literal["system", "developer", "user", "assistant", "tool"]


class ChatMessage(BaseModel):
    model_config = LOOSE
    role: Role
    content: Content | None = None
    name: Short | None = None
    tool_calls: Annotated[list[ToolCallIn], Field(max_length=128)] | None = None
    tool_call_id: Short | None = None
    refusal: Text | None = None
    reasoning_content: Text | None = None

    @model_validator(mode="after")
    def _by_role(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs 'tool_call_id' (the id of the assistant's tool call)")
        if self.role != "assistant" and self.tool_calls:
            raise ValueError("only assistant messages carry 'tool_calls'")
        if self.role != "assistant" and self.content is None:
            raise ValueError(f"a {self.role} message needs 'content'")
        return self


class FunctionDef(BaseModel):
    model_config = LOOSE
    name: str
    description: Annotated[str, Field(max_length=100_000)] | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    _name = field_validator("name")(classmethod(lambda cls, v: check_tool_name(v)))


class Tool(BaseModel):
    model_config = LOOSE
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(BaseModel):
    model_config = LOOSE
    name: str


class ToolChoiceFunction(BaseModel):
    model_config = LOOSE
    type: Literal["function"]
    function: NamedFunction


class JSONSchemaFormat(BaseModel):
    model_config = LOOSE
    name: Short = "response"
    description: Short | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = LOOSE
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type 'json_schema' needs 'json_schema': {'name', 'schema'}")
        return self


class StreamOptions(BaseModel):
    model_config = LOOSE
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


MetaValue = Annotated[str, Field(max_length=512)] | int | float | bool
Metadata = Annotated[dict[Annotated[str, Field(max_length=64)], MetaValue], Field(max_length=16)]
Stop = Annotated[str, Field(min_length=1, max_length=256)]
Unit = Annotated[float, Field(ge=0, le=1)]
Penalty = Annotated[float, Field(ge=-2, le=2)]
Tokens = Annotated[int, Field(ge=1, le=MAX_TOKENS)]


class ChatCompletionRequest(_Model):
    """``POST /v1/chat/completions``."""

    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=5)] | None = None
    top_p: Unit | None = None
    top_k: Annotated[int, Field(ge=1, le=1000)] | None = None
    max_tokens: Tokens | None = None
    max_completion_tokens: Tokens | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    stop: Stop | Annotated[list[Stop], Field(max_length=16)] | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    repetition_penalty: Annotated[float, Field(ge=0, le=2)] | None = None
    tools: Annotated[list[Tool], Field(max_length=256)] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: Short | None = None
    metadata: Metadata | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    store: bool | None = None
    service_tier: Literal["auto", "default"] | None = None
    modalities: list[Literal["text"]] | None = None
    safety_identifier: Short | None = None
    prompt_cache_key: Short | None = None

    @model_validator(mode="after")
    def _tool_choice(self) -> ChatCompletionRequest:
        tc = self.tool_choice
        if isinstance(tc, ToolChoiceFunction) and tc.function.name not in {t.function.name for t in self.tools or []}:
            raise ValueError(f"tool_choice names {tc.function.name!r}, which is not among 'tools'")
        if tc == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs 'tools'")
        return self


EmbeddingText = Annotated[str, Field(max_length=1_000_000)]


class EmbeddingRequest(_Model):
    """``POST /v1/embeddings``. Token-id inputs (lists of integers) are refused: the routes take text."""

    input: EmbeddingText | Annotated[list[EmbeddingText], Field(min_length=1)]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1, le=65_536)] | None = None
    user: Short | None = None
    metadata: Metadata | None = None


def error_param(exc: ValidationError) -> tuple[str, str]:
    """``(message, param)`` for the first error, ``param`` in OpenAI's form: ``messages[0].content``."""
    err = exc.errors(include_url=False)[0]
    parts: list[str] = []
    for item in err.get("loc", ()):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif _is_field(item):
            parts.append(("." if parts else "") + item)
    param = "".join(parts).replace(".schema_", ".schema")
    msg = str(err.get("msg", "invalid value"))
    if err.get("type") == "extra_forbidden":
        msg = f"unrecognized request argument {param!r}: this proxy does not serve it"
    elif err.get("type") == "json_invalid":
        msg = f"the body is not valid JSON: {msg}"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return (f"{param}: {msg}" if param else msg), param


_TYPE_LABELS = {"str", "int", "float", "bool", "list", "dict", "none", "literal"}


def _is_field(item: Any) -> bool:
    """False for the union-member labels pydantic puts in ``loc`` (``str``, ``list[ContentPart]``, …)."""
    if not isinstance(item, str) or not item:
        return False
    if item in _TYPE_LABELS or item.startswith(("literal[", "function-")) or "[" in item:
        return False
    return item not in ("ToolChoiceFunction", "NamedTool", "ContentPart", "is-instance", "message", "function_call",
                        "function_call_output")


__all__ = [
    "MODEL_RE",
    "ChatCompletionRequest",
    "ChatMessage",
    "ContentPart",
    "EmbeddingRequest",
    "Tool",
    "check_model",
    "error_param",
]
