"""Helpers shared by the wire modules: ids, tool-call arguments, stop sequences, content parts,
usage, error bodies and in-band error events. Pure functions, no I/O."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

from cfgateway.error_codes import code_info, error_class, hint_for
from cfgateway.errors import APIError, MalformedResponseError, StreamInterrupted
from cfgateway.types import ChatChunk, ContentPart, ToolCall, ToolCallChunk, ToolSpec, Usage

__all__ = [
    "FINISH_REASONS",
    "BaseStreamParser",
    "apply_stop",
    "code_message",
    "api_error_from",
    "fast_loads",
    "flatten_content",
    "image_part",
    "load_event",
    "new_tool_call_id",
    "normalise_finish",
    "parse_arguments",
    "parse_error_body",
    "parse_tool_call",
    "parse_usage",
    "raise_for_error_event",
    "select_tools",
    "sub",
]

@cache
def _orjson_loads() -> Callable[[bytes], Any] | None:
    """``orjson.loads`` when the optional ``cfgateway[fast]`` extra is installed (imported on first use: ~15 ms)."""
    try:
        import orjson
    except ImportError:
        return None
    loads: Callable[[bytes], Any] = orjson.loads
    return loads


def fast_loads(content: bytes) -> Any:
    """``json.loads``, through orjson when it is installed: ~8x faster on large float arrays (embeddings).

    orjson refuses what the stdlib accepts (NaN, Infinity, 1e400, lone surrogates): those bodies go to
    ``json.loads``, which decides. One difference remains: orjson reads integers beyond 64 bits as
    floats; use this for bodies where that cannot matter (embedding rows, token counts).
    Raises ``ValueError`` when the body is not JSON.
    """
    loads = _orjson_loads()
    if loads is not None:
        try:
            return loads(content)
        except ValueError:
            pass
    return json.loads(content)


# Provider-specific finish/stop reasons mapped to ours; anything else is passed through as given.
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
}


def normalise_finish(reason: Any) -> str | None:
    if reason is None or reason == "":
        return None
    text = str(reason)
    return FINISH_REASONS.get(text, text)


def new_tool_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def parse_arguments(raw: Any, *, name: str = "") -> dict[str, Any]:
    """Tool-call arguments as a dict: objects pass, JSON strings are parsed, ``None``/"" is ``{}``."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise MalformedResponseError(f"tool call {name!r} has arguments that are not JSON", body=raw) from None
        if isinstance(value, dict):
            return value
    raise MalformedResponseError(f"tool call {name!r} has arguments that are not a JSON object", body=str(raw))


def parse_tool_call(entry: Any) -> ToolCall:
    """One complete tool call, flat ``{name, arguments}`` or OpenAI ``{id, type, function: {...}}``."""
    if not isinstance(entry, dict):
        raise MalformedResponseError("tool call entry is not an object", body=str(entry))
    fn = entry.get("function")
    src = fn if isinstance(fn, dict) else entry
    name = src.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedResponseError("tool call without a name", body=json.dumps(entry, default=str))
    return ToolCall(name, parse_arguments(src.get("arguments"), name=name), entry.get("id") or new_tool_call_id())


def apply_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence. Returns (text, whether a stop sequence was found)."""
    if not stop:
        return text, False
    cut = -1
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1 and (cut == -1 or i < cut):
                cut = i
    if cut == -1:
        return text, False
    return text[:cut], True


def image_part(part: ContentPart) -> ContentPart:
    """An image part in OpenAI's ``{"type": "image_url", "image_url": {"url": ...}}`` form."""
    ref = part.get("image_url")
    if isinstance(ref, str):
        return {"type": "image_url", "image_url": {"url": ref}}
    return part


