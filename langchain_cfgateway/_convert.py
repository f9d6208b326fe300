"""Pure conversions: LangChain messages and tools -> ``cfgateway.types``, and back.

Nothing here does I/O or touches a client; the sync and async paths of
:class:`~langchain_cfgateway.ChatCloudflare` share every function.

History written by another provider's chat model converts cleanly: only roles, text, images,
tool calls and tool-call ids are read. ``additional_kwargs`` and ``response_metadata`` (OpenAI's
``refusal``, Anthropic's ``thinking`` blocks, signatures, cache-control markers, ...) are never
sent. Content this adapter cannot send raises :class:`cfgateway.InvalidInputError` naming the
message and block.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call, tool_call_chunk

from cfgateway import ChatChunk, ChatResponse, InvalidInputError, Message, ToolCall, ToolSpec, Usage

# Assistant-history blocks that are another model's own output (reasoning, server tools, tool-use
# echoes): they cannot be replayed to a different model, so they are left out on purpose.
_ASSISTANT_SKIP = frozenset(
    {
        "thinking", "redacted_thinking", "reasoning", "tool_use", "tool_call", "tool_call_chunk",
        "invalid_tool_call", "server_tool_call", "server_tool_call_chunk", "server_tool_result",
        "server_tool_use", "web_search_tool_result", "code_execution_tool_result", "citation",
    }
)
_CHAT_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant",
               "system": "system", "developer": "system", "tool": "tool"}


def _error(where: str, what: str) -> InvalidInputError:
    return InvalidInputError(f"{where}: {what}")


# ---------------------------------------------------------------------------------------------
# Content blocks


def _image_url(block: Mapping[str, Any], where: str) -> str:
    """The URL (``https://`` or ``data:``) of an OpenAI, LangChain standard or Anthropic image block."""
    if block.get("type") == "image_url":
        ref = block.get("image_url")
        url = ref.get("url") if isinstance(ref, Mapping) else ref
        if isinstance(url, str) and url:
            return url
        raise _error(where, "image_url block without a url")
    source = block.get("source")
    if isinstance(source, Mapping):  # Anthropic: {"type": "image", "source": {...}}
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            return f"data:{source.get('media_type') or 'image/png'};base64,{source['data']}"
        raise _error(where, f"image source type {source.get('type')!r} cannot be sent (use base64 or url)")
    data = block.get("base64")
    if data is None and block.get("source_type") == "base64":
        data = block.get("data")
    if isinstance(data, str) and data:
        mime = block.get("mime_type")
        if not isinstance(mime, str) or not mime.startswith("image/"):
            raise _error(where, "a base64 image block needs mime_type (for example 'image/png')")
        return f"data:{mime};base64,{data}"
    url = block.get("url")
    if url is None and block.get("source_type") == "url":
        url = block.get("data")
    if isinstance(url, str) and url:
        return url
    raise _error(where, "image block has neither base64 data nor a url (provider file ids cannot be sent)")


def _block_text(block: Any) -> str | None:
    if isinstance(block, str):
        return block
    if isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return str(block["text"])
    return None


def _parts(content: Any, where: str, *, images: bool | None, model: str) -> str | list[dict[str, Any]]:
    """User/tool content: a string, or text + image parts (text-only lists become one string)."""
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content or ()):
        here = f"{where}, block {j}"
        text = _block_text(block)
        if text is not None:
            parts.append({"type": "text", "text": text})
            continue
        kind = block.get("type") if isinstance(block, Mapping) else type(block).__name__
        if kind in ("image_url", "image"):
            if images is False:
                raise _error(here, f"{model} does not take images; use a vision model or send text only")
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, here)}})
            continue
        raise _error(here, f"content block type {kind!r} cannot be sent to {model or 'this model'} "
                           "(text and image blocks can)")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _text_only(content: Any, where: str, *, skip: frozenset[str] = frozenset()) -> str:
    if isinstance(content, str):
        return content
    out: list[str] = []
    for j, block in enumerate(content or ()):
        text = _block_text(block)
        if text is not None:
            out.append(text)
            continue
        kind = block.get("type") if isinstance(block, Mapping) else type(block).__name__
        if kind in skip:
            continue
        raise _error(f"{where}, block {j}", f"content block type {kind!r} cannot be sent here (text only)")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Messages


