"""Anthropic Messages wire format (``anthropic/v1/messages`` behind the gateway).

Differences from the OpenAI shape handled here: system prompt at top level, tool results as
``tool_result`` blocks in a user message, assistant tool calls as ``tool_use`` blocks, images as
``image`` blocks, ``max_tokens`` required, ``stop_sequences``, no ``response_format``, and a stream
of named events ending with ``message_stop``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cfgateway.errors import ConfigError, MalformedResponseError
from cfgateway.types import ChatChunk, ChatRequest, ChatResponse, ContentPart, Message, ToolCall, ToolCallChunk, Usage
from cfgateway.wire.common import (
    BaseStreamParser,
    load_event,
    new_tool_call_id,
    normalise_finish,
    parse_arguments,
    raise_for_error_event,
    sub,
)

if TYPE_CHECKING:
    from cfgateway.wire.sse import SSEEvent

__all__ = [
    "CLIENT_SIDE_STOP",
    "DEFAULT_MAX_TOKENS",
    "StreamParser",
    "build_chat_body",
    "build_embed_body",
    "parse_chat",
    "parse_embed",
    "parse_usage",
]

DEFAULT_MAX_TOKENS = 1024  # Anthropic requires max_tokens; used when the request has none


# ---------------------------------------------------------------------------------------------
# Request bodies


def _image_block(part: ContentPart) -> dict[str, Any]:
    ref = part.get("image_url")
    url = ref.get("url", "") if isinstance(ref, dict) else str(ref or "")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        if ";base64" not in header:
            raise ValueError("Anthropic image data URLs must be base64-encoded (data:<type>;base64,...)")
        media_type = header[5:].split(";", 1)[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: str | list[ContentPart] | None) -> list[dict[str, Any]]:
    if not content:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    out: list[dict[str, Any]] = []
    for p in content:
        kind = p.get("type")
        if kind == "text":
            if p.get("text"):  # Anthropic rejects empty text blocks
                out.append({"type": "text", "text": p["text"]})
        elif kind == "image_url":
            out.append(_image_block(p))
        else:
            out.append(p)  # already an Anthropic block (image, document, ...)
    return out


def _convert(m: Message) -> tuple[str, str | list[dict[str, Any]]]:
    if m.role == "tool":
        result = m.content if isinstance(m.content, str) else _blocks(m.content)
        block = {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": result or ""}
        return "user", [block]
    if m.role == "assistant" and m.tool_calls:
        uses = [
            {"type": "tool_use", "id": tc.id or new_tool_call_id(), "name": tc.name, "input": tc.arguments}
            for tc in m.tool_calls
        ]
        return "assistant", _blocks(m.content) + uses
    return m.role, m.content if isinstance(m.content, str) else _blocks(m.content)


def convert_messages(messages: list[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """(system, messages): system messages are pulled out; consecutive same-role turns are merged
    (several tool results after one assistant turn become one user message, as Anthropic requires)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            # guess: several system messages (wherever they are) are joined with a blank line
            system.append(m.text())
            continue
        role, content = _convert(m)
        if out and out[-1]["role"] == role:
            prev = out[-1]["content"]
            prev_blocks = _blocks(prev) if isinstance(prev, str) else prev
            out[-1]["content"] = prev_blocks + (_blocks(content) if isinstance(content, str) else content)
        else:
            out.append({"role": role, "content": content})
    return ("\n\n".join(s for s in system if s) or None), out


def _tool_choice(choice: str) -> dict[str, Any]:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    return {"type": "tool", "name": choice}


CLIENT_SIDE_STOP = False


def build_chat_body(req: ChatRequest, model: str | None, *, stream: bool) -> dict[str, Any]:
    rf = req.response_format
    if rf is not None and rf.get("type") != "text":
        raise ValueError(
            "Anthropic's Messages API has no response_format: pass the schema as a tool "
            "(tools=[ToolSpec(name, description, schema)], tool_choice=<that name>) and read the tool call's arguments"
        )
    system, messages = convert_messages(req.messages)
    body: dict[str, Any] = {"model": model} if model else {}
    if system:
        body["system"] = system
    body["messages"] = messages
    body["max_tokens"] = req.max_tokens if req.max_tokens is not None else DEFAULT_MAX_TOKENS
    for key in ("temperature", "top_p", "top_k"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    # seed, frequency/presence/repetition penalties are not Anthropic fields: not sent.
    if req.stop:
        body["stop_sequences"] = req.stop
    if req.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            if t.description
            else {"name": t.name, "input_schema": t.parameters}
            for t in req.tools
        ]
        if req.tool_choice is not None:
            body["tool_choice"] = _tool_choice(req.tool_choice)
    if stream:
        body["stream"] = True
    if req.extra_body:
        body.update(req.extra_body)
    return body


# ---------------------------------------------------------------------------------------------
# Responses


def parse_usage(d: Any) -> Usage | None:
    """Anthropic usage. Its ``input_tokens`` excludes cache reads and cache writes; we add both so
    ``Usage.input_tokens`` is every prompt token (as OpenAI's ``prompt_tokens``), with the cache
    reads also in ``cached_tokens`` (a subset, priced at the cached rate). ``total = in + out``."""
    if not isinstance(d, dict):
        return None
    read = int(d.get("cache_read_input_tokens") or 0)
    inp = int(d.get("input_tokens") or 0) + read + int(d.get("cache_creation_input_tokens") or 0)
    out = int(d.get("output_tokens") or 0)
    return Usage(inp, out, inp + out, read)