def flatten_content(content: str | list[ContentPart] | None) -> str | list[ContentPart]:
    """Text-only part lists joined to one string (old Workers AI schemas reject arrays);
    lists with images keep their parts, images normalised to ``image_url`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if all(p.get("type") == "text" for p in content):
        return "".join(p.get("text", "") for p in content)
    return [image_part(p) if p.get("type") == "image_url" else p for p in content]


def select_tools(tools: list[ToolSpec], name: str) -> list[ToolSpec]:
    """The tools named ``name`` (tool_choice emulation); raises ValueError when there is none."""
    chosen = [t for t in tools if t.name == name]
    if not chosen:
        raise ValueError(f"tool_choice names {name!r} but tools has no tool of that name")
    return chosen


def parse_usage(d: Any) -> Usage | None:
    """OpenAI-style usage (also Workers AI's, with ``neurons``)."""
    if not isinstance(d, dict):
        return None
    inp = d.get("prompt_tokens") or d.get("input_tokens") or 0
    out = d.get("completion_tokens") or d.get("output_tokens") or 0
    details = d.get("prompt_tokens_details")
    cached = (details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    neurons = d.get("neurons")
    return Usage(
        int(inp),
        int(out),
        int(d.get("total_tokens") or inp + out),
        int(cached),
        float(neurons) if isinstance(neurons, (int, float)) else None,
    )


def sub(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]`` as a dict: missing/null is ``{}``, any other type raises MalformedResponseError."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedResponseError(f"{key!r} is not a JSON object", body=json.dumps(obj, default=str))
    return value


def load_event(data: str) -> dict[str, Any]:
    """The JSON object carried by one stream event; anything else raises MalformedResponseError."""
    try:
        obj = json.loads(data)
    except ValueError:
        raise MalformedResponseError("stream event is not JSON", body=data) from None
    if not isinstance(obj, dict):
        raise MalformedResponseError("stream event is not a JSON object", body=data)
    return obj


# ---------------------------------------------------------------------------------------------
# Errors: bodies of non-2xx answers, and error objects inside 2xx bodies / streams.

_TAGS = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.S | re.I)
_SPACE = re.compile(r"\s+")

# Error "type" strings (OpenAI / Anthropic) → HTTP status, for errors that arrive without one.
_TYPE_STATUS = {
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "overloaded_error": 529,
}


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _from_entries(entries: list[Any]) -> tuple[int | None, str]:
    first = entries[0] if isinstance(entries[0], dict) else {"message": str(entries[0])}
    msgs = [str(e.get("message", "")) if isinstance(e, dict) else str(e) for e in entries]
    return _as_int(first.get("code")), "; ".join(m for m in msgs if m) or "unknown error"


def _from_error_object(err: dict[str, Any]) -> tuple[int | None, str]:
    msg = str(err.get("message") or "")
    raw = err.get("code")
    code = _as_int(raw)
    label = raw if isinstance(raw, str) and code is None and raw else err.get("type")
    if isinstance(label, str) and label and label not in msg:
        msg = f"{label}: {msg}" if msg else label
    return code, msg or "unknown error"


def code_message(obj: Any) -> tuple[int | None, str] | None:
    """(code, message) from a decoded error body of any known shape; None if it has no error."""
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        return code_message(obj[0])
    if not isinstance(obj, dict):
        return None
    errs = obj.get("errors")
    if isinstance(errs, list) and errs:
        return _from_entries(errs)
    err = obj.get("error")
    if isinstance(err, list) and err:  # AI Gateway: "error": [{code, message}]
        return _from_entries(err)
    if isinstance(err, dict):  # OpenAI / Anthropic
        return _from_error_object(err)
    if isinstance(err, str) and err:
        return None, err
    for key in ("message", "detail"):
        if isinstance(obj.get(key), str) and obj[key]:
            return _as_int(obj.get("code")), obj[key]
    return None


def _text_message(text: str) -> str:
    if "<" in text and ">" in text:
        title = _TITLE.search(text)
        if title and title.group(1).strip():
            return _SPACE.sub(" ", title.group(1)).strip()[:200]
        text = _SPACE.sub(" ", _TAGS.sub(" ", _SCRIPT.sub(" ", text))).strip()
        return text[:200] or "HTTP error with an HTML body"
    text = _SPACE.sub(" ", text).strip()
    return text[:200] or "HTTP error with an empty body"


def parse_error_body(body: bytes) -> tuple[int | None, str]:
    """(code, message) from an error answer's body, whatever its shape. Never raises."""
    try:
        text = body.decode("utf-8", errors="replace")
        try:
            obj = json.loads(text)
        except ValueError:
            return None, _text_message(text)
        found = code_message(obj)
        if found is not None:
            return found
        return None, _text_message(text)
    except Exception:  # pragma: no cover - last-resort guard: error parsing must never raise
        return None, "unreadable error body"


def _status_of(obj: dict[str, Any], code: int | None, in_stream: bool) -> int:
    err = obj.get("error")
    for src in (obj, err if isinstance(err, dict) else {}):
        for key in ("status", "httpCode", "status_code"):
            status = _as_int(src.get(key))
            if status is not None and 100 <= status <= 599:
                return status
    info = code_info(code)
    if info is not None:
        return info.status
    etype = err.get("type") if isinstance(err, dict) else None
    if isinstance(etype, str) and etype in _TYPE_STATUS:
        return _TYPE_STATUS[etype]
    # guess: an error event inside a stream, naming no status, code or type, is the server failing after it
    # had accepted the request (a bad request is refused before any answer); in a 2xx body it is a refusal
    return 500 if in_stream else 400


def api_error_from(obj: dict[str, Any], *, model: str | None = None, in_stream: bool = False) -> APIError | None:
    """The APIError an error object inside a 2xx body or (``in_stream``) a stream event stands for, or None."""
    if not obj.get("errors") and not obj.get("error") and obj.get("type") != "error":
        return None
    found = code_message(obj) or (None, "error event without a message")
    code, message = found
    status = _status_of(obj, code, in_stream)
    cls = error_class(status, code, message)
    return cls(message, status=status, code=code, model=model, body=json.dumps(obj, default=str),
               hint=hint_for(code, cls))


def raise_for_error_event(obj: dict[str, Any], *, model: str | None = None, in_stream: bool = False) -> None:
    err = api_error_from(obj, model=model, in_stream=in_stream)
    if err is not None:
        raise err


# ---------------------------------------------------------------------------------------------
# Stream state shared by every wire's StreamParser.


class BaseStreamParser:
    """What every StreamParser keeps: accumulated text, terminator flag, last finish reason.

    Subclasses implement ``feed`` and the ``usage`` property. ``finish()`` returns the final chunk
    (``final=True``, total usage, finish reason) — only after the terminator was seen; otherwise it
    raises StreamInterrupted carrying the text received so far.
    """

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.done = False
        self.finish_reason: str | None = None
        self.provider_model: str | None = None
        self.id: str | None = None
        self._parts: list[str] = []
        self._tool_calls_seen = False

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def usage(self) -> Usage | None:  # pragma: no cover - overridden
        return None

    def _chunk(self, text: str, reasoning: str, tools: list[ToolCallChunk]) -> ChatChunk:
        if text:
            self._parts.append(text)
        if tools:
            self._tool_calls_seen = True
        return ChatChunk(text=text, reasoning=reasoning, tool_call_chunks=tools)

    def _default_finish(self) -> str:
        return "tool_calls" if self._tool_calls_seen else "stop"

    def finish(self) -> ChatChunk:
        if not self.done:
            where = f" (model {self.model})" if self.model else ""
            err = StreamInterrupted(
                f"stream ended before its terminator{where}; {len(self.text)} characters received",
                model=self.model,
                text=self.text,
            )
            err.usage = self.usage
            raise err
        # guess: streams that never report a finish reason (Workers AI legacy events) finished
        # normally — "tool_calls" when tool calls were streamed, else "stop".
        return ChatChunk(
            final=True,
            usage=self.usage,
            finish_reason=self.finish_reason or self._default_finish(),
            provider_model=self.provider_model,
        )
