"""The Responses API request (``POST /v1/responses``) as a strict pydantic model: text, images and function
tools, served by translating to a chat call. Stored state (``previous_response_id``, ``conversation``,
``background``) is refused by name: this proxy keeps no responses.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator

from cfgateway.proxy.schema import LOOSE, Metadata, Short, Text, Unit, _Model, check_tool_name


class InputPart(BaseModel):
    model_config = LOOSE
    type: Literal["input_text", "output_text", "input_image", "refusal", "text"]
    text: Text | None = None
    image_url: Annotated[str, Field(max_length=20_000_000)] | None = None
    refusal: Text | None = None
    detail: Literal["auto", "low", "high"] | None = None

    @model_validator(mode="after")
    def _fields(self) -> InputPart:
        if self.type in ("input_text", "output_text", "text") and self.text is None:
            raise ValueError(f"a {self.type} part needs 'text'")
        if self.type == "input_image" and not self.image_url:
            raise ValueError("an input_image part needs 'image_url' (file_id inputs are not served)")
        return self


class MessageItem(BaseModel):
    model_config = LOOSE
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: Text | Annotated[list[InputPart], Field(max_length=1000)]


class FunctionCallItem(BaseModel):
    model_config = LOOSE
    type: Literal["function_call"]
    call_id: Short
    name: Annotated[str, Field(min_length=1, max_length=64)]
    arguments: Text

    @field_validator("arguments")
    @classmethod
    def _args(cls, v: str) -> str:
        try:
            parsed = json.loads(v or "{}")
        except (ValueError, RecursionError):
            raise ValueError("arguments must be a JSON object encoded as a string") from None
        if not isinstance(parsed, dict):
            raise ValueError("arguments must encode a JSON object")
        return v


class FunctionOutputItem(BaseModel):
    model_config = LOOSE
    type: Literal["function_call_output"]
    call_id: Short
    output: Text


def _item_kind(v: Any) -> str:
    if isinstance(v, dict):
        return str(v.get("type", "message"))
    return str(getattr(v, "type", "message"))


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")] | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionOutputItem, Tag("function_call_output")],
    Discriminator(_item_kind),
]


class FunctionTool(BaseModel):
    model_config = LOOSE
    type: Literal["function"]
    name: str
    description: Annotated[str, Field(max_length=100_000)] | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    _name = field_validator("name")(classmethod(lambda cls, v: check_tool_name(v)))


class NamedTool(BaseModel):
    model_config = LOOSE
    type: Literal["function"]
    name: str


class TextFormat(BaseModel):
    model_config = LOOSE
    type: Literal["text", "json_object", "json_schema"]
    name: Short = "response"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: Short | None = None

    @model_validator(mode="after")
    def _schema(self) -> TextFormat:
        if self.type == "json_schema" and self.schema_ is None:
            raise ValueError("format type 'json_schema' needs 'schema'")
        return self


class TextOptions(BaseModel):
    model_config = LOOSE
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(BaseModel):
    model_config = LOOSE
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ResponsesRequest(_Model):
    """``POST /v1/responses``."""

    input: Text | Annotated[list[InputItem], Field(min_length=1)]
    instructions: Text | None = None
    tools: Annotated[list[FunctionTool], Field(max_length=256)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedTool | None = None
    parallel_tool_calls: bool | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Unit | None = None
    max_output_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    stream: bool | None = None
    text: TextOptions | None = None
    reasoning: Reasoning | None = None
    metadata: Metadata | None = None
    user: Short | None = None
    store: bool | None = None
    previous_response_id: Short | None = None
    background: bool | None = None
    include: list[Short] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    service_tier: Literal["auto", "default"] | None = None
    safety_identifier: Short | None = None
    prompt_cache_key: Short | None = None
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _tool_choice(self) -> ResponsesRequest:
        tc = self.tool_choice
        if isinstance(tc, NamedTool) and tc.name not in {t.name for t in self.tools or []}:
            raise ValueError(f"tool_choice names {tc.name!r}, which is not among 'tools'")
        return self


__all__ = ["FunctionCallItem", "FunctionOutputItem", "InputPart", "MessageItem", "ResponsesRequest"]
