"""Model strings: the grammar every entry point (adapters, proxy, CLI, config) checks before anything is sent.

A model string becomes part of a URL path (``…/ai/run/{model}``, ``…/{gateway}/{provider}/…``), so a
string a caller supplies is hostile until it matches this grammar:

- Workers AI: ``@cf/{segment}/…`` or ``@hf/{segment}/…`` (optionally behind ``workers-ai/``);
- a provider behind AI Gateway: ``{slug}/{segment}[/{segment}…]`` with ``slug`` lowercase letters,
  digits and ``-`` (``openai``, ``custom-deepinfra``, ``google-ai-studio``, ``dynamic``);
- a segment is ``[A-Za-z0-9_]`` followed by ``[A-Za-z0-9._:+-]`` (Bedrock's ``…-v1:0``, OpenAI's
  ``ft:gpt-4o-mini:org::id``, Hugging Face's ``meta-llama/Llama-3.1-8B-Instruct`` all fit).

So no ``..`` or ``.`` segment, no empty segment, no ``?``, ``#``, ``%``-escape, backslash, whitespace or
control character ever reaches a URL; the segments are still percent-encoded when a URL is built.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from cfgateway.errors import ConfigError

MAX_MODEL_LENGTH = 256
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:+-]*\Z")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_WORKERS_PREFIXES = ("@cf", "@hf")
_NAMED = {"?": "'?' (a query string)", "#": "'#' (a fragment)", "%": "'%' (a percent-escape)",
          "\\": "a backslash", "..": "'..' (a parent-directory segment)"}


_PLAIN = re.compile(r"[A-Za-z0-9@/._:+-]*\Z")  # what nearly every model string is made of: nothing to name


def _bad_character(model: str) -> str | None:
    if _PLAIN.match(model) and ".." not in model:
        return None
    for token, name in _NAMED.items():
        if token in model:
            return name
    for ch in model:
        if ch.isspace():
            return "whitespace"
        if ord(ch) < 32 or ord(ch) == 127:
            return f"a control character (U+{ord(ch):04X})"
    return None


def _refuse(model: str, why: str) -> ConfigError:
    shown = model if len(model) <= 80 else model[:77] + "..."
    return ConfigError(
        f"model string {shown!r} is refused: {why}. A model string is '@cf/{{author}}/{{model}}' for Workers AI or "
        f"'{{provider}}/{{model}}' for a provider behind AI Gateway, made of letters, digits and . _ - : + "
        f"between single slashes (e.g. '@cf/meta/llama-3.3-70b-instruct-fp8-fast', 'openai/gpt-4o-mini')"
    )


def check_model_string(model: object) -> str:
    """``model`` if it matches the grammar above, else a :class:`ConfigError` saying what is wrong."""
    if not isinstance(model, str):
        raise ConfigError(f"a model string must be a str, not {type(model).__name__}")
    if not model:
        raise ConfigError("the model string is empty: name a model such as '@cf/meta/llama-3.3-70b-instruct-fp8-fast'")
    if len(model) > MAX_MODEL_LENGTH:
        raise _refuse(model, f"it is longer than {MAX_MODEL_LENGTH} characters")
    bad = _bad_character(model)
    if bad is not None:
        raise _refuse(model, f"it contains {bad}")
    parts = model.split("/")
    if parts[0] == "workers-ai":
        parts = parts[1:]
    first, rest = (parts[0], parts[1:]) if parts else ("", [])
    if first in _WORKERS_PREFIXES:
        if not rest:
            raise _refuse(model, f"nothing follows {first}/")
    elif not _SLUG.match(first):
        raise _refuse(model, f"the provider {first!r} is not a lowercase slug (letters, digits, '-')")
    for seg in rest:
        if not seg:
            raise _refuse(model, "it has an empty path segment ('//' or a trailing '/')")
        if not _SEGMENT.match(seg):
            raise _refuse(model, f"the segment {seg!r} has a character outside letters, digits and . _ - : +")
    return model


def quote_path(model_path: str) -> str:
    """Percent-encode each ``/``-separated segment of a checked model path (a no-op for valid strings)."""
    return "/".join(quote(seg, safe="@:+-._~") for seg in model_path.split("/"))


_SHARE = re.compile(r"\d*\.\d+|\d+\.")


def split_share(spec: str) -> tuple[str, str | None]:
    """``MODEL@SHARE`` or ``MODEL:SHARE`` -> ``(MODEL, SHARE)``; ``(spec, None)`` without a share.

    ``@`` is unambiguous (a model string has it only first, in ``@cf/``). After ``:`` only a decimal share
    with a point counts (``0.1``, ``1.0``, ``.5``): model strings themselves contain ``:`` (Bedrock's
    ``...-v1:0``, OpenAI's ``ft:...``), so ``MODEL:0`` or ``MODEL:1`` stay whole model strings.
    """
    spec = spec.strip()
    model, at, share = spec.rpartition("@")
    if at and model:
        return model.strip(), share.strip()
    model, colon, share = spec.rpartition(":")
    if colon and model and _SHARE.fullmatch(share.strip()):
        return model.strip(), share.strip()
    return spec, None


__all__ = ["MAX_MODEL_LENGTH", "check_model_string", "quote_path", "split_share"]
