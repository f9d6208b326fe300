"""OpenAI chat-completions wire, server side (the proxy's direction): request -> ChatRequest,
ChatResponse/ChatChunk -> OpenAI JSON. Pure functions.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from cfgateway.types import ChatChunk, ChatRequest, ChatResponse, Message, Role, ToolCall, ToolSpec, Usage
from cfgateway.wire.common import new_tool_call_id, parse_arguments

_ROLES = {"system", "user", "assistant", "tool", "developer"}
_SAMPLING = ("temperature", "max_tokens", "top_p", "top_k", "seed", "frequency_penalty", "presence_penalty",
             "repetition_penalty")


class RequestError(ValueError):
    """A client request the proxy cannot accept; the message names the field."""


def _message(i: int, m: Any) -> Message:
    if not isinstance(m, dict) or m.get("role") not in _ROLES:
        raise RequestError(f"messages[{i}] needs a role among {sorted(_ROLES)}")
    role = cast(Role, "system" if m["role"] == "developer" else m["role"])
    calls = [
        ToolCall(tc["function"]["name"], parse_arguments(tc["function"].get("arguments") or "{}"), tc.get("id", ""))
        for tc in m.get("tool_calls") or []
    ]
    return Message(role, m.get("content"), calls, m.get("tool_call_id"), m.get("name"))


def _tool_choice(tc: Any) -> str | None:
    if tc is None or isinstance(tc, str):
        return tc
    if isinstance(tc, dict) and tc.get("type") == "function":
        return str(tc["function"]["name"])
    raise RequestError(f"unsupported tool_choice {tc!r}")


def parse_chat_request(body: Any) -> tuple[str, ChatRequest, bool, bool]:
    """``(model, request, stream, include_usage)`` from an OpenAI chat-completions body."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise RequestError("`model` is required (a cfgateway model string or a configured alias)")
    if not isinstance(messages, list) or not messages:
        raise RequestError("`messages` must be a non-empty list")
    tools = [
        ToolSpec(t["function"]["name"], t["function"].get("description", ""),
                 t["function"].get("parameters") or {"type": "object", "properties": {}})
        for t in body.get("tools") or []
        if t.get("type") == "function"
    ]
    stop = body.get("stop")
    req = ChatRequest(
        [_message(i, m) for i, m in enumerate(messages)],
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice")),
        response_format=body.get("response_format"),
        stop=[stop] if isinstance(stop, str) else stop,
        user=body.get("user"),
        metadata=dict(body.get("metadata") or {}),
    )
    for name in _SAMPLING:
        if body.get(name) is not None:
            setattr(req, name, body[name])
    if body.get("max_completion_tokens") is not None and req.max_tokens is None:
        req.max_tokens = body["max_completion_tokens"]
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return model, req, bool(body.get("stream")), include_usage


def usage_json(u: Usage | None) -> dict[str, Any] | None:
    if u is None:
        return None
    out: dict[str, Any] = {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
                           "total_tokens": u.total_tokens or u.input_tokens + u.output_tokens,
                           "prompt_tokens_details": {"cached_tokens": u.cached_tokens}}
    if u.neurons is not None:
        out["neurons"] = u.neurons
    return out


def _tool_calls_json(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": tc.id or new_tool_call_id(), "type": "function",
             "function": {"name": tc.name, "arguments": json.dumps(tc.arguments)}} for tc in calls]


def render_chat(resp: ChatResponse, model: str, completion_id: str) -> dict[str, Any]:
    """A ``chat.completion`` object; ``model`` echoes what the client asked for."""
    message: dict[str, Any] = {"role": "assistant", "content": resp.text if resp.text or not resp.tool_calls else None}
    if resp.tool_calls:
        message["tool_calls"] = _tool_calls_json(resp.tool_calls)
    if resp.reasoning:
        message["reasoning_content"] = resp.reasoning
    return {
        "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": resp.finish_reason or "stop"}],
        "usage": usage_json(resp.usage),
    }


def render_chunk(chunk: ChatChunk, model: str, completion_id: str, *, first: bool) -> dict[str, Any]:
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
    return {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": chunk.finish_reason}]}


def render_usage_chunk(usage: Usage | None, model: str, completion_id: str) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [], "usage": usage_json(usage)}


def render_embeddings(vectors: list[list[float]], model: str, usage: Usage | None) -> dict[str, Any]:
    tokens = usage.input_tokens if usage else 0
    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def render_error(message: str, *, type_: str, code: str | int | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, "param": None}}


__all__ = [
    "RequestError",
    "parse_chat_request",
    "render_chat",
    "render_chunk",
    "render_embeddings",
    "render_error",
    "render_usage_chunk",
    "usage_json",
]
