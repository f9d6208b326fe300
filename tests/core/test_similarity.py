"""Similarity of two answers (cosine, tool-call agreement) on answers whose result is known by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cfgateway.routing.similarity import answer_similarity, cosine, tool_call_agreement
from cfgateway.types import ChatResponse, ToolCall


def test_cosine_on_known_vectors() -> None:
    assert cosine([1.0, 0.0], [0.0, 2.0]) == 0.0
    assert cosine([3.0, 4.0], [6.0, 8.0]) == pytest.approx(1.0)
    assert cosine([1.0, 2.0], [-1.0, -2.0]) == pytest.approx(-1.0)
    assert cosine([1, 2, 3], [4, 5, 6]) == pytest.approx(32 / (math.sqrt(14) * math.sqrt(77)))  # 0.974632
    assert cosine([1.0, 1.0], [1.0, 0.0]) == pytest.approx(1 / math.sqrt(2))


def test_cosine_refuses_what_has_no_answer() -> None:
    with pytest.raises(ValueError, match="one size"):
        cosine([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="zero vector"):
        cosine([0.0, 0.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-empty"):
        cosine([], [])


def add(a: Any, b: Any) -> ToolCall:
    return ToolCall("add", {"a": a, "b": b})


def test_tool_call_agreement() -> None:
    assert tool_call_agreement([], []) == 1.0
    assert tool_call_agreement([add(6, 7)], [add(6, 7)]) == 1.0
    assert tool_call_agreement([add(6, 7)], [add(6, 8)]) == 0.5  # one of two argument keys agrees
    assert tool_call_agreement([add(6, 7)], [ToolCall("mul", {"a": 6, "b": 7})]) == 0.0  # another tool
    assert tool_call_agreement([add(6, 7)], []) == 0.0
    # order does not matter; a missing call scores 0 over the larger count
    assert tool_call_agreement([add(1, 2), ToolCall("now", {})], [ToolCall("now", {}), add(1, 2)]) == 1.0
    assert tool_call_agreement([add(1, 2), ToolCall("now", {})], [add(1, 2)]) == 0.5
    # a key only one side has counts against agreement; dicts work as calls too
    assert tool_call_agreement([{"name": "f", "arguments": {"x": 1}}], [{"name": "f", "args": {"x": 1, "y": 2}}]) \
        == 0.5
    with pytest.raises(ValueError, match="name and an arguments"):
        tool_call_agreement([{"arguments": {}}], [])


def test_answer_similarity_uses_tools_when_either_side_calls_them() -> None:
    def resp(text: str, calls: list[ToolCall] | None = None) -> ChatResponse:
        return ChatResponse(text=text, model="m", provider="p", tool_calls=calls or [])

    vectors = {"the sky is blue": [1.0, 0.0], "blue sky": [1.0, 1.0]}
    seen: list[list[str]] = []

    def embed(texts: list[str]) -> list[list[float]]:
        seen.append(texts)
        return [vectors[t] for t in texts]

    assert answer_similarity(resp("the sky is blue"), resp("blue sky"), embed) == pytest.approx(1 / math.sqrt(2))
    assert seen == [["the sky is blue", "blue sky"]]
    assert answer_similarity(resp("", [add(6, 7)]), resp("", [add(6, 8)]), embed) == 0.5
    assert answer_similarity(resp("", [add(6, 7)]), resp("42"), embed) == 0.0
    assert len(seen) == 1  # tool answers are never embedded
