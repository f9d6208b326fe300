"""OpenAI chat-completions + embeddings wire format.

Used for Workers AI's ``/ai/v1`` endpoints, the gateway's OpenAI-wire providers (openai, groq,
deepseek, mistral, custom-*, ...) and the gateway's ``compat`` endpoint. The Workers AI native
module reuses the OpenAI-shaped pieces from here (newer models answer in this shape).
"""

from __future__ import annotations

import array
import base64
import json
import sys
from typing import TYPE_CHECKING, Any

from cfgateway.errors import MalformedResponseError
from cfgateway.types import ChatChunk, ChatRequest, ChatResponse, Message, ToolCallChunk, ToolSpec, Usage
from cfgateway.wire.common import (
    BaseStreamParser,
    flatten_content,
    load_event,
    new_tool_call_id,
    normalise_finish,
    parse_tool_call,
    parse_usage,
    raise_for_error_event,
    sub,
)

if TYPE_CHECKING:
    from cfgateway.wire.sse import SSEEvent

__all__ = [
    "CLIENT_SIDE_STOP",
    "StreamParser",
    "build_chat_body",
    "build_embed_body",
    "parse_chat",
    "parse_embed",
    "parse_usage",
]

_SAMPLING = ("temperature", "max_tokens", "top_p", "seed", "frequency_penalty", "presence_penalty")


# ---------------------------------------------------------------------------------------------
# Request bodies


def message_to_openai(m: Message, *, names: bool = True) -> dict[str, Any]:
    """One message in OpenAI's shape (also accepted by Workers AI native)."""
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": flatten_content(m.content)}
    msg: dict[str, Any] = {"role": m.role, "content": flatten_content(m.content)}
    if m.role == "assistant" and m.tool_calls:
        msg["tool_calls"] = [
            {
                "id": tc.id or new_tool_call_id(),
                "type": "function",
                "function": {"name": tc.name, "arguments": json.dumps(tc.arguments)},
            }
            for tc in m.tool_calls
        ]
    if names and m.name:
        msg["name"] = m.name
    return msg


