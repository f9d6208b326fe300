"""Pure conversions: LlamaIndex messages, tools and tool selections <-> ``cfgateway.types``.

Nothing here does I/O or touches a client; every sync, async and streaming path of
:class:`~llama_index_cfgateway.CloudflareLLM` shares these functions.

History written by another LLM integration converts cleanly: roles, text, images, tool calls
(``ToolCallBlock`` blocks, or OpenAI-style ``additional_kwargs["tool_calls"]``) and tool-call ids
are read; thinking blocks, cache points and citations are left out (another model's own output);
other ``additional_kwargs`` are never sent. A block this adapter cannot send raises
:class:`cfgateway.InvalidInputError` naming the message and block.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    CitableBlock,
    CitationBlock,
    CompletionResponse,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

from cfgateway import ChatChunk, InvalidInputError, Message, ToolCall, ToolSpec, Usage
from cfgateway import ChatResponse as CFResponse

_ROLES = {
    "system": "system", "developer": "system", "user": "user", "assistant": "assistant",
    "chatbot": "assistant", "model": "assistant", "tool": "tool", "function": "tool",
}
_SKIPPED_BLOCKS = (ThinkingBlock, CachePoint, CitationBlock)
RECORDS_KEY = "cfgateway_records"


# ---------------------------------------------------------------------------------------------
# Messages


def _image_url(block: ImageBlock, where: str) -> str:
    if block.image is None and block.path is None and block.url is not None:
        return str(block.url)  # http(s) or data: URL, passed on as-is (never fetched here)
    try:
        data = block.resolve_image(as_base64=True).read().decode("ascii")
    except (ValueError, OSError) as exc:
        raise InvalidInputError(f"{where}: image block cannot be read: {exc}") from None
    return f"data:{block.image_mimetype or 'image/png'};base64,{data}"


def _arguments(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise InvalidInputError(f"{where}: tool call arguments are not valid JSON: {value[:200]!r}") from None
        if isinstance(parsed, dict):
            return parsed
    raise InvalidInputError(f"{where}: tool call arguments must be a JSON object, got {type(value).__name__}")


def _legacy_tool_calls(kwargs: Mapping[str, Any], where: str) -> list[ToolCall]:
    """OpenAI-style ``additional_kwargs["tool_calls"]`` (dicts or SDK objects) -> ToolCalls."""
    calls: list[ToolCall] = []
    for raw in kwargs.get("tool_calls") or ():
        if isinstance(raw, ToolSelection):
            calls.append(ToolCall(raw.tool_name, dict(raw.tool_kwargs), raw.tool_id))
            continue
        get = raw.get if isinstance(raw, Mapping) else lambda k, r=raw: getattr(r, k, None)
        fn = get("function")
        fget = fn.get if isinstance(fn, Mapping) else lambda k, f=fn: getattr(f, k, None)
        name = fget("name") if fn is not None else get("name")
        if not name:
            raise InvalidInputError(f"{where}: a tool call without a function name")
        args = fget("arguments") if fn is not None else get("arguments")
        calls.append(ToolCall(str(name), _arguments(args, where), str(get("id") or "")))
    return calls


def _blocks(message: ChatMessage, where: str) -> tuple[list[dict[str, Any]], bool, list[ToolCall]]:
    parts: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    images = False
    for j, block in enumerate(message.blocks):
        at = f"{where}, block {j}"
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            images = True
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, at)}})
        elif isinstance(block, ToolCallBlock):
            calls.append(ToolCall(block.tool_name, _arguments(block.tool_kwargs, at), block.tool_call_id or ""))
        elif isinstance(block, CitableBlock):
            parts.extend({"type": "text", "text": b.text} for b in block.content if isinstance(b, TextBlock))
        elif isinstance(block, _SKIPPED_BLOCKS):
            continue
        else:
            kind = getattr(block, "block_type", type(block).__name__)
            raise InvalidInputError(f"{at}: {kind!r} blocks cannot be sent to Cloudflare models (text and images can)")
    return parts, images, calls


def to_message(message: ChatMessage, index: int = 0) -> Message:
    where = f"message {index}"
    role_name = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
    role = _ROLES.get(role_name)
    if role is None:
        raise InvalidInputError(f"{where}: role {role_name!r} has no Cloudflare equivalent")
    parts, images, calls = _blocks(message, where)
    content: str | list[dict[str, Any]] = parts if images else "\n".join(p["text"] for p in parts)
    extra = message.additional_kwargs or {}
    out = Message(role, content)  # type: ignore[arg-type]
    if role == "assistant":
        out.tool_calls = calls or _legacy_tool_calls(extra, where)
    elif role == "tool":
        call_id = extra.get("tool_call_id")
        out.tool_call_id = str(call_id) if call_id else None
        name = extra.get("name")
        out.name = str(name) if name else None
    return out


def to_messages(messages: Sequence[ChatMessage]) -> list[Message]:
    return [to_message(m, i) for i, m in enumerate(messages)]


# ---------------------------------------------------------------------------------------------
# Tools


def tool_spec(tool: Any) -> ToolSpec:
    """A LlamaIndex tool (``BaseTool``), an OpenAI tool dict or a :class:`ToolSpec` -> ToolSpec."""
    if isinstance(tool, ToolSpec):
        return tool
    meta = getattr(tool, "metadata", None)
    if meta is not None and hasattr(meta, "get_parameters_dict"):
        return ToolSpec(meta.get_name(), meta.description or "", meta.get_parameters_dict())
    if isinstance(tool, Mapping):
        fn = tool.get("function") if tool.get("type") == "function" else tool
        if isinstance(fn, Mapping) and fn.get("name"):
            params = fn.get("parameters") or fn.get("input_schema") or {"type": "object", "properties": {}}
            return ToolSpec(str(fn["name"]), str(fn.get("description") or ""), dict(params))
    raise TypeError(f"cannot use {type(tool).__name__} as a tool: pass a LlamaIndex BaseTool or an OpenAI tool dict")


def tool_choice(choice: Any, names: Sequence[str], *, required: bool = False) -> str | None:
    """LlamaIndex/OpenAI/Anthropic ``tool_choice`` forms -> "auto", "none", "required" or a tool name.

    ``None`` means "the model's default" unless ``tool_required`` asked for a call; an explicit
    choice wins over ``tool_required`` (as in LlamaIndex's OpenAI integration)."""
    if choice is None:
        return "required" if required else None
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        if isinstance(fn, Mapping) and fn.get("name"):
            return tool_choice(str(fn["name"]), names)
        if choice.get("type") == "tool" and choice.get("name"):
            return tool_choice(str(choice["name"]), names)
        if isinstance(choice.get("type"), str):
            return tool_choice(choice["type"], names, required=required)
    if isinstance(choice, str):
        if choice in ("any", "required"):
            return "required"
        if choice in ("auto", "none"):
            return choice
        if choice in names:
            return choice
    raise InvalidInputError(
        f"tool_choice {choice!r} is neither 'auto', 'none', 'required' nor one of the tools ({', '.join(names)})"
    )


def tool_selections(response: ChatResponse, *, error_on_no_tool_call: bool = True) -> list[ToolSelection]:
    blocks = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    out: list[ToolSelection] = []
    for b in blocks:
        args: Any = b.tool_kwargs
        if isinstance(args, str):
            text = args
            try:
                args = parse_partial_json(text) if text.strip() else {}
            except (ValueError, TypeError):
                raise ValueError(f"tool call {b.tool_name!r}: arguments are not valid JSON: {text[:200]!r}") from None
        out.append(ToolSelection(tool_id=b.tool_call_id or "", tool_name=b.tool_name, tool_kwargs=dict(args)))
    if not blocks:
        legacy = _legacy_tool_calls(response.message.additional_kwargs or {}, "response")
        out = [ToolSelection(tool_id=c.id, tool_name=c.name, tool_kwargs=c.arguments) for c in legacy]
    if not out and error_on_no_tool_call:
        raise ValueError("Expected at least one tool call, but got 0 tool calls.")
    return out


def keep_first_tool_call(response: ChatResponse) -> ChatResponse:
    """``allow_parallel_tool_calls=False``: keep only the first tool call of the answer."""
    calls = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    if len(calls) > 1:
        drop = {id(b) for b in calls[1:]}
        response.message.blocks = [b for b in response.message.blocks if id(b) not in drop]
    return response


# ---------------------------------------------------------------------------------------------
# Responses


def usage_dict(usage: Usage | None) -> dict[str, Any] | None:
    """OpenAI-style keys (what ``TokenCountingHandler`` reads) plus cached tokens and neurons."""
    if usage is None:
        return None
    total = usage.total_tokens or usage.input_tokens + usage.output_tokens
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens, "total_tokens": total,
        "cached_tokens": usage.cached_tokens,
    }
    if usage.neurons is not None:
        out["neurons"] = usage.neurons
    return out


