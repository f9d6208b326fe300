"""Validated OpenAI requests -> the core's :class:`~cfgateway.types.ChatRequest`.

What the proxy cannot serve is refused here by name (400, ``param`` set), never dropped: token
log-probabilities, ``logit_bias``, stored completions, ``n`` above the configured limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from cfgateway.proxy.schema import ChatCompletionRequest, ChatMessage, ContentPart, ResponseFormat
from cfgateway.types import ChatRequest, Message, Role, ToolCall, ToolSpec
from cfgateway.wire.openai_server import RequestError


@dataclass(slots=True)
class ChatCall:
    """What a chat-completions request asks of the core."""

    model: str
    request: ChatRequest
    stream: bool
    include_usage: bool
    n: int


def _part(p: ContentPart) -> dict[str, Any]:
    if p.type in ("text", "input_text"):
        return {"type": "text", "text": p.text or ""}
    assert p.image_url is not None
    return {"type": "image_url", "image_url": {"url": p.image_url.url}}


def _content(content: str | list[ContentPart] | None) -> str | list[dict[str, Any]] | None:
    if content is None or isinstance(content, str):
        return content
    return [_part(p) for p in content]


def to_message(m: ChatMessage) -> Message:
    role = cast(Role, "system" if m.role == "developer" else m.role)
    calls = [ToolCall(tc.function.name, json.loads(tc.function.arguments or "{}"), tc.id)
             for tc in m.tool_calls or []]
    return Message(role, _content(m.content), calls, m.tool_call_id, m.name)


def response_format(rf: ResponseFormat | None) -> dict[str, Any] | None:
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_object":
        return {"type": "json_object"}
    assert rf.json_schema is not None
    js = rf.json_schema
    return {"type": "json_schema",
            "json_schema": {"name": js.name, "schema": js.schema_, "strict": bool(js.strict)}}


def refuse_unserved(body: ChatCompletionRequest, max_n: int) -> None:
    """Refuse, by name, what a route cannot serve (never silently one choice or no logprobs)."""
    if body.logprobs or body.top_logprobs:
        param = "logprobs" if body.logprobs else "top_logprobs"
        raise RequestError("log-probabilities are not served by this proxy (Workers AI and the gateway routes do not "
                           "return them); leave logprobs/top_logprobs unset", param)
    if body.logit_bias:
        raise RequestError("logit_bias is not served by this proxy; leave it unset", "logit_bias")
    if body.store:
        raise RequestError("this proxy does not store completions; leave store unset or false", "store")
    if body.n is not None and body.n > max_n:
        raise RequestError(f"n={body.n} is above this proxy's limit of {max_n} choices per request "
                           f"(--max-n); ask for at most {max_n}", "n")


def chat_call(body: ChatCompletionRequest, model: str, max_n: int) -> ChatCall:
    refuse_unserved(body, max_n)
    tools = [ToolSpec(t.function.name, t.function.description or "",
                      t.function.parameters or {"type": "object", "properties": {}}) for t in body.tools or []]
    tc = body.tool_choice
    choice = tc if isinstance(tc, str) or tc is None else tc.function.name
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    extra: dict[str, Any] = {}
    if body.reasoning_effort is not None:
        extra["reasoning_effort"] = body.reasoning_effort
    metadata: dict[str, Any] = dict(body.metadata or {})
    req = ChatRequest(
        [to_message(m) for m in body.messages], tools=tools, tool_choice=choice,
        response_format=response_format(body.response_format), temperature=body.temperature,
        max_tokens=body.max_tokens if body.max_tokens is not None else body.max_completion_tokens,
        top_p=body.top_p, top_k=body.top_k, seed=body.seed, stop=stop, frequency_penalty=body.frequency_penalty,
        presence_penalty=body.presence_penalty, repetition_penalty=body.repetition_penalty, extra_body=extra,
        user=body.user, metadata=metadata,
    )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return ChatCall(model, req, bool(body.stream), include_usage, body.n or 1)


__all__ = ["ChatCall", "chat_call", "refuse_unserved", "response_format", "to_message"]