def tools_to_openai(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def wrap_response_format(rf: dict[str, Any]) -> dict[str, Any]:
    """OpenAI wants ``{"type": "json_schema", "json_schema": {name, schema, strict}}``."""
    if rf.get("type") != "json_schema":
        return rf  # json_object / text pass through
    js = rf.get("json_schema", rf.get("schema"))
    if not isinstance(js, dict):
        raise ValueError("response_format json_schema needs a JSON schema object under 'json_schema'")
    if isinstance(js.get("schema"), dict):  # already OpenAI's wrapper: keep it, add a missing name
        if "name" in js and "json_schema" in rf:
            return rf
        return {"type": "json_schema", "json_schema": {"name": "response", **js}}
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": js, "strict": False}}


def add_sampling(body: dict[str, Any], req: ChatRequest, fields: tuple[str, ...] = _SAMPLING) -> None:
    for key in fields:
        value = getattr(req, key)
        if value is not None:
            body[key] = value


CLIENT_SIDE_STOP = False


def build_chat_body(req: ChatRequest, model: str | None, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model} if model else {}
    body["messages"] = [message_to_openai(m) for m in req.messages]
    # guess: tool_choice without tools is rejected by OpenAI, so it is only sent alongside tools
    if req.tools:
        body["tools"] = tools_to_openai(req.tools)
        choice = req.tool_choice
        if choice is not None:
            named = choice not in ("auto", "none", "required")
            body["tool_choice"] = {"type": "function", "function": {"name": choice}} if named else choice
    if req.response_format is not None:
        body["response_format"] = wrap_response_format(req.response_format)
    # guess: "max_tokens" (not "max_completion_tokens"): the field every OpenAI-compatible
    # provider and the compat endpoint accept; o-series callers can use extra_body.
    add_sampling(body, req)
    if req.stop:
        body["stop"] = req.stop
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if req.extra_body:
        body.update(req.extra_body)
    return body


# ---------------------------------------------------------------------------------------------
# Responses


def content_text(content: Any) -> tuple[str, Any]:
    """(text, parsed) from a message's ``content``: a string, null, a part list, or a JSON-mode object."""
    if isinstance(content, str):
        return content, None
    if content is None:
        return "", None
    if isinstance(content, list) and all(isinstance(p, dict) and "type" in p for p in content):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text"), None
    if isinstance(content, (dict, list)):
        return json.dumps(content), content
    raise MalformedResponseError("message content is neither text nor JSON", body=str(content))


def _reasoning(d: dict[str, Any]) -> str | None:
    r = d.get("reasoning_content") or d.get("reasoning")
    return r if isinstance(r, str) and r else None


def parse_chat(payload: Any) -> ChatResponse:
    """A ``chat.completion`` object (a Cloudflare ``result`` envelope around it is unwrapped)."""
    if isinstance(payload, dict) and "choices" not in payload and isinstance(payload.get("result"), dict):
        raise_for_error_event(payload)
        payload = payload["result"]
    if not isinstance(payload, dict):
        raise MalformedResponseError("chat response is not a JSON object", body=str(payload))
    raise_for_error_event(payload)
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponseError("chat response has no choices", body=json.dumps(payload, default=str))
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedResponseError("chat response choice has no message", body=json.dumps(payload, default=str))
    text, parsed = content_text(message.get("content"))
    tool_calls = [parse_tool_call(tc) for tc in message.get("tool_calls") or ()]
    model = payload.get("model")
    return ChatResponse(
        text=text,
        model="",
        provider="",
        tool_calls=tool_calls,
        finish_reason=normalise_finish(choice.get("finish_reason")) or ("tool_calls" if tool_calls else None),
        usage=parse_usage(payload.get("usage")),
        provider_model=model if isinstance(model, str) and model else None,
        reasoning=_reasoning(message),
        parsed=parsed,
        id=payload.get("id") if isinstance(payload.get("id"), str) else None,
    )


# ---------------------------------------------------------------------------------------------
# Streams


def tool_call_deltas(raw: Any) -> list[ToolCallChunk]:
    """Streamed tool-call deltas; the null-finalisation delta (no id, name or arguments) is dropped."""
    if not raw:
        return []
    if not isinstance(raw, list):
        raise MalformedResponseError("tool_calls in a stream event is not a list", body=str(raw))
    out: list[ToolCallChunk] = []
    for i, tc in enumerate(raw):
        if not isinstance(tc, dict):
            raise MalformedResponseError("streamed tool call is not an object", body=str(tc))
        fn = sub(tc, "function")
        name, args, call_id = fn.get("name"), fn.get("arguments"), tc.get("id")
        if call_id is None and name is None and not args:
            continue
        if isinstance(args, dict):  # some Workers AI models send the arguments object whole
            args = json.dumps(args)
        if name and not call_id:
            call_id = new_tool_call_id()
        index = tc.get("index")
        out.append(ToolCallChunk(index if isinstance(index, int) else i, call_id, name, args or ""))
    return out


class StreamParser(BaseStreamParser):
    """One OpenAI-style SSE stream: ``chat.completion.chunk`` events, then ``[DONE]``.

    Usage: the usage-only chunk (``choices: []``, sent because of ``include_usage``) carries the
    total; without one, the last usage seen wins (providers that put usage on their last chunk).
    """

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self._total: Usage | None = None
        self._last: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        return self._total or self._last

    def _record_usage(self, raw: Any, usage_only: bool) -> None:
        u = parse_usage(raw)
        if u is None:
            return
        if usage_only:
            self._total = u
        else:
            self._last = u

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        if self.done:
            return []
        if event.is_done:
            self.done = True
            return []
        obj = load_event(event.data)
        raise_for_error_event(obj, model=self.model, in_stream=True)
        if "choices" not in obj:
            if "usage" in obj:
                self._record_usage(obj["usage"], True)
                return []
            raise MalformedResponseError("unknown stream event", model=self.model, body=event.data)
        chunk = self._openai_chunk(obj)
        return [chunk] if chunk is not None else []

    def _openai_chunk(self, obj: dict[str, Any]) -> ChatChunk | None:
        choices = obj.get("choices") or []
        if obj.get("usage"):
            self._record_usage(obj["usage"], not choices)
        if self.provider_model is None and isinstance(obj.get("model"), str):
            self.provider_model = obj["model"] or None
            self.id = obj.get("id") if isinstance(obj.get("id"), str) else None
        if not choices:
            return None
        choice = choices[0]
        if not isinstance(choice, dict):
            raise MalformedResponseError("stream choice is not an object", model=self.model, body=str(choice))
        if choice.get("finish_reason"):
            self.finish_reason = normalise_finish(choice["finish_reason"])
        delta = sub(choice, "delta")
        text, _ = content_text(delta.get("content"))
        reasoning = _reasoning(delta) or ""
        tools = tool_call_deltas(delta.get("tool_calls"))
        if text or reasoning or tools:
            return self._chunk(text, reasoning, tools)
        return None


# ---------------------------------------------------------------------------------------------
# Embeddings


def build_embed_body(
    texts: list[str], model: str | None, *, pooling: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    if pooling is not None:
        raise ValueError("pooling is a Workers AI native option; the OpenAI embeddings wire has no such field")
    body: dict[str, Any] = {"model": model} if model else {}
    body["input"] = texts
    if extra:
        body.update(extra)
    return body


def _vector(v: Any) -> list[float]:
    if isinstance(v, list):
        return v
    if isinstance(v, str):  # encoding_format="base64": little-endian float32
        arr = array.array("f")
        arr.frombytes(base64.b64decode(v))
        if sys.byteorder == "big":  # pragma: no cover
            arr.byteswap()
        return arr.tolist()
    raise MalformedResponseError("embedding is neither a list nor base64", body=str(v)[:200])


def parse_embed(payload: Any, *, expected: int | None = None) -> tuple[list[list[float]], Usage | None]:
    if isinstance(payload, dict) and "data" not in payload and isinstance(payload.get("result"), dict):
        payload = payload["result"]
    if not isinstance(payload, dict):
        raise MalformedResponseError("embeddings response is not a JSON object", body=str(payload))
    raise_for_error_event(payload)
    data = payload.get("data")
    if not isinstance(data, list) or not all(isinstance(d, dict) and "embedding" in d for d in data):
        raise MalformedResponseError("embeddings response has no data[].embedding", body=json.dumps(payload)[:500])
    if any("index" in d for d in data):
        data = sorted(data, key=lambda d: d.get("index", 0))
    vectors = [_vector(d["embedding"]) for d in data]
    if not vectors or (expected is not None and len(vectors) != expected):
        raise MalformedResponseError(f"embeddings response has {len(vectors)} rows, expected {expected}")
    return vectors, parse_usage(payload.get("usage"))
