"""Success bodies and SSE event lists for each wire format (server side, written independently of wire/)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from cfgateway.costs.catalog import ModelInfo
from cfgateway.emulator.answers import Answer, split_pieces
from cfgateway.emulator.reply import DONE, event_frame, frame

_P_ALPHABET = "abdefghijklmnoprstuvwxyz0123456789"
_ARG_PIECE = 12  # characters of tool-call JSON per streamed delta


def padding(i: int) -> str:
    """The ``p`` obfuscation field of Workers AI stream events (deterministic here)."""
    return _P_ALPHABET[: 4 + (i * 7) % 26]


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


# -- usage -------------------------------------------------------------------------------------
def workers_usage(ans: Answer, info: ModelInfo | None) -> dict[str, Any]:
    n_in = (info.neurons_in or 0) if info else 0
    n_out = (info.neurons_out or 0) if info else 0
    return {
        "prompt_tokens": ans.prompt_tokens,
        "completion_tokens": ans.completion_tokens,
        "total_tokens": ans.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "neurons": (ans.prompt_tokens * n_in + ans.completion_tokens * n_out) / 1e6,
    }


def provider_usage(ans: Answer, provider: str) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": ans.prompt_tokens,
        "completion_tokens": ans.completion_tokens,
        "total_tokens": ans.total_tokens,
    }
    if provider == "openai":
        usage["prompt_tokens_details"] = {"cached_tokens": 0}
    return usage


def embed_usage(tokens: int, info: ModelInfo | None) -> dict[str, Any]:
    n_in = (info.neurons_in or 0) if info else 0
    return {
        "prompt_tokens": tokens,
        "completion_tokens": 0,
        "total_tokens": tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "neurons": tokens * n_in / 1e6,
    }


# -- Workers AI legacy -----------------------------------------------------------------------------
def legacy_result(ans: Answer, usage: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"response": ans.parsed if ans.parsed is not None else ans.text}
    if ans.tool_calls:
        result["tool_calls"] = [{"name": n, "arguments": a} for n, a in ans.tool_calls]
    result["usage"] = usage
    return result


def legacy_frames(ans: Answer, usage: dict[str, Any]) -> list[str]:
    frames = [frame({"response": piece, "p": padding(i)}) for i, piece in enumerate(split_pieces(ans.text))]
    if ans.tool_calls:  # guess: one event carrying the complete calls (arguments as objects)
        frames.append(frame({"response": "", "tool_calls": [{"name": n, "arguments": a} for n, a in ans.tool_calls]}))
    frames.append(frame({"response": "", "usage": usage}))
    frames.append(DONE)
    return frames


# -- OpenAI chat.completion ----------------------------------------------------------------------------
def _message(ans: Answer, tool_prefix: str) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": None if ans.tool_calls else ans.text}
    if ans.reasoning:
        msg["reasoning_content"] = ans.reasoning
    if ans.tool_calls:
        msg["tool_calls"] = [
            {"id": new_id(tool_prefix), "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for n, a in ans.tool_calls
        ]
    return msg


def chat_completion(
    ans: Answer, model: str, usage: dict[str, Any] | None, *, cid: str, tool_prefix: str = "call_"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": _message(ans, tool_prefix), "logprobs": None, "finish_reason": ans.finish_reason}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def _tool_deltas(ans: Answer, tool_prefix: str) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = []
    for i, (name, args) in enumerate(ans.tool_calls):
        first = {"index": i, "id": new_id(tool_prefix), "type": "function", "function": {"name": name, "arguments": ""}}
        deltas.append({"tool_calls": [first]})
        text = json.dumps(args)
        for j in range(0, len(text), _ARG_PIECE):
            deltas.append({"tool_calls": [{"index": i, "function": {"arguments": text[j : j + _ARG_PIECE]}}]})
    return deltas


def openai_chunks(
    ans: Answer, model: str, usage: dict[str, Any] | None, *, cid: str, tool_prefix: str = "call_", pad: bool = False
) -> list[dict[str, Any]]:
    """chat.completion.chunk objects: role, reasoning, content, tool calls, finish, optional usage chunk."""
    created = int(time.time())
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"reasoning_content": p} for p in split_pieces(ans.reasoning or "")]
    deltas += [{"content": p} for p in split_pieces(ans.text)]
    deltas += _tool_deltas(ans, tool_prefix)
    chunks = [
        {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}],
        }
        for d in deltas
    ]
    chunks.append(
        {**chunks[0], "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": ans.finish_reason}]}
    )
    if usage is not None:
        chunks.append({**chunks[0], "choices": [], "usage": usage})
    if pad:
        for i, c in enumerate(chunks):
            c["p"] = padding(i)
    return chunks


def openai_frames(chunks: list[dict[str, Any]], *, native_usage: dict[str, Any] | None = None) -> list[str]:
    frames = [frame(c) for c in chunks]
    if native_usage is not None:  # Workers AI native endpoint: cumulative usage event before [DONE]
        frames.append(frame({"response": "", "usage": native_usage}))
    frames.append(DONE)
    return frames


# -- Anthropic Messages ------------------------------------------------------------------------------------
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _anthropic_stop(ans: Answer) -> str:
    if ans.stop_sequence is not None:
        return "stop_sequence"
    return _STOP_REASONS.get(ans.finish_reason, "end_turn")


def anthropic_usage(ans: Answer, output_tokens: int | None = None) -> dict[str, Any]:
    return {
        "input_tokens": ans.prompt_tokens,
        "output_tokens": ans.completion_tokens if output_tokens is None else output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def anthropic_message(ans: Answer, model: str, mid: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if ans.text or not ans.tool_calls:
        content.append({"type": "text", "text": ans.text})
    content += [{"type": "tool_use", "id": new_id("toolu_"), "name": n, "input": a} for n, a in ans.tool_calls]
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _anthropic_stop(ans),
        "stop_sequence": ans.stop_sequence,
        "usage": anthropic_usage(ans),
    }


def anthropic_frames(ans: Answer, model: str, mid: str) -> list[str]:
    start = anthropic_message(ans, model, mid)
    start.update(content=[], stop_reason=None, stop_sequence=None, usage=anthropic_usage(ans, 1))
    frames = [
        event_frame("message_start", {"type": "message_start", "message": start}),
        event_frame("ping", {"type": "ping"}),
    ]
    index = 0
    if ans.text or not ans.tool_calls:
        frames.append(_block_start(index, {"type": "text", "text": ""}))
        frames += [_block_delta(index, {"type": "text_delta", "text": p}) for p in split_pieces(ans.text)]
        frames.append(event_frame("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    for name, args in ans.tool_calls:
        frames.append(_block_start(index, {"type": "tool_use", "id": new_id("toolu_"), "name": name, "input": {}}))
        text = json.dumps(args)
        pieces = [text[j : j + _ARG_PIECE] for j in range(0, len(text), _ARG_PIECE)]
        frames += [_block_delta(index, {"type": "input_json_delta", "partial_json": p}) for p in pieces]
        frames.append(event_frame("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    delta = {"stop_reason": _anthropic_stop(ans), "stop_sequence": ans.stop_sequence}
    frames.append(
        event_frame(
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": ans.completion_tokens}},
        )
    )
    frames.append(event_frame("message_stop", {"type": "message_stop"}))
    return frames


def _block_start(index: int, block: dict[str, Any]) -> str:
    return event_frame("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def _block_delta(index: int, delta: dict[str, Any]) -> str:
    return event_frame("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


# -- embeddings -------------------------------------------------------------------------------------------
def native_embedding(
    vectors: Any, dims: int, pooling: str | None, usage: dict[str, Any], *, rows: int | None = None
) -> dict[str, Any]:
    """``vectors``: the rows, or a placeholder (then ``rows`` gives their count)."""
    result: dict[str, Any] = {"shape": [len(vectors) if rows is None else rows, dims], "data": vectors}
    if pooling is not None:
        result["pooling"] = pooling
    result["usage"] = usage
    return result


def openai_embedding(vectors: list[Any], model: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "list",
        "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
        "model": model,
    }
    if usage is not None:
        body["usage"] = usage
    return body


__all__ = [
    "anthropic_frames",
    "anthropic_message",
    "chat_completion",
    "embed_usage",
    "legacy_frames",
    "legacy_result",
    "native_embedding",
    "new_id",
    "openai_chunks",
    "openai_embedding",
    "openai_frames",
    "padding",
    "provider_usage",
    "workers_usage",
]
