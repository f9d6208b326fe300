"""How alike two answers are: pure functions for shadow comparisons and rollout gates.

>>> round(cosine([1.0, 0.0], [1.0, 1.0]), 4)
0.7071
>>> tool_call_agreement([ToolCall("add", {"a": 6, "b": 7})], [ToolCall("add", {"a": 6, "b": 8})])
0.5

Text answers are compared by the cosine of their embeddings (:func:`answer_similarity` takes the
embedding function, so any embedding model can judge). Answers that call tools are compared by
:func:`tool_call_agreement`: the tool names must match, and a call's score is the share of argument
keys (over both calls' keys) whose values are equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cfgateway.types import ChatResponse, ToolCall

Embed = Callable[[list[str]], Sequence[Sequence[float]]]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of the angle between two vectors, in ``[-1, 1]``.

    Raises ``ValueError`` for vectors of different or zero length, or a zero vector (no direction:
    the similarity is undefined, never silently 0).
    """
    if len(a) != len(b):
        raise ValueError(f"cosine needs vectors of one size, got {len(a)} and {len(b)}")
    if not a:
        raise ValueError("cosine needs non-empty vectors")
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(y * y for y in b))
    if na == 0.0 or nb == 0.0:
        raise ValueError("cosine of a zero vector is undefined (an empty answer's embedding?)")
    return max(-1.0, min(1.0, dot / (na * nb)))


def _name_args(call: ToolCall | Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    if isinstance(call, ToolCall):
        return call.name, call.arguments
    name, args = call.get("name"), call.get("arguments", call.get("args", {}))
    if not isinstance(name, str) or not isinstance(args, Mapping):
        raise ValueError(f"a tool call needs a name and an arguments object, got {call!r}")
    return name, args


def _args_agreement(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    keys = set(a) | set(b)
    if not keys:
        return 1.0
    same = sum(1 for k in keys if k in a and k in b and a[k] == b[k])
    return same / len(keys)


def tool_call_agreement(
    a: Sequence[ToolCall | Mapping[str, Any]], b: Sequence[ToolCall | Mapping[str, Any]]
) -> float:
    """Agreement of two answers' tool calls, in ``[0, 1]``.

    Each call of ``a`` is paired with the best-agreeing unpaired call of ``b`` of the same tool name
    (order does not matter: parallel calls come in any order); a pair scores the share of argument
    keys whose values are equal; the total is the sum of pair scores over the larger number of calls
    (an extra or missing call scores 0). Two answers without tool calls agree (1.0).
    """
    left = [_name_args(c) for c in a]
    right = [_name_args(c) for c in b]
    if not left and not right:
        return 1.0
    unpaired = list(range(len(right)))
    total = 0.0
    for name, args in left:
        scores = [(_args_agreement(args, right[j][1]), j) for j in unpaired if right[j][0] == name]
        if scores:
            best, j = max(scores)
            total += best
            unpaired.remove(j)
    return total / max(len(left), len(right))


def answer_similarity(baseline: ChatResponse, candidate: ChatResponse, embed: Embed) -> float:
    """How alike two chat answers are: tool-call agreement when either calls tools, else the cosine
    of the embeddings ``embed([baseline.text, candidate.text])`` returns."""
    if baseline.tool_calls or candidate.tool_calls:
        return tool_call_agreement(baseline.tool_calls, candidate.tool_calls)
    vectors = embed([baseline.text, candidate.text])
    if len(vectors) != 2:
        raise ValueError(f"the embedding function returned {len(vectors)} vectors for 2 texts")
    return cosine(vectors[0], vectors[1])


__all__ = ["Embed", "answer_similarity", "cosine", "tool_call_agreement"]