def _tool_calls_of(m: AIMessage, where: str) -> list[ToolCall]:
    calls = [ToolCall(tc["name"], dict(tc.get("args") or {}), tc.get("id") or "") for tc in m.tool_calls]
    for bad in m.invalid_tool_calls:  # guess: replay a malformed call with {} so its ToolMessage still matches
        calls.append(ToolCall(bad.get("name") or "", {}, bad.get("id") or ""))
    if calls:
        return calls
    if isinstance(m.content, list):  # Anthropic history: tool_use blocks without parsed tool_calls
        for block in m.content:
            if isinstance(block, Mapping) and block.get("type") == "tool_use":
                args = dict(block.get("input") or {})
                calls.append(ToolCall(str(block.get("name")), args, str(block.get("id") or "")))
    fc = m.additional_kwargs.get("function_call")
    if not calls and isinstance(fc, Mapping) and fc.get("name"):  # legacy OpenAI functions API
        raw = fc.get("arguments") or "{}"
        try:
            args = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except ValueError:
            raise _error(where, f"function_call {fc['name']!r} has arguments that are not JSON") from None
        # guess: the legacy API has no call ids; the function name pairs it with its FunctionMessage
        calls.append(ToolCall(str(fc["name"]), args if isinstance(args, dict) else {}, str(fc["name"])))
    return calls


def _one_message(i: int, m: BaseMessage, images: bool | None, model: str) -> Message:
    where = f"message {i} ({m.type})"
    if isinstance(m, HumanMessage):
        return Message("user", _parts(m.content, where, images=images, model=model), name=m.name)
    if isinstance(m, SystemMessage):
        return Message("system", _text_only(m.content, where))
    if isinstance(m, AIMessage):
        text = _text_only(m.content, where, skip=_ASSISTANT_SKIP)
        return Message("assistant", text, tool_calls=_tool_calls_of(m, where), name=m.name)
    if isinstance(m, ToolMessage):
        content = _parts(m.content, where, images=images, model=model)
        return Message("tool", content, tool_call_id=m.tool_call_id, name=m.name)
    if isinstance(m, FunctionMessage):
        return Message("tool", _text_only(m.content, where), tool_call_id=m.name, name=m.name)
    if isinstance(m, ChatMessage):
        role = _CHAT_ROLES.get(m.role.lower())
        if role is None:
            raise _error(where, f"role {m.role!r} is not one of {', '.join(sorted(_CHAT_ROLES))}")
        if role == "user":
            return Message("user", _parts(m.content, where, images=images, model=model))
        return Message(role, _text_only(m.content, where))  # type: ignore[arg-type]
    raise _error(where, f"{type(m).__name__} cannot be sent to a chat model")


def to_messages(messages: Sequence[BaseMessage], *, images: bool | None = None, model: str = "") -> list[Message]:
    """LangChain messages -> cfgateway messages.

    ``images``: ``True``/``None`` let image blocks through (``None`` = the catalog does not say),
    ``False`` turns them into a clear error naming ``model``.
    """
    return [_one_message(i, m, images, model) for i, m in enumerate(messages)]


# ---------------------------------------------------------------------------------------------
# Tools


def tool_spec(openai_tool: Mapping[str, Any]) -> ToolSpec:
    """An OpenAI-format tool dict (what ``bind_tools`` stores) -> :class:`ToolSpec`."""
    fn = openai_tool.get("function", openai_tool)
    if not isinstance(fn, Mapping) or not fn.get("name"):
        raise ValueError(f"not a function tool: {openai_tool!r}")
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    return ToolSpec(str(fn["name"]), str(fn.get("description") or ""), dict(params))


