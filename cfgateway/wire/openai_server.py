"""OpenAI chat-completions and embeddings wire, server side (the proxy's direction): ChatResponse,
ChatChunk and vectors -> OpenAI JSON, and the OpenAI error shape. Pure functions.

Request parsing lives with the proxy's pydantic models (:mod:`cfgateway.proxy.schema`); the Responses
API shapes are in :mod:`cfgateway.wire.openai_responses`.
"""

from __future__ import annotations

import base64
import json
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from cfgateway.types import ChatChunk, ChatResponse, ToolCall, Usage
from cfgateway.wire.common import new_tool_call_id


class RequestError(ValueError):
    """A client request the proxy cannot accept: ``param`` names the field, ``status`` is the HTTP status."""

    def __init__(self, message: str, param: str | None = None, *, status: int = 400,
                 type_: str = "invalid_request_error", code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.status = status
        self.type = type_
        self.code = code


def render_error(message: str, *, type_: str, code: str | int | None = None,
                 param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def usage_json(u: Usage | None) -> dict[str, Any] | None:
    if u is None:
        return None
    out: dict[str, Any] = {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
                           "total_tokens": u.total_tokens or u.input_tokens + u.output_tokens,
                           "prompt_tokens_details": {"cached_tokens": u.cached_tokens}}
    if u.neurons is not None:
        out["neurons"] = u.neurons
    return out


def tool_calls_json(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": tc.id or new_tool_call_id(), "type": "function",
             "function": {"name": tc.name, "arguments": json.dumps(tc.arguments)}} for tc in calls]


def _choice(resp: ChatResponse, index: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": resp.text if resp.text or not resp.tool_calls else None,
                               "refusal": None}
    if resp.tool_calls:
        message["tool_calls"] = tool_calls_json(resp.tool_calls)
    if resp.reasoning:
        message["reasoning_content"] = resp.reasoning
    return {"index": index, "message": message, "logprobs": None, "finish_reason": resp.finish_reason or "stop"}


def total_usage(usages: Sequence[Usage | None]) -> Usage | None:
    """The sum of the usages that are known; ``None`` when none is."""
    known = [u for u in usages if u is not None]
    if not known:
        return None
    total = known[0]
    for u in known[1:]:
        total = total + u
    return total


def render_chat(resps: ChatResponse | Sequence[ChatResponse], model: str, completion_id: str,
                created: int) -> dict[str, Any]:
    """A ``chat.completion`` object with one choice per response; ``model`` echoes what the client asked for.

    With several responses (``n``), ``usage`` is their sum: each choice was a call of its own, billed as such.
    """
    items = [resps] if isinstance(resps, ChatResponse) else list(resps)
    return {
        "id": completion_id, "object": "chat.completion", "created": created, "model": model,
        "choices": [_choice(r, i) for i, r in enumerate(items)],
        "usage": usage_json(total_usage([r.usage for r in items])),
        "system_fingerprint": None,
    }


def chunk_delta(chunk: ChatChunk, *, first: bool) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if first:
        delta["role"] = "assistant"
    if chunk.text or first:
        delta["content"] = chunk.text
    if chunk.reasoning:
        delta["reasoning_content"] = chunk.reasoning
    if chunk.tool_call_chunks:
        delta["tool_calls"] = [
            {"index": t.index, **({"id": t.id, "type": "function"} if t.id else {}),
             "function": {**({"name": t.name} if t.name else {}), "arguments": t.arguments}}
            for t in chunk.tool_call_chunks
        ]
    return delta


def render_chunk(chunk: ChatChunk, model: str, completion_id: str, *, first: bool, created: int,
                 index: int = 0) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": index, "delta": chunk_delta(chunk, first=first), "logprobs": None,
                         "finish_reason": chunk.finish_reason}]}


def render_usage_chunk(usage: Usage | None, model: str, completion_id: str, created: int) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage_json(usage)}


def vector_base64(vector: Sequence[float]) -> str:
    """OpenAI's ``encoding_format="base64"``: little-endian float32 bytes, base64-encoded."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def render_embeddings(vectors: list[list[float]], model: str, usage: Usage | None,
                      encoding_format: str = "float") -> dict[str, Any]:
    tokens = usage.input_tokens if usage else 0
    encode = vector_base64 if encoding_format == "base64" else None
    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": encode(v) if encode else v}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


__all__ = [
    "RequestError",
    "chunk_delta",
    "render_chat",
    "render_chunk",
    "render_embeddings",
    "render_error",
    "render_usage_chunk",
    "tool_calls_json",
    "total_usage",
    "usage_json",
    "vector_base64",
]
