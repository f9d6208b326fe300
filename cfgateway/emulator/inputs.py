"""Request bodies (Workers AI native, OpenAI wire, Anthropic Messages) -> :class:`ChatInput`.

Invalid bodies raise :class:`BadInput`; each front-end renders it in its own error format.
"""

from __future__ import annotations

import json
from typing import Any

from cfgateway.emulator.answers import ChatInput, ToolDef


class BadInput(ValueError):
    """The request body does not match the wire format."""


def content_text(content: Any) -> str:
    """Text of a message content: a string, OpenAI content parts or Anthropic blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif part.get("type") == "tool_result":
                    parts.append(content_text(part.get("content")))
        return "".join(parts)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return str(content["text"])
    raise BadInput(f"Type mismatch of content, {type(content).__name__} not in 'string', 'array'")


def parse_tools(raw: Any) -> list[ToolDef]:
    """Flat ``{name, description, parameters}``, OpenAI ``{type: function, function}`` or Anthropic specs."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadInput("tools must be an array")
    tools: list[ToolDef] = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict):
            raise BadInput(f"tools/{i} must be an object")
        fn: dict[str, Any] = spec["function"] if isinstance(spec.get("function"), dict) else spec
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise BadInput(f"tools/{i} is missing required property 'name'")
        params = fn.get("parameters", fn.get("input_schema"))
        if not isinstance(params, dict):
            params = {"type": "object", "properties": {}}
        tools.append(ToolDef(name, str(fn.get("description") or ""), params))
    return tools


