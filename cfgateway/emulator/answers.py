"""Deterministic, useful chat answers built from the request (no model, no randomness).

The front-ends (Workers AI native, OpenAI wire, Anthropic) turn their bodies into a
:class:`ChatInput`; :func:`answer` decides text / tool calls / JSON and counts tokens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from cfgateway.emulator.schema_fill import PromptValues, fill, name_variants

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_QUOTED_KEY_RE = re.compile(r"['\"`]([A-Za-z_][A-Za-z0-9_]*)['\"`]")
_COMMON_WORDS = frozenset({"get", "set", "the", "and", "for", "with", "tool", "run", "do", "make", "use", "call"})
ECHO_WORDS = 48  # the echo quotes at most this many words of the user's message
COUNT_RE = re.compile(r"\bcount to (\d{1,4})\b", re.IGNORECASE)  # "Count to 400": a long answer on demand


def count_tokens(text: str) -> int:
    return len(TOKEN_RE.findall(text))


@dataclass(slots=True)
class ToolDef:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(slots=True)
class ChatInput:
    """A chat request in neutral form. ``messages`` are (role, text) with role user/assistant/system/tool."""

    messages: list[tuple[str, str]]
    tools: list[ToolDef] = field(default_factory=list)
    tool_choice: str | None = None  # None/"auto", "none", "required" (= "any"), or a tool name
    json_mode: str | None = None  # None, "object" or "schema"
    schema: dict[str, Any] | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    reasoning: bool = False


@dataclass(slots=True)
class Answer:
    text: str
    tool_calls: list[tuple[str, dict[str, Any]]]
    parsed: Any  # the JSON-mode object, else None
    finish_reason: str  # "stop" | "length" | "tool_calls"
    stop_sequence: str | None
    prompt_tokens: int
    completion_tokens: int
    reasoning: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def json_text(self) -> str:
        return json.dumps(self.parsed, ensure_ascii=False)


def prompt_tokens(inp: ChatInput) -> int:
    """Sum of tokens per message + 3 per message, + a tenth of the tool schemas' JSON tokens."""
    n = sum(count_tokens(text) + 3 for _, text in inp.messages)
    if inp.tools:
        schemas = json.dumps([[t.name, t.description, t.parameters] for t in inp.tools])
        n += count_tokens(schemas) // 10
    return n


def _last_user_text(inp: ChatInput) -> str:
    for role, text in reversed(inp.messages):
        if role == "user":
            return text
    return ""


def reply_text(inp: ChatInput) -> str:
    """``The tool returned: ...`` after a tool result; ``1 2 ... N.`` for "count to N" (a long answer on
    demand); else an echo of the last user message."""
    if inp.messages and inp.messages[-1][0] == "tool":
        return f"The tool returned: {inp.messages[-1][1].strip().rstrip('.')}."
    last = _last_user_text(inp)
    count = COUNT_RE.search(last)
    if count:
        return " ".join(str(i) for i in range(1, int(count.group(1)) + 1)) + "."
    words = last.split()
    if not words:
        return "Hello! How can I help you today?"
    snippet = " ".join(words[:ECHO_WORDS]) + (" ..." if len(words) > ECHO_WORDS else "")
    return f"You said: {snippet}"


def _tool_words(name: str) -> list[str]:
    words: list[str] = []
    for variant in name_variants(name)[1:] or [name.lower()]:
        words.extend(w for w in re.split(r"[\s_\-]+", variant) if len(w) > 2 and w not in _COMMON_WORDS)
    return words


def _tool_score(tool: ToolDef, pv: PromptValues) -> int:
    score = 100 if tool.name.lower() in pv.lower else 0
    if any(pv.mentions(v) for v in name_variants(tool.name)[1:]):
        score += 50
    return score + sum(1 for w in _tool_words(tool.name) if pv.mentions(w))


