"""The plan of one chat call (sans-IO): everything decided before any I/O.

:func:`plan_chat` takes a route, a request and the call's context and decides the URL, the headers,
the body (kept as a dict until the transport encodes it), whether a stream is sent as a stream
(:class:`Streamed`) or in one piece (:class:`OnePiece`, with the reason), the client-side stop
sequences, the output cap used to infer a cut, and what the budget must hold. The client and gateway
mode (one step per route) both plan with it; nothing here sends a byte.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cfgateway import errors
from cfgateway.calls.limits import WORKERS_AI_DEFAULT_MAX_TOKENS, check_images, one_piece_reason
from cfgateway.costs.catalog import ModelInfo
from cfgateway.costs.pricing import input_token_bound
from cfgateway.routing.routes import GatewayOptions, Route
from cfgateway.types import CallContext, ChatRequest, Message, ToolSpec
from cfgateway.wire import WIRES, Wire

DEFAULT_MAX_OUTPUT = 4096  # what a call without max_tokens holds against a budget
MAX_TOKENS_LIMIT = 2**31 - 1
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_CHOICES = frozenset({"auto", "none", "required"})
_FORMATS = frozenset({"json_object", "json_schema", "text"})


@dataclass(frozen=True, slots=True)
class Streamed:
    """The route streams this call: events are read as they come."""


@dataclass(frozen=True, slots=True)
class OnePiece:
    """The call is sent once without streaming. ``reason`` is None for a plain (non-stream) call, else why a
    stream is answered in one piece (JSON mode, a model that cannot stream on this route)."""

    reason: str | None = None


Delivery = Streamed | OnePiece
STREAMED = Streamed()
WHOLE = OnePiece()


@dataclass(slots=True)
class ChatPlan:
    """One attempt of one chat call, decided: where, what, how it is delivered, what it may cost."""

    route: Route
    wire: Wire
    request: ChatRequest
    ctx: CallContext
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    delivery: Delivery
    stop: list[str] | None = None  # cut client-side (formats without a stop field)
    cap: int | None = None  # legacy Workers AI results carry no finish reason: the output cap, to infer one
    default_cap: bool = False  # that cap is the service's default (256): the caller set no max_tokens
    input_tokens: int = 0  # the budget hold's input side: a bound the call cannot exceed
    max_output: int = DEFAULT_MAX_OUTPUT
    started: float = field(default_factory=time.perf_counter)

    @property
    def streamed(self) -> bool:
        return self.delivery is STREAMED or isinstance(self.delivery, Streamed)

    def one_piece(self, reason: str) -> ChatPlan:
        """This plan sent without streaming (a route that answered a stream request with JSON)."""
        body = self.wire.build_chat_body(self.request, model_field(self.route), stream=False)
        return replace(self, body=body, delivery=OnePiece(reason), started=time.perf_counter())


def model_field(route: Route) -> str:
    """The model a wire module is given: the body's ``model`` field, or (Workers AI native, where the model
    is in the URL) the model id, which tells the format about the model's quirks."""
    return route.body_model if route.body_model is not None else route.provider_model


def call_metadata(ctx: CallContext, req: ChatRequest | None = None) -> dict[str, Any]:
    """The metadata a call carries to ``cf-aig-metadata`` (the user id included)."""
    meta = dict(ctx.metadata)
    if req is not None and req.metadata:
        meta.update(req.metadata)
    user = ctx.user or (req.user if req is not None else None)
    if user:
        meta.setdefault("user", user)
    return meta


def request_headers(
    route: Route, options: GatewayOptions | None, metadata: Mapping[str, Any] | None
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **route.headers}
    if route.via_gateway and (options is not None or metadata):
        headers.update((options or GatewayOptions()).headers(metadata))
    return headers


def input_bound(req: ChatRequest) -> int:
    """Input tokens the budget holds for ``req``: a bound the call cannot exceed (messages, tools, schema, images)."""
    return input_token_bound(req.messages, req.tools, req.response_format)