def parse_tool_choice(raw: Any) -> str | None:
    """Normalise to None/"auto", "none", "required" or a tool name."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return "required" if raw == "any" else raw
    if isinstance(raw, dict):
        kind = raw.get("type")
        if kind == "function" and isinstance(raw.get("function"), dict):
            return str(raw["function"].get("name") or "required")
        if kind == "tool":
            return str(raw.get("name") or "required")
        if kind == "any":
            return "required"
        if kind in ("auto", "none", "required"):
            return str(kind)
    raise BadInput("tool_choice has an unsupported form")


def parse_response_format(raw: Any) -> tuple[str | None, dict[str, Any] | None]:
    """``(None|"object"|"schema", schema)``; accepts Cloudflare's bare schema and OpenAI's wrapper."""
    if raw is None or raw == "text":
        return None, None
    if not isinstance(raw, dict):
        raise BadInput("response_format must be an object")
    kind = raw.get("type")
    if kind in (None, "text"):
        return None, None
    if kind == "json_object":
        return "object", None
    if kind == "json_schema":
        js = raw.get("json_schema") or raw.get("schema")
        if not isinstance(js, dict):
            raise BadInput("response_format.json_schema must be an object")
        if isinstance(js.get("schema"), dict) and ("name" in js or "strict" in js or "type" not in js):
            js = js["schema"]
        return "schema", js
    raise BadInput(f"response_format.type {kind!r} is not supported")


def _stop(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        return list(raw)
    raise BadInput("stop must be a string or an array of strings")


def _max_tokens(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise BadInput("max_tokens must be an integer")
    return int(raw)


def openai_messages(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise BadInput("messages must be a non-empty array")
    out: list[tuple[str, str]] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise BadInput(f"messages/{i} must be an object with a role")
        role = {"developer": "system", "function": "tool", "ipython": "tool"}.get(m["role"], m["role"])
        if role not in ("system", "user", "assistant", "tool"):
            raise BadInput(f"messages/{i}/role {m['role']!r} is not one of system, user, assistant, tool")
        text = content_text(m.get("content"))
        if role == "assistant" and not text and m.get("tool_calls"):
            text = json.dumps(m["tool_calls"])
        out.append((role, text))
    return out


def from_openai(body: dict[str, Any]) -> ChatInput:
    """An OpenAI chat.completions body."""
    mode, schema = parse_response_format(body.get("response_format"))
    max_tokens = body.get("max_completion_tokens")
    return ChatInput(
        messages=openai_messages(body.get("messages")),
        tools=parse_tools(body.get("tools")),
        tool_choice=parse_tool_choice(body.get("tool_choice")),
        json_mode=mode,
        schema=schema,
        max_tokens=_max_tokens(max_tokens if max_tokens is not None else body.get("max_tokens")),
        stop=_stop(body.get("stop")),
        stream=body.get("stream") is True,
        include_usage=(body.get("stream_options") or {}).get("include_usage") is True,
        reasoning=bool(body.get("reasoning_effort") or body.get("reasoning")),
    )


def from_workers(body: dict[str, Any], *, legacy: bool) -> ChatInput:
    """A Workers AI ``/ai/run`` text-generation body: Messages or Prompt variant."""
    if isinstance(body.get("messages"), list) and body["messages"]:
        messages = openai_messages(body["messages"])
    elif isinstance(body.get("prompt"), str) and body["prompt"]:
        messages = [("user", body["prompt"])]
    else:
        raise BadInput(
            "Error: oneOf at '/' not met, 0 matches: required properties at '/' are 'prompt', "
            "required properties at '/' are 'messages'"
        )
    mode, schema = parse_response_format(body.get("response_format"))
    max_tokens = _max_tokens(body.get("max_tokens"))
    kwargs: dict[str, Any] = body["chat_template_kwargs"] if isinstance(body.get("chat_template_kwargs"), dict) else {}
    return ChatInput(
        messages=messages,
        tools=parse_tools(body.get("tools")),
        tool_choice=parse_tool_choice(body.get("tool_choice")),
        json_mode=mode,
        schema=schema,
        max_tokens=256 if max_tokens is None and legacy else max_tokens,  # documented default 256
        stop=_stop(body.get("stop")),
        stream=body.get("stream") is True,
        include_usage=True,
        reasoning=bool(body.get("reasoning_effort") or body.get("reasoning") or kwargs.get("enable_thinking")),
    )


def _anthropic_message(i: int, m: Any) -> list[tuple[str, str]]:
    if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
        raise BadInput(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    content = m.get("content")
    if isinstance(content, str):
        return [(m["role"], content)]
    if not isinstance(content, list):
        raise BadInput(f"messages.{i}.content: Input should be a valid list")
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    uses = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
    text = "".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    out = [("tool", content_text(r.get("content"))) for r in results]
    if m["role"] == "assistant" and uses and not text:
        text = json.dumps([{"name": u.get("name"), "input": u.get("input")} for u in uses])
    if text or not out:
        out.append((m["role"], text))
    return out


def from_anthropic(body: dict[str, Any]) -> ChatInput:
    """An Anthropic Messages API body."""
    if not isinstance(body.get("max_tokens"), int):
        raise BadInput("max_tokens: Field required")
    if not isinstance(body.get("messages"), list):
        raise BadInput("messages: Field required")
    messages: list[tuple[str, str]] = []
    if body.get("system"):
        messages.append(("system", content_text(body["system"])))
    for i, m in enumerate(body["messages"]):
        messages.extend(_anthropic_message(i, m))
    return ChatInput(
        messages=messages,
        tools=parse_tools(body.get("tools")),
        tool_choice=parse_tool_choice(body.get("tool_choice")),
        max_tokens=int(body["max_tokens"]),
        stop=_stop(body.get("stop_sequences")),
        stream=body.get("stream") is True,
        include_usage=True,
    )


def embed_inputs(value: Any, field: str) -> list[str]:
    """A string or a list of strings; anything else is bad input."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadInput(f"Error: Type mismatch of '/{field}', expected string or array of strings")


__all__ = [
    "BadInput",
    "content_text",
    "embed_inputs",
    "from_anthropic",
    "from_openai",
    "from_workers",
    "parse_response_format",
    "parse_tool_choice",
    "parse_tools",
]