def _meta(src: CFResponse | ChatChunk, finish_reason: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(raw, additional_kwargs)`` of a response or a stream's final chunk."""
    usage = usage_dict(src.usage)
    raw: dict[str, Any] = {
        "model": src.model, "provider": src.provider, "provider_model": src.provider_model,
        "finish_reason": finish_reason,
    }
    if isinstance(src, CFResponse) and src.id:
        raw["id"] = src.id
    if usage is not None:
        raw["usage"] = usage
    kwargs: dict[str, Any] = {
        "model_name": src.model, "provider": src.provider, "provider_model": src.provider_model,
        "finish_reason": finish_reason, "cost": None if src.cost is None else str(src.cost),
        "gateway": src.gateway.to_dict() if src.gateway is not None else {},
        "attempts": [asdict(a) for a in src.attempts],
        RECORDS_KEY: [r.to_dict() for r in src.records],
    }
    if usage is not None:
        kwargs.update(usage)
    return raw, kwargs


def _assistant(text: str, reasoning: str, calls: Sequence[ToolCallBlock]) -> ChatMessage:
    blocks: list[Any] = []
    if reasoning:
        blocks.append(ThinkingBlock(content=reasoning))
    if text or not calls:
        blocks.append(TextBlock(text=text))
    blocks.extend(calls)
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)


