"""Applying a :class:`Fault` to a reply, and the ASGI response that sends a reply (delays, drops)."""

from __future__ import annotations

import asyncio
import logging

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cfgateway.emulator.config import Fault
from cfgateway.emulator.reply import (
    DONE,
    Reply,
    ai_error,
    anthropic_error,
    anthropic_error_body,
    cf_error,
    event_frame,
    frame,
    gateway_error,
    openai_error,
)

_MESSAGES = {
    400: "Bad input",
    401: "Authentication error",
    403: "Forbidden",
    404: "Not found",
    408: "Request timeout",
    413: "Request is too large",
    429: "Capacity temporarily exceeded, please try again.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
# guess: Workers AI codes for statuses the docs do not pair with a code (3043 = internal error)
_WORKERS_CODES = {400: 5006, 401: 10000, 403: 10000, 404: 5007, 408: 3007, 413: 3006, 429: 3040}
_VECTORIZE_CODES = {401: 10000, 403: 10000, 404: 3000, 429: 971}
_OPENAI_CODES = {429: "rate_limit_exceeded", 401: "invalid_api_key"}

HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>\n"
)
INCOMPLETE_LOG = "ASGI callable returned without completing response."


def fault_error(reply: Reply, fault: Fault) -> Reply:
    """The error body a fault of kind ``error`` sends, in the format of the route it hit."""
    status = fault.status or 500
    message = fault.message or _MESSAGES.get(status, "Emulated error")
    code = fault.code
    family = reply.family
    if code is not None and 2000 <= code < 3000:
        return gateway_error(status, code, message)
    if family == "vectorize":  # guess: 971 is the recorded rate-limit code; others take the status's usual code
        return cf_error(status, code if code is not None else _VECTORIZE_CODES.get(status, 1000), message,
                        family="vectorize")
    if family in ("workers", "cfv1"):
        return ai_error(status, code if code is not None else _WORKERS_CODES.get(status, 3043), message, family)
    if family == "openai":
        return openai_error(status, message, code=code if code is not None else _OPENAI_CODES.get(status))
    if family == "anthropic":
        return anthropic_error(status, message)
    return gateway_error(status, code if code is not None else 2005, message)


def stream_error_frame(family: str, fault: Fault) -> str:
    status = fault.status or 500
    message = fault.message or _MESSAGES.get(status, "Emulated error")
    if family == "workers":  # guess: Workers AI's in-stream error event shape is not documented
        code = fault.code if fault.code is not None else _WORKERS_CODES.get(status, 3043)
        return frame({"errors": [{"code": code, "message": message}]})
    if family == "anthropic":
        return event_frame("error", anthropic_error_body(status, message))
    kind = "rate_limit_error" if status == 429 else ("server_error" if status >= 500 else "invalid_request_error")
    return frame({"error": {"message": message, "type": kind, "code": fault.code}})


def apply_fault(reply: Reply, fault: Fault) -> Reply:
    """What ``reply`` becomes under ``fault`` (``delay_s`` combines with every kind)."""
    kind = fault.kind
    out = reply.copy(delay_s=reply.delay_s + fault.delay_s)
    if kind == "error":
        out = fault_error(reply, fault)
        out.delay_s = reply.delay_s + fault.delay_s
        out.faulted = True
    elif kind == "html":
        out.status, out.body, out.frames = fault.status or 502, None, None
        out.raw, out.content_type, out.faulted = HTML_PAGE.encode(), "text/html; charset=UTF-8", True
    elif kind == "malformed":
        out.status, out.faulted = 200, True
        if reply.frames is not None:
            out.frames = ['data: {"response":"Hel\n\n', 'data: {"choices":[{"delta"\n\n', DONE]
        else:
            out.raw, out.body = b'{"result":{"response":"Hel', None
    elif kind == "drop_body":
        out.status, out.drop_body, out.faulted = 200, True, True
    elif kind in ("drop_stream", "stream_error") and reply.frames is not None:
        keep = reply.frames[: max(0, min(fault.after_chunks, len(reply.frames) - 1))]
        out.frames = keep + ([stream_error_frame(reply.family, fault)] if kind == "stream_error" else [])
    if fault.retry_after is not None:
        ra = fault.retry_after
        out.headers["retry-after"] = str(int(ra)) if float(ra).is_integer() else str(ra)
    return out


class _IncompleteFilter(logging.Filter):
    """Hide uvicorn's complaint about the connection a ``drop_body`` fault cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != INCOMPLETE_LOG


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _IncompleteFilter) for f in logger.filters):
        logger.addFilter(_IncompleteFilter())


class EmuResponse(Response):
    """Sends a :class:`Reply`: optional delay, JSON / raw body or SSE frames, or a cut body."""

    def __init__(self, reply: Reply, stream_delay_s: float = 0.0) -> None:  # noqa: D107
        self.reply = reply
        self.stream_delay_s = stream_delay_s
        self.status_code = reply.status
        self.background = None
        self.media_type = reply.content_type
        self.body = b""
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        r = self.reply
        try:
            if r.delay_s > 0:
                await asyncio.sleep(r.delay_s)
            headers = [(b"content-type", r.content_type.encode("latin-1")), *self.raw_headers]
            if r.frames is not None and r.raw is None:
                await self._send_stream(send, headers, r.frames)
                return
            payload = r.payload()
            if r.drop_body:
                cut = payload[: max(1, len(payload) // 2)]
                headers.append((b"content-length", str(len(payload) + 64).encode()))
                await send({"type": "http.response.start", "status": r.status, "headers": headers})
                await send({"type": "http.response.body", "body": cut, "more_body": True})
                return  # the server closes the connection: the client sees a short body
            headers.append((b"content-length", str(len(payload)).encode()))
            await send({"type": "http.response.start", "status": r.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
        except OSError:  # the client went away
            return

    async def _send_stream(self, send: Send, headers: list[tuple[bytes, bytes]], frames: list[str]) -> None:
        await send({"type": "http.response.start", "status": self.reply.status, "headers": headers})
        for i, f in enumerate(frames):
            if i and self.stream_delay_s > 0:
                await asyncio.sleep(self.stream_delay_s)
            await send({"type": "http.response.body", "body": f.encode("utf-8"), "more_body": True})
        await send({"type": "http.response.body", "body": b""})


__all__ = ["EmuResponse", "apply_fault", "fault_error", "install_log_filter"]
