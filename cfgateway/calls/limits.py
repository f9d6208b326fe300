"""What a route cannot do as asked, decided before sending (sans-IO), for every adapter and the proxy.

- Images for a model the catalog marks text-only.
- Streams the route refuses: Workers AI JSON mode, gpt-oss / kimi on ``/ai/run`` (catalog ``native_stream``).
- Answers cut at Workers AI's default of 256 output tokens when the caller set no ``max_tokens``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cfgateway import errors
from cfgateway.costs.catalog import ModelInfo
from cfgateway.routing.routes import Route
from cfgateway.types import ChatChunk, ChatRequest, ChatResponse, ToolCallChunk, Usage

log = logging.getLogger("cfgateway.client")

WORKERS_AI_DEFAULT_MAX_TOKENS = 256  # docs/wire-notes.md §1.2: the /ai/run default when max_tokens is absent


def check_images(route: Route, req: ChatRequest, info: ModelInfo | None) -> None:
    """Images for a model the catalog marks text-only fail here, before anything is sent."""
    if info is None or info.vision is not False:
        return  # a vision model, or the catalog does not say: let the service decide
    for i, m in enumerate(req.messages):
        if isinstance(m.content, list) and any(p.get("type") in ("image_url", "image") for p in m.content):
            raise errors.InvalidInputError(
                f"messages[{i}]: {route.model} does not take images; use a vision model "
                "(catalog 'vision': true) or send text only"
            )


def one_piece_reason(route: Route, request: ChatRequest, info: ModelInfo | None) -> str | None:
    """Why a streamed call must be sent as one non-streamed call, or None when the route streams it.

    Workers AI's JSON mode does not stream (json-mode docs); gpt-oss and kimi answer ``stream: true`` on
    ``/ai/run`` with an empty JSON result (docs/wire-notes.md §1.4; the official provider re-sends them
    with ``stream: false``). The catalog's ``native_stream`` flag marks those models.
    """
    if route.is_workers_ai and request.response_format is not None:
        return "Workers AI JSON mode does not stream"
    if route.wire == "workers-ai" and info is not None and not info.native_stream:
        return f"{route.model} does not stream on /ai/run"
    return None


_one_piece_logged: set[str] = set()


def one_piece(route: Route, reason: str | None) -> None:
    """Log (at INFO, once per model and reason) that a stream is answered by one non-streamed call."""
    key = f"{route.model}: {reason or 'answered JSON to stream: true'}"
    if key not in _one_piece_logged:
        _one_piece_logged.add(key)
        log.info("%s; sent without streaming, the answer is yielded as one chunk", key)


def response_chunks(resp: ChatResponse) -> list[ChatChunk]:
    """A whole answer as a stream: one chunk with the content, then the final chunk (usage, cost, records)."""
    tools = [
        ToolCallChunk(index=i, id=tc.id or None, name=tc.name, arguments=json.dumps(tc.arguments))
        for i, tc in enumerate(resp.tool_calls)
    ]
    meta: dict[str, Any] = {"model": resp.model, "provider": resp.provider, "provider_model": resp.provider_model,
                            "gateway": resp.gateway}
    content = ChatChunk(text=resp.text, reasoning=resp.reasoning or "", tool_call_chunks=tools, **meta)
    final = ChatChunk(final=True, finish_reason=resp.finish_reason, usage=resp.usage, attempts=resp.attempts,
                      cost=resp.cost, records=resp.records, **meta)
    return [content, final]


_cap_warned: set[str] = set()


def checked_finish(
    cap: int | None, default_cap: bool, model: str, finish_reason: str | None, usage: Usage | None
) -> str | None:
    """The finish reason, with a legacy Workers AI result's cut at its output cap called "length"
    (guess: those results carry no finish reason, so a full cap means cut), and said once per model when
    the cap was the service's default."""
    if cap is not None and finish_reason == "stop" and usage is not None and usage.output_tokens >= cap:
        finish_reason = "length"
    if default_cap and finish_reason == "length":
        warn_default_cap(model)
    return finish_reason


def warn_default_cap(model: str) -> None:
    """An answer stopped at the length limit the caller never set: say so (once per model), never silently."""
    if model not in _cap_warned:
        _cap_warned.add(model)
        log.warning(
            "%s: the answer was cut at Workers AI's default of %d output tokens (finish_reason 'length'); "
            "set max_tokens= for longer answers", model, WORKERS_AI_DEFAULT_MAX_TOKENS,
        )


__all__ = [
    "WORKERS_AI_DEFAULT_MAX_TOKENS", "check_images", "checked_finish", "one_piece", "one_piece_reason",
    "response_chunks", "warn_default_cap",
]