def plan_chat(
    route: Route, req: ChatRequest, *, stream: bool, options: GatewayOptions | None, ctx: CallContext,
    info: ModelInfo | None = None, images_checked: bool = True,
) -> ChatPlan:
    """Decide one chat attempt on ``route``. Raises ``InvalidInputError``/``ConfigError`` before anything is sent."""
    validate_chat(req)
    if route.chat_url is None:
        raise errors.ConfigError(f"{route.model} has no chat endpoint on {route.provider}")
    if images_checked:
        check_images(route, req, info)
    delivery: Delivery = WHOLE
    if stream:
        reason = one_piece_reason(route, req, info)
        delivery = STREAMED if reason is None else OnePiece(reason)
    wire = WIRES[route.wire]
    try:
        body = wire.build_chat_body(req, model_field(route), stream=delivery is STREAMED)
    except errors.CloudflareError:
        raise
    except ValueError as exc:  # the format cannot carry this request (e.g. Anthropic + response_format)
        raise errors.InvalidInputError(f"{route.model}: {exc}") from None
    # the metadata only feeds gateway headers: not built for direct routes
    headers = request_headers(route, options, call_metadata(ctx, req) if route.via_gateway else None)
    legacy = route.wire == "workers-ai" and info is not None and info.shape == "legacy"
    cap = (req.max_tokens if req.max_tokens is not None else WORKERS_AI_DEFAULT_MAX_TOKENS) if legacy else None
    return ChatPlan(
        route, wire, req, ctx, route.chat_url, headers, body, delivery,
        stop=req.stop if wire.CLIENT_SIDE_STOP else None, cap=cap, default_cap=legacy and req.max_tokens is None,
        input_tokens=input_bound(req), max_output=req.max_tokens or DEFAULT_MAX_OUTPUT,
    )


# ---------------------------------------------------------------------------------------------
# Request validation: what every route would refuse, refused before sending with the field named.


def _bad(field_name: str, value: Any, want: str) -> errors.InvalidInputError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return errors.InvalidInputError(f"{field_name} must be {want}, got {shown}")


def _number(req: ChatRequest, name: str, low: float, high: float) -> None:
    v = getattr(req, name)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not low <= v <= high:
        raise _bad(name, v, f"a number from {low:g} to {high:g}")


def _whole(req: ChatRequest, name: str, low: int, high: int) -> None:
    v = getattr(req, name)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high):
        raise _bad(name, v, f"a whole number from {low} to {high}")


def _check_message(i: int, m: Any) -> None:
    if not isinstance(m, Message):
        raise _bad(f"messages[{i}]", m, "a Message")
    if m.role not in _ROLES:
        raise _bad(f"messages[{i}].role", m.role, "one of system, user, assistant, tool")
    c = m.content
    if c is not None and not isinstance(c, str):
        if not isinstance(c, list) or not all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in c):
            raise _bad(f"messages[{i}].content", c, "a string or a list of content parts ({'type': ...})")


def _check_tools(req: ChatRequest) -> None:
    if not isinstance(req.tools, list) or not all(isinstance(t, ToolSpec) for t in req.tools):
        raise _bad("tools", req.tools, "a list of ToolSpec")
    choice = req.tool_choice
    if choice is None or choice in _CHOICES:
        return
    if not isinstance(choice, str) or choice not in {t.name for t in req.tools}:
        names = ", ".join(t.name for t in req.tools) or "no tools were given"
        raise _bad("tool_choice", choice, f"auto, none, required or the name of a given tool ({names})")


def validate_chat(req: ChatRequest) -> None:
    """Refuse a request every route would refuse, naming the field (``InvalidInputError``)."""
    if not isinstance(req.messages, list) or not req.messages:
        raise _bad("messages", req.messages, "a non-empty list of Message")
    for i, m in enumerate(req.messages):
        _check_message(i, m)
    _number(req, "temperature", 0.0, 100.0)
    _number(req, "top_p", 0.0, 100.0)
    for name in ("frequency_penalty", "presence_penalty", "repetition_penalty"):
        _number(req, name, -100.0, 100.0)
    _whole(req, "max_tokens", 1, MAX_TOKENS_LIMIT)
    _whole(req, "top_k", 1, MAX_TOKENS_LIMIT)
    _whole(req, "seed", -(2**63), 2**64)
    if req.stop is not None and (not isinstance(req.stop, list) or not all(isinstance(s, str) for s in req.stop)):
        raise _bad("stop", req.stop, "a list of strings")
    if req.tools or req.tool_choice is not None:
        _check_tools(req)
    rf = req.response_format
    if rf is not None and (not isinstance(rf, dict) or rf.get("type") not in _FORMATS):
        raise _bad("response_format", rf, "{'type': 'json_object'} or {'type': 'json_schema', 'json_schema': {...}}")
    if not isinstance(req.extra_body, dict) or not isinstance(req.metadata, dict):
        raise _bad("extra_body/metadata", req.extra_body if not isinstance(req.extra_body, dict) else req.metadata,
                   "a dict")
    if req.user is not None and not isinstance(req.user, str):
        raise _bad("user", req.user, "a string")


__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "STREAMED",
    "WHOLE",
    "ChatPlan",
    "Delivery",
    "OnePiece",
    "Streamed",
    "call_metadata",
    "input_bound",
    "model_field",
    "plan_chat",
    "request_headers",
    "validate_chat",
]