def choose_tools(inp: ChatInput) -> list[ToolDef]:
    """Which tools the answer calls (empty = answer with text)."""
    if not inp.tools or inp.tool_choice == "none":
        return []
    choice = inp.tool_choice or "auto"
    pv = PromptValues(_last_user_text(inp))
    scored = sorted(((_tool_score(t, pv), -i, t) for i, t in enumerate(inp.tools)), key=lambda x: (x[0], x[1]))
    best = scored[-1][2] if scored[-1][0] > 0 else inp.tools[0]
    if choice in ("required", "any"):
        return [best]
    if choice != "auto":
        return [next((t for t in inp.tools if t.name == choice), best)]
    if not inp.messages or inp.messages[-1][0] != "user":
        return []  # after a tool result the model answers in text
    named = [t for t in inp.tools if t.name.lower() in pv.lower]
    if len(named) > 1:
        return sorted(named, key=lambda t: pv.lower.find(t.name.lower()))
    if scored[-1][0] > 0 or pv.mentions("tool") or pv.mentions("tools"):
        return [best]
    return []


def tool_arguments(tool: ToolDef, inp: ChatInput) -> dict[str, Any]:
    ignore = frozenset(w.lower() for t in inp.tools for w in [t.name, *_tool_words(t.name)])
    pv = PromptValues(_last_user_text(inp), ignore)
    value, _ = fill(tool.parameters or {"type": "object", "properties": {}}, pv, root=tool.parameters)
    return value if isinstance(value, dict) else {"value": value}


def json_answer(inp: ChatInput, text: str) -> Any:
    """The JSON-mode object: schema-shaped for ``json_schema``; quoted key names or ``answer`` for ``json_object``."""
    if inp.json_mode == "schema" and inp.schema:
        value, _ = fill(inp.schema, PromptValues(_last_user_text(inp)), root=inp.schema)
        return value
    prompt = " ".join(t for r, t in inp.messages if r in ("user", "system"))
    keys = list(dict.fromkeys(_QUOTED_KEY_RE.findall(prompt)))
    if keys:
        return {k: text for k in keys}
    return {"answer": text}


def _cut_stop(text: str, stop: list[str]) -> tuple[str, str | None]:
    best: tuple[int, str] | None = None
    for seq in stop:
        if seq:
            i = text.find(seq)
            if i >= 0 and (best is None or i < best[0]):
                best = (i, seq)
    return (text[: best[0]], best[1]) if best else (text, None)


def _cut_tokens(text: str, limit: int) -> tuple[str, bool]:
    matches = list(TOKEN_RE.finditer(text))
    if limit <= 0 or len(matches) <= limit:
        return text, False
    return text[: matches[limit - 1].end()], True


def answer(inp: ChatInput) -> Answer:
    """The deterministic answer to ``inp``."""
    n_prompt = prompt_tokens(inp)
    reasoning = f"The user wrote {count_tokens(_last_user_text(inp))} tokens; answering." if inp.reasoning else None
    calls = choose_tools(inp)
    if calls:
        tool_calls = [(t.name, tool_arguments(t, inp)) for t in calls]
        n_out = sum(count_tokens(name + json.dumps(args)) for name, args in tool_calls)
        return Answer("", tool_calls, None, "tool_calls", None, n_prompt, n_out, reasoning)
    text = reply_text(inp)
    if inp.json_mode:
        parsed = json_answer(inp, text)
        out = json.dumps(parsed, ensure_ascii=False)
        return Answer(out, [], parsed, "stop", None, n_prompt, count_tokens(out), reasoning)
    text, stop_seq = _cut_stop(text, inp.stop)
    finish = "stop"
    if inp.max_tokens is not None:
        text, truncated = _cut_tokens(text, inp.max_tokens)
        if truncated:
            finish, stop_seq = "length", None
    return Answer(text, [], None, finish, stop_seq, n_prompt, count_tokens(text), reasoning)


def split_pieces(text: str) -> list[str]:
    """Word-by-word stream pieces; ``"".join(split_pieces(t)) == t``."""
    return re.findall(r"\s*\S+|\s+$", text)


__all__ = [
    "Answer",
    "ChatInput",
    "ToolDef",
    "answer",
    "choose_tools",
    "count_tokens",
    "prompt_tokens",
    "reply_text",
    "split_pieces",
]
