"""Fill a JSON schema with values taken from a prompt (tool arguments, JSON-schema mode).

Deterministic and simple: numbers in the prompt fill number fields in order, quoted strings fill
string fields, ``name: value`` / ``name is value`` pairs fill the field they name, ``in Paris`` fills
location-like fields, capitalised words are the last resort before the field's own name.
Required fields are always filled; optional ones only when the prompt names a value for them.
"""

from __future__ import annotations

import re
from typing import Any

_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_QUOTED_RE = re.compile(r"(?<!\w)'([^'\n]+?)'(?!\w)|\"([^\"\n]+?)\"|“([^”\n]+?)”|「([^」\n]+?)」")
_CAPS_RE = re.compile(r"[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")
_PLACE_RE = re.compile(r"\b(?:in|at|for|to|from|near)\s+([A-Z][\w'’-]*(?:(?:\s+|,\s*)[A-Z][\w'’-]*)*)")
_PLACE_WORDS = ("city", "location", "place", "country", "town", "address", "region", "where", "destination", "origin")
_NEGATIONS = re.compile(r"\b(?:false|not|no|don't|never|disable|disabled|off)\b", re.I)
_AFFIRM = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_SEP = r"(?:\s*[:=]\s*|\s+(?:is|are|as|of|named|called|equals?)\s+|\s+(?=[\"'A-Z0-9-]))"
_STOP_VALUE = re.compile(r"\s+and\s+|[,;.!?\n)]")