def parse_chat(payload: Any) -> ChatResponse:
    if not isinstance(payload, dict):
        raise MalformedResponseError("Anthropic response is not a JSON object", body=str(payload))
    raise_for_error_event(payload)
    content = payload.get("content")
    if not isinstance(content, list):
        raise MalformedResponseError("Anthropic response has no content list", body=json.dumps(payload)[:500])
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    for b in content:
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text":
            texts.append(str(b.get("text", "")))
        elif kind == "tool_use":
            name = str(b.get("name") or "")
            calls.append(ToolCall(name, parse_arguments(b.get("input"), name=name), b.get("id") or new_tool_call_id()))
        elif kind == "thinking":
            thinking.append(str(b.get("thinking", "")))
        elif kind is None:
            raise MalformedResponseError("Anthropic content block without a type", body=str(b))
        # guess: other block kinds (redacted_thinking, server tool blocks) carry no text for us
    model = payload.get("model")
    return ChatResponse(
        text="".join(texts),
        model="",
        provider="",
        tool_calls=calls,
        finish_reason=normalise_finish(payload.get("stop_reason")),
        usage=parse_usage(payload.get("usage")),
        provider_model=model if isinstance(model, str) and model else None,
        reasoning="".join(thinking) or None,
        id=payload.get("id") if isinstance(payload.get("id"), str) else None,
    )


class StreamParser(BaseStreamParser):
    """One Messages stream: message_start, content_block_*, message_delta, message_stop."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # content block index → tool call index

    @property
    def usage(self) -> Usage | None:
        return parse_usage(self._usage) if self._usage else None

    def _merge_usage(self, raw: Any) -> None:
        if isinstance(raw, dict):  # message_delta usage is cumulative: later values replace
            self._usage.update({k: v for k, v in raw.items() if v is not None})

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        if self.done:
            return []
        obj = load_event(event.data)
        raise_for_error_event(obj, model=self.model, in_stream=True)
        kind = obj.get("type") or event.event
        if kind == "content_block_delta":
            chunk = self._delta(obj)
        elif kind == "content_block_start":
            chunk = self._block_start(obj)
        elif kind == "message_start":
            msg = sub(obj, "message")
            self._merge_usage(msg.get("usage"))
            self.provider_model = msg.get("model") or None
            self.id = msg.get("id") or None
            return []
        elif kind == "message_delta":
            delta = sub(obj, "delta")
            if delta.get("stop_reason"):
                self.finish_reason = normalise_finish(delta["stop_reason"])
            self._merge_usage(obj.get("usage"))
            return []
        elif kind == "message_stop":
            self.done = True
            return []
        elif isinstance(kind, str):
            # content_block_stop, ping, and (guess) event types added later: Anthropic documents
            # that new event types may appear and should be ignored.
            return []
        else:
            raise MalformedResponseError("Anthropic stream event without a type", model=self.model, body=event.data)
        return [chunk] if chunk is not None else []

    def _block_start(self, obj: dict[str, Any]) -> ChatChunk | None:
        block = sub(obj, "content_block")
        kind = block.get("type")
        if kind == "tool_use":
            ti = len(self._tool_index)
            self._tool_index[obj.get("index", ti)] = ti
            # the block's "input" is always {} here; arguments arrive as input_json_delta fragments
            tc = ToolCallChunk(ti, block.get("id") or new_tool_call_id(), block.get("name"), "")
            return self._chunk("", "", [tc])
        if kind == "text" and block.get("text"):
            return self._chunk(block["text"], "", [])
        if kind == "thinking" and block.get("thinking"):
            return self._chunk("", block["thinking"], [])
        return None

    def _delta(self, obj: dict[str, Any]) -> ChatChunk | None:
        delta = sub(obj, "delta")
        kind = delta.get("type")
        if kind == "text_delta":
            return self._chunk(str(delta.get("text", "")), "", []) if delta.get("text") else None
        if kind == "input_json_delta":
            ti = self._tool_index.get(obj.get("index", -1))
            if ti is None:
                raise MalformedResponseError("input_json_delta for an unknown block", model=self.model, body=str(obj))
            part = delta.get("partial_json") or ""
            return self._chunk("", "", [ToolCallChunk(ti, None, None, part)]) if part else None
        if kind == "thinking_delta":
            return self._chunk("", str(delta.get("thinking", "")), []) if delta.get("thinking") else None
        return None  # signature_delta, citations_delta: nothing for us


# ---------------------------------------------------------------------------------------------
# Embeddings: Anthropic has no embeddings API


def build_embed_body(
    texts: list[str], model: str | None, *, pooling: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    raise ConfigError("Anthropic has no embeddings API: use an embedding model such as @cf/baai/bge-base-en-v1.5")


def parse_embed(payload: Any, *, expected: int | None = None) -> tuple[list[list[float]], Usage | None]:
    raise ConfigError("Anthropic has no embeddings API")
