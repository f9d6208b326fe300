"""Every failure -> an OpenAI-shaped error: ``{"error": {"message", "type", "param", "code"}}`` and a status.

The client's fault is a 4xx naming the field; the upstream's is a 502/504 that says so; the proxy's own
credentials being refused upstream is a 502 for the client (the details, never a secret, go to the log,
not to the caller, who cannot fix the operator's token).
"""

from __future__ import annotations

import logging
from typing import Any

from cfgateway import errors
from cfgateway.wire.openai_server import RequestError, render_error

log = logging.getLogger("cfgateway.proxy")

Mapped = tuple[int, dict[str, Any]]


def _api(exc: errors.APIError) -> Mapped:
    msg = exc.message
    if isinstance(exc, (errors.AuthenticationError, errors.PermissionDeniedError)):
        log.error("upstream refused the proxy's credentials: %s", exc)
        return 502, render_error("the upstream refused this proxy's own credentials (the operator must fix the "
                                 "proxy's configuration; details are in the proxy's log)", type_="api_error",
                                 code="upstream_auth")
    if isinstance(exc, errors.ContextLengthExceededError):
        return 400, render_error(msg, type_="invalid_request_error", code="context_length_exceeded",
                                 param="messages")
    if isinstance(exc, errors.QuotaExceededError):
        return 429, render_error(msg, type_="insufficient_quota", code=exc.code)
    if isinstance(exc, errors.RateLimitError):
        return 429, render_error(msg, type_="rate_limit_error", code=exc.code)
    if isinstance(exc, errors.NotFoundError):
        return 404, render_error(msg, type_="invalid_request_error", code="model_not_found", param="model")
    if isinstance(exc, errors.RequestTooLargeError):
        return 413, render_error(msg, type_="invalid_request_error", code=exc.code)
    if 400 <= exc.status < 500:
        return 400, render_error(msg, type_="invalid_request_error", code=exc.code)
    return 502, render_error(f"upstream error: {msg}", type_="api_error", code=exc.code)


def _group(exc: errors.AllRoutesFailed) -> Mapped:
    causes = [e for e in exc.exceptions if not isinstance(e, errors.RouteSkipped)] or list(exc.exceptions)
    status, body = map_error(causes[-1])
    tried = "; ".join(f"{type(e).__name__}: {_text(e)}" for e in exc.exceptions)
    body["error"]["message"] = f"every route failed ({tried})"
    return status, body


def _text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, errors.APIError) else str(exc)


_PLAIN: list[tuple[type[BaseException], int, str, str | None]] = [
    (errors.InvalidInputError, 400, "invalid_request_error", None),
    (errors.BudgetExceededError, 429, "insufficient_quota", "budget_exceeded"),
    (errors.TimeoutError, 504, "timeout", None),
    (errors.ConnectionError, 502, "api_connection_error", None),
    (errors.MalformedResponseError, 502, "api_error", "malformed_upstream_response"),
    (errors.StreamInterrupted, 502, "api_error", "stream_interrupted"),
    (errors.RouteSkipped, 503, "api_error", "route_unavailable"),
    (errors.GatewayStepFailed, 502, "api_error", None),
]


def map_error(exc: BaseException) -> Mapped:
    """``(status, body)`` for any exception; an unexpected one is logged with its traceback and is a 500."""
    if isinstance(exc, RequestError):
        return exc.status, render_error(str(exc), type_=exc.type, code=exc.code, param=exc.param)
    if isinstance(exc, errors.AllRoutesFailed):
        return _group(exc)
    if isinstance(exc, errors.APIError):
        return _api(exc)
    for cls, status, kind, code in _PLAIN:
        if isinstance(exc, cls):
            return status, render_error(str(exc), type_=kind, code=code)
    if isinstance(exc, errors.ConfigError):
        log.warning("configuration error while serving a request: %s", exc)
        return 400, render_error(str(exc), type_="invalid_request_error", code="model_not_available", param="model")
    log.error("unexpected error in the proxy", exc_info=exc)
    return 500, render_error(f"internal error in the proxy ({type(exc).__name__}); details are in its log",
                             type_="api_error", code="internal_error")


__all__ = ["map_error"]