def to_chat_response(resp: CFResponse, *, delta: str | None = None) -> ChatResponse:
    calls = [ToolCallBlock(tool_call_id=c.id or None, tool_name=c.name, tool_kwargs=c.arguments)
             for c in resp.tool_calls]
    raw, kwargs = _meta(resp, resp.finish_reason)
    if resp.parsed is not None:
        kwargs["parsed"] = resp.parsed
    return ChatResponse(message=_assistant(resp.text, resp.reasoning or "", calls), raw=raw, delta=delta,
                        additional_kwargs=kwargs)


class StreamState:
    """Accumulates a stream: each chunk becomes a ChatResponse holding everything so far."""

    def __init__(self) -> None:
        self.text = ""
        self.reasoning = ""
        self.finish_reason: str | None = None
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, arguments so far]

    def _call_blocks(self, final: bool) -> list[ToolCallBlock]:
        out = []
        for call_id, name, args in (self._calls[i] for i in sorted(self._calls)):
            kwargs: dict[str, Any] | str
            try:
                kwargs = (json.loads(args) if final else parse_partial_json(args)) if args.strip() else {}
            except (ValueError, TypeError):
                kwargs = args  # kept as text; tool_selections() reports it
            out.append(ToolCallBlock(tool_call_id=call_id, tool_name=name, tool_kwargs=kwargs))
        return out

    def feed(self, chunk: ChatChunk) -> ChatResponse:
        self.text += chunk.text
        self.reasoning += chunk.reasoning
        for tc in chunk.tool_call_chunks:
            entry = self._calls.setdefault(tc.index, [None, "", ""])
            entry[0] = tc.id or entry[0]
            entry[1] = tc.name or entry[1]
            entry[2] += tc.arguments
        self.finish_reason = chunk.finish_reason or self.finish_reason
        message = _assistant(self.text, self.reasoning, self._call_blocks(chunk.final))
        raw: dict[str, Any] | None = None
        kwargs: dict[str, Any] = {}
        if chunk.final:
            raw, kwargs = _meta(chunk, self.finish_reason)
        if chunk.reasoning:
            kwargs["thinking_delta"] = chunk.reasoning
        return ChatResponse(message=message, delta=chunk.text, raw=raw, additional_kwargs=kwargs)


def to_completion(resp: ChatResponse) -> CompletionResponse:
    return CompletionResponse(text=resp.message.content or "", additional_kwargs=resp.additional_kwargs,
                              raw=resp.raw, delta=resp.delta)


__all__ = [
    "RECORDS_KEY",
    "StreamState",
    "keep_first_tool_call",
    "to_chat_response",
    "to_completion",
    "to_message",
    "to_messages",
    "tool_choice",
    "tool_selections",
    "tool_spec",
    "usage_dict",
]
