"""Reading request bodies as strict JSON, and showing logged bodies as strict JSON.

Python's ``json`` module reads more than JSON: ``NaN``, ``Infinity``, ``-Infinity`` and strings holding a lone
UTF-16 surrogate (``"\\ud800"``), which no UTF-8 text can carry. A JavaScript or Go server refuses these
(``JSON.parse`` has no NaN; a lone surrogate cannot be re-encoded). The emulator answers them as an unreadable
body — a 400 in the route's own error format — and keeps what Python read in the request log, made printable:
non-finite numbers become the strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` and a lone surrogate its
``\\udXXX`` escape.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """``body``: what handlers see (``None`` when empty or unreadable); ``logged``: what the request log keeps;
    ``error``: why the body is unreadable (``""`` when it is fine or empty)."""

    body: Any
    logged: Any
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number; send a finite number or null")


def _surrogate_problem(obj: Any) -> str:
    """A message naming the first lone surrogate in ``obj``'s strings (keys included), or ``""``."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        char = exc.object[exc.start] if isinstance(exc.object, str) else "?"
        return (
            f"lone surrogate \\u{ord(char):04x} in a string is not UTF-8 text; send the character itself "
            "or a complete surrogate pair"
        )
    return ""


def parse_body(raw: bytes) -> ParsedBody:
    """Strict JSON: the parsed body, or ``body=None`` with an ``error`` naming the problem."""
    if not raw:
        return ParsedBody(None, None)
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except _NotJson as exc:
        try:
            logged = json.loads(raw)
        except ValueError:
            logged = None
        return ParsedBody(None, logged, f"request body is not valid JSON: {exc}")
    except ValueError as exc:  # also UnicodeDecodeError: bytes that are not UTF-8
        return ParsedBody(None, None, f"request body is not valid JSON: {exc}")
    problem = _surrogate_problem(body)
    if problem:
        return ParsedBody(None, body, f"request body is not valid JSON: {problem}")
    return ParsedBody(body, body)


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as strings and lone surrogates escaped: always strict, UTF-8-able JSON."""
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return obj.encode("utf-8", "backslashreplace").decode("utf-8")
        return obj
    if isinstance(obj, dict):
        return {json_safe(k) if isinstance(k, str) else k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def strict_loads(raw: bytes) -> Any:
    """Parse a control request's JSON; ``ValueError`` naming NaN/Infinity or the syntax error."""
    parsed = parse_body(raw)
    if parsed.error:
        raise ValueError(parsed.error)
    return parsed.body


__all__ = ["ParsedBody", "json_safe", "parse_body", "strict_loads"]