def name_variants(name: str) -> list[str]:
    """``user_id`` -> ["user_id", "user id"]; ``cityName`` -> ["cityName", "city name"]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ").lower()
    out = [name]
    if spaced != name.lower():
        out.append(spaced)
    return out


class PromptValues:
    """Values found in one prompt, handed out in order (each quoted string / number used once)."""

    def __init__(self, text: str, ignore_words: frozenset[str] = frozenset()) -> None:
        self.text = text
        self.lower = text.lower()
        self.numbers = [m.group(0) for m in _NUMBER_RE.finditer(text)]
        self.quoted = [next(g for g in m.groups() if g is not None) for m in _QUOTED_RE.finditer(text)]
        self.caps = _caps_runs(text, ignore_words)
        self._used_numbers = 0
        self._used_quoted = 0
        self._used_caps = 0

    def next_number(self) -> str | None:
        if self._used_numbers < len(self.numbers):
            self._used_numbers += 1
            return self.numbers[self._used_numbers - 1]
        return None

    def next_quoted(self) -> str | None:
        if self._used_quoted < len(self.quoted):
            self._used_quoted += 1
            return self.quoted[self._used_quoted - 1]
        return None

    def next_caps(self) -> str | None:
        if self._used_caps < len(self.caps):
            self._used_caps += 1
            return self.caps[self._used_caps - 1]
        return None

    def after_name(self, name: str) -> str | None:
        """The value written right after a field's name: ``city: Paris``, ``count is 3``, ``name='Bo'``."""
        for variant in name_variants(name):
            pat = re.compile(rf"(?<![\w]){re.escape(variant)}(?![\w]){_SEP}", re.I)
            m = pat.search(self.text)
            if m is None:
                continue
            rest = self.text[m.end() :]
            q = re.match(r"[\"'“]([^\"'”\n]+)[\"'”]", rest)
            if q:
                return q.group(1)
            caps = _CAPS_RE.match(rest)
            if caps:  # "city: San Francisco please" -> the capitalised run
                return caps.group(0)
            value = _STOP_VALUE.split(rest, maxsplit=1)[0].strip()
            if value:
                return value
        return None

    def place(self) -> str | None:
        m = _PLACE_RE.search(self.text)
        return m.group(1).strip(" ,") if m else None

    def mentions(self, word: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", self.lower) is not None


def _caps_runs(text: str, ignore: frozenset[str]) -> list[str]:
    runs: list[str] = []
    for m in _CAPS_RE.finditer(text):
        words = m.group(0).split()
        before = text[: m.start()].rstrip()
        if not before or before[-1] in ".!?:\n":
            words = words[1:]  # a sentence's first word is capitalised by grammar, not meaning
        words = [w for w in words if w not in ("I", "OK") and w.lower() not in ignore]
        if words:
            runs.append(" ".join(words))
    return runs


def resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` and pick the first non-null branch of ``anyOf``/``oneOf``/``allOf``."""
    for _ in range(20):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            continue
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                chosen = next((o for o in options if isinstance(o, dict) and o.get("type") != "null"), options[0])
                rest = {k: v for k, v in schema.items() if k != key}
                schema = {**rest, **chosen}
                break
        else:
            return schema
    return schema if isinstance(schema, dict) else {}


def _type_of(schema: dict[str, Any]) -> str:
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if isinstance(t, str):
        return t
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def fill(schema: Any, pv: PromptValues, *, name: str = "", required: bool = True, root: Any = None) -> tuple[Any, bool]:
    """A value for ``schema`` and whether the prompt supplied it (False = a made-up default)."""
    root = root if isinstance(root, dict) else (schema if isinstance(schema, dict) else {})
    s = resolve(schema, root)
    if "const" in s:
        return s["const"], True
    if isinstance(s.get("enum"), list) and s["enum"]:
        return _fill_enum(s["enum"], pv)
    kind = _type_of(s)
    if kind == "object":
        return _fill_object(s, pv, root), True
    if kind == "array":
        item, found = fill(s.get("items", {}), pv, name=name, required=required, root=root)
        return [item], found
    if kind in ("integer", "number"):
        return _fill_number(s, kind, pv, name, required)
    if kind == "boolean":
        return _fill_bool(pv, name)
    if kind == "null":
        return None, True
    return _fill_string(s, pv, name, required)


def _fill_object(s: dict[str, Any], pv: PromptValues, root: dict[str, Any]) -> dict[str, Any]:
    props = s.get("properties") or {}
    req = set(s.get("required") or [])
    out: dict[str, Any] = {}
    for pname, pschema in props.items():
        value, found = fill(pschema, pv, name=pname, required=pname in req, root=root)
        if pname in req or found:
            out[pname] = value
    return out


def _fill_enum(options: list[Any], pv: PromptValues) -> tuple[Any, bool]:
    for opt in options:
        if isinstance(opt, str) and pv.mentions(opt):
            return opt, True
    return options[0], False


def _fill_number(s: dict[str, Any], kind: str, pv: PromptValues, name: str, required: bool) -> tuple[Any, bool]:
    raw = pv.after_name(name) if name else None
    if raw is not None and not _NUMBER_RE.fullmatch(raw):
        m = _NUMBER_RE.match(raw)
        raw = m.group(0) if m else None
    found = raw is not None
    if raw is None and required:
        raw = pv.next_number()
        found = raw is not None
    if raw is None:
        default = s.get("default", s.get("minimum", 0))
        return (int(default) if kind == "integer" else float(default)), False
    value = float(raw)
    return (int(value) if kind == "integer" else value), found


def _fill_bool(pv: PromptValues, name: str) -> tuple[bool, bool]:
    raw = pv.after_name(name) if name else None
    if raw is not None and raw.split()[0].lower() in _AFFIRM:
        return _AFFIRM[raw.split()[0].lower()], True
    for variant in name_variants(name) if name else []:
        idx = pv.lower.find(variant.lower())
        if idx >= 0:
            window = pv.lower[max(0, idx - 20) : idx + len(variant) + 20]
            return _NEGATIONS.search(window) is None, True
    return not pv.mentions("false"), False


def _fill_string(s: dict[str, Any], pv: PromptValues, name: str, required: bool) -> tuple[str, bool]:
    explicit = pv.after_name(name) if name else None
    if explicit is not None:
        return explicit, True
    if not required:
        return str(s.get("default", name or "value")), False
    for get in (pv.next_quoted, lambda: pv.place() if _is_place(name) else None, pv.next_caps):
        value = get()
        if value:
            return value, True
    return name or "value", False


def _is_place(name: str) -> bool:
    low = name.lower()
    return any(w in low for w in _PLACE_WORDS)


def fill_schema(schema: dict[str, Any], prompt: str, ignore_words: frozenset[str] = frozenset()) -> Any:
    """The object (or value) a prompt implies for ``schema``."""
    value, _ = fill(schema, PromptValues(prompt, ignore_words), root=schema)
    return value


__all__ = ["PromptValues", "fill", "fill_schema", "name_variants", "resolve"]