def tool_choice(choice: Any, names: Sequence[str]) -> str | None:
    """LangChain ``tool_choice`` forms -> ``"auto"``, ``"none"``, ``"required"`` or a tool name.

    ``"any"``/``"required"``/``True``-with-several-tools -> ``"required"``; ``True`` with one tool
    forces that tool; ``False`` -> ``"auto"`` (guess: "not forced"); OpenAI and Anthropic dicts work.
    """
    if choice is None:
        return None
    if isinstance(choice, bool):
        if not choice:
            return "auto"
        return names[0] if len(names) == 1 else "required"
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        fn = choice.get("function")
        if kind == "function" and isinstance(fn, Mapping) and fn.get("name"):
            return tool_choice(str(fn["name"]), names)
        if kind == "tool" and choice.get("name"):
            return tool_choice(str(choice["name"]), names)
        if isinstance(kind, str):
            return tool_choice(kind, names)
        raise ValueError(f"tool_choice {choice!r} is not a form ChatCloudflare understands")
    if isinstance(choice, str):
        if choice in ("any", "required"):
            return "required"
        if choice in ("auto", "none"):
            return choice
        if choice in names:
            return choice
        raise ValueError(
            f"tool_choice {choice!r} is neither 'auto', 'none', 'any'/'required' nor one of the bound tools "
            f"({', '.join(names) or 'none bound'})"
        )
    raise ValueError(f"tool_choice must be a string, bool or dict, not {type(choice).__name__}")


# ---------------------------------------------------------------------------------------------
# Responses


def usage_metadata(usage: Usage | None) -> UsageMetadata | None:
    if usage is None:
        return None
    total = usage.total_tokens or usage.input_tokens + usage.output_tokens
    meta = UsageMetadata(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, total_tokens=total)
    if usage.cached_tokens > 0:
        meta["input_token_details"] = {"cache_read": usage.cached_tokens}
    return meta


def response_metadata(r: ChatResponse | ChatChunk) -> dict[str, Any]:
    """JSON-serialisable facts about the answer: the route that answered (docs/architecture.md convention),
    finish reason, neurons, cost (a decimal string, ``None`` = unknown price), gateway headers,
    attempts and the ledger's records (``cfgateway_records``: ``UsageRecord.to_dict()`` each, read
    back by :class:`~langchain_cfgateway.CloudflareCostCallbackHandler`)."""
    usage = r.usage
    gateway = r.gateway.to_dict() if r.gateway is not None else {}
    return {
        "model_name": r.model,
        "provider": r.provider,
        "provider_model": r.provider_model,
        "finish_reason": r.finish_reason,
        "neurons": usage.neurons if usage is not None else None,
        "cost": None if r.cost is None else str(r.cost),
        "gateway": gateway,
        "attempts": [
            {"model": a.model, "outcome": a.outcome, "error": a.error, "latency_s": a.latency_s} for a in r.attempts
        ],
        "cfgateway_records": [rec.to_dict() for rec in r.records],
    }


def to_ai_message(resp: ChatResponse) -> AIMessage:
    extra: dict[str, Any] = {"reasoning_content": resp.reasoning} if resp.reasoning else {}
    return AIMessage(
        content=resp.text,
        tool_calls=[tool_call(name=tc.name, args=tc.arguments, id=tc.id or _new_id()) for tc in resp.tool_calls],
        additional_kwargs=extra,
        usage_metadata=usage_metadata(resp.usage),
        response_metadata=response_metadata(resp),
    )


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


@dataclass(slots=True)
class StreamState:
    """Per-stream memory: which tool-call indexes were announced (id and name go on the first piece
    only, because LangChain concatenates string fields of chunks that share an index)."""

    ids: dict[int, str] = field(default_factory=dict)


def to_chunk(c: ChatChunk, state: StreamState) -> AIMessageChunk:
    pieces = []
    for t in c.tool_call_chunks:
        first = t.index not in state.ids
        if first:
            state.ids[t.index] = t.id or _new_id()
        pieces.append(
            tool_call_chunk(
                name=t.name if first else None,
                args=t.arguments,
                id=state.ids[t.index] if first else None,
                index=t.index,
            )
        )
    extra: dict[str, Any] = {"reasoning_content": c.reasoning} if c.reasoning else {}
    if not c.final:
        if not pieces and not extra:  # the common text chunk: defaults are cheaper than validated empties
            return AIMessageChunk(content=c.text)
        return AIMessageChunk(content=c.text, tool_call_chunks=pieces, additional_kwargs=extra)
    return AIMessageChunk(
        content=c.text,
        tool_call_chunks=pieces,
        additional_kwargs=extra,
        usage_metadata=usage_metadata(c.usage),
        response_metadata=response_metadata(c),
        chunk_position="last",
    )


__all__ = [
    "StreamState",
    "response_metadata",
    "to_ai_message",
    "to_chunk",
    "to_messages",
    "tool_choice",
    "tool_spec",
    "usage_metadata",
]
