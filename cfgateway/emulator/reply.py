"""What a handler answers (:class:`Reply`), SSE framing, and the error bodies of each route family.

Families decide the error and stream-error format:
``workers`` (native ``/ai/run``: Cloudflare envelope), ``cfv1`` (Workers AI OpenAI-compatible
``/ai/v1``: Cloudflare envelope errors, OpenAI streams), ``openai`` (providers behind the gateway
and ``compat``), ``anthropic`` and ``gateway`` (AiGatewayError bodies).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

DONE = "data: [DONE]\n\n"
SSE_TYPE = "text/event-stream"
JSON_TYPE = "application/json"


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def frame(obj: Any) -> str:
    return f"data: {dumps(obj)}\n\n"


def event_frame(event: str, obj: Any) -> str:
    return f"event: {event}\ndata: {dumps(obj)}\n\n"


@dataclass(slots=True)
class Reply:
    """A finished answer: a JSON ``body``, SSE ``frames`` or ``raw`` bytes, plus how to send it."""

    status: int = 200
    body: Any = None
    frames: list[str] | None = None
    raw: bytes | None = None
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    family: str = "workers"
    delay_s: float = 0.0
    drop_body: bool = False
    faulted: bool = False

    @property
    def is_stream(self) -> bool:
        return self.frames is not None

    @property
    def ok(self) -> bool:
        return self.status < 400 and not self.faulted

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.frames is not None:
            return "".join(self.frames).encode("utf-8")
        return dumps(self.body).encode("utf-8")

    def copy(self, **changes: Any) -> Reply:
        return replace(self, headers=dict(self.headers), **changes)


def stream_reply(frames: list[str], family: str) -> Reply:
    return Reply(frames=frames, content_type=SSE_TYPE, family=family, headers={"cache-control": "no-cache"})


# -- error bodies ----------------------------------------------------------------------------
def cf_error(status: int, code: int, message: str, *, result: Any = None, family: str = "workers") -> Reply:
    """Cloudflare v4 envelope (key order as observed live: errors first). ``result``: {} for AI errors."""
    body = {"errors": [{"message": message, "code": code}], "success": False, "result": result, "messages": []}
    return Reply(status=status, body=body, family=family)


def ai_error(status: int, code: int, message: str, family: str = "workers") -> Reply:
    return cf_error(status, code, message, result={}, family=family)


def bad_input(message: str, family: str = "workers") -> Reply:
    return ai_error(400, 5006, f"AiError: Bad input: {message}", family)


def gateway_error(status: int, code: int, message: str) -> Reply:
    body = {
        "success": False,
        "result": [],
        "messages": [],
        "error": [{"code": code, "message": message}],
        "name": "AiGatewayError",
        "httpCode": status,
        "internalCode": code,
    }
    return Reply(status=status, body=body, family="gateway")


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "requests",
}


def openai_error(status: int, message: str, *, code: Any = None, type_: str | None = None) -> Reply:
    err_type = type_ or _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    return Reply(status=status, body=body, family="openai")


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}


def anthropic_error(status: int, message: str) -> Reply:
    return Reply(status=status, body=anthropic_error_body(status, message), family="anthropic")


def model_not_found(model: str) -> Reply:
    return openai_error(404, f"The model `{model}` does not exist", code="model_not_found")


def context_error(family: str, n: int, window: int) -> Reply:
    """Input longer than the context window, in the family's format. Message texts are guesses."""
    if family in ("openai", "gateway"):
        msg = (
            f"This model's maximum context length is {window} tokens. However, your messages resulted in "
            f"{n} tokens. Please reduce the length of the messages."
        )
        return openai_error(400, msg, code="context_length_exceeded")
    if family == "anthropic":
        return anthropic_error(400, f"prompt is too long: {n} tokens > {window} maximum")
    # guess: the exact Workers AI text is not documented
    msg = f"input is too long: {n} tokens exceeds the model's context window of {window} tokens"
    return bad_input(msg, family)


def family_bad_input(family: str, message: str) -> Reply:
    if family == "openai":
        return openai_error(400, message)
    if family == "anthropic":
        return anthropic_error(400, message)
    if family == "gateway":
        return gateway_error(400, 2000, message)  # guess: code for a malformed universal body
    return bad_input(message, family)


__all__ = [
    "DONE",
    "Reply",
    "ai_error",
    "anthropic_error",
    "bad_input",
    "cf_error",
    "context_error",
    "dumps",
    "event_frame",
    "frame",
    "gateway_error",
    "model_not_found",
    "openai_error",
    "stream_reply",
]
