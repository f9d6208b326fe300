"""One exception tree for everything cfgateway raises.

::

    CloudflareError
    ├── ConfigError                      missing/invalid settings (names the fix)
    ├── InvalidInputError                input every route would reject (names the index), caught before sending
    ├── BudgetExceededError              a hard budget limit would be crossed (nothing sent)
    ├── MalformedResponseError           a 2xx body we cannot read
    ├── StreamInterrupted                a stream ended before its terminator, or errored mid-way
    ├── RouteSkipped                     a route of a chain was not tried (reason in ``reason``)
    │   └── CircuitOpenError             its circuit is open (cooling down after failures)
    ├── GatewayStepFailed                a Universal Endpoint step failed inside AI Gateway
    ├── AllRoutesFailed                  every route of a chain failed (also an ExceptionGroup)
    ├── TransportError
    │   ├── TimeoutError                 connect/read deadline passed (also the builtin TimeoutError)
    │   └── ConnectionError              refused, reset, dropped mid-body (also the builtin ConnectionError)
    └── APIError                         Cloudflare / provider answered with an error
        ├── AuthenticationError          401/403, codes 10000, 2009, 9106
        ├── PermissionDeniedError        403 model terms / plan / account (5016, 5018, 5035, 3023, 3041)
        ├── RateLimitError               429, 2003, 2041
        │   ├── CapacityError            3040 (out of capacity / rejectIfBusy)
        │   └── QuotaExceededError       3036 (daily free neurons), 2021 (credits)
        ├── BadRequestError              400, 5006, 5004, 3003, 2008, 2040, 5005, 5019
        │   └── ContextLengthExceededError  input longer than the model's window
        ├── NotFoundError                404, 5007 (no such model), 3042, 7000, 7003, 2001
        ├── RequestTooLargeError         413, 3006
        └── ServerError                  5xx, 2005, 3007/3008 timeouts upstream

Every :class:`APIError` carries ``status``, ``code`` (Cloudflare's ``errors[].code``),
``message``, ``request_id``/``log_id`` and the model string — never a token.

:data:`CODES` is the one table of Cloudflare error codes: class, HTTP status, whether a retry on the
same route may help, whether a chain falls back by default, and which credential an auth code rejects.
The HTTP layer (retries), the wire modules (error events) and the fallback policy all read it.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal


class CloudflareError(Exception):
    """Base of every cfgateway error."""


class ConfigError(CloudflareError, ValueError):
    """Settings are missing or invalid; the message names the setting and how to fix it."""


class InvalidInputError(CloudflareError, ValueError):
    """Input that every route would reject (empty text, oversized input); nothing was sent."""


class BudgetExceededError(CloudflareError):
    """A hard budget limit would be exceeded; the request was not sent."""

    def __init__(self, message: str, *, budget: str = "", limit: Any = None, spent: Any = None) -> None:
        super().__init__(message)
        self.budget = budget
        self.limit = limit
        self.spent = spent


class MalformedResponseError(CloudflareError):
    """The server answered 2xx with a body that does not match the wire format."""

    def __init__(self, message: str, *, model: str | None = None, body: str = "") -> None:
        super().__init__(message)
        self.model = model
        self.body = body[:500]


class StreamInterrupted(CloudflareError):
    """A stream stopped before its terminator. ``text`` holds what was received."""

    def __init__(
        self, message: str, *, model: str | None = None, text: str = "", cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.model = model
        self.text = text
        self.usage: Any = None
        self.__cause__ = cause


class TransportError(CloudflareError):
    """The request did not get an HTTP answer."""

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class TimeoutError(TransportError, builtins.TimeoutError):  # noqa: A001 - exported as cfgateway.TimeoutError
    """A connect, read or overall deadline passed. Also a builtin :class:`TimeoutError`."""


class ConnectionError(TransportError, builtins.ConnectionError):  # noqa: A001
    """The connection failed, was refused, or dropped mid-body. Also a builtin :class:`ConnectionError`."""


class APIError(CloudflareError):
    """An HTTP error answer from Cloudflare or a provider behind the gateway."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: int | None = None,
        model: str | None = None,
        request_id: str | None = None,
        log_id: str | None = None,
        retry_after: float | None = None,
        body: str = "",
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.model = model
        self.request_id = request_id
        self.log_id = log_id
        self.retry_after = retry_after
        self.body = body[:1000]
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.code is not None:
            parts.append(f"code {self.code}")
        head = ", ".join(parts)
        tail = f" (model {self.model})" if self.model else ""
        ids = f" [log {self.log_id}]" if self.log_id else (f" [request {self.request_id}]" if self.request_id else "")
        return f"{head}: {self.message}{tail}{ids}{self._hint()}"

    def _hint(self) -> str:
        return _HINTS.get(type(self).__name__, "")


class AuthenticationError(APIError):
    """The token is missing, wrong, or lacks permission. The hint names the credential that was rejected:
    the gateway token (code 2009), the Cloudflare API token (10000, 9106) or the provider's key (otherwise)."""

    def _hint(self) -> str:
        info = CODES.get(self.code) if self.code is not None else None
        return _AUTH_HINTS[info.credential if info is not None and info.credential else "provider_key"]


class PermissionDeniedError(APIError):
    """The account may not use this model (terms, plan, private model)."""


class RateLimitError(APIError):
    """Too many requests (HTTP 429)."""


class CapacityError(RateLimitError):
    """Workers AI is out of capacity for this model (code 3040)."""


class QuotaExceededError(RateLimitError):
    """Daily free neurons (3036) or gateway credits (2021) are used up."""


class BadRequestError(APIError):
    """The request was rejected as invalid; every route would reject it the same way."""


class ContextLengthExceededError(BadRequestError):
    """The input is longer than the model's context window."""


class NotFoundError(APIError):
    """Unknown model, account, gateway or path."""


class RequestTooLargeError(APIError):
    """The request body is too large (413 / 3006)."""


class ServerError(APIError):
    """The server or the provider behind the gateway failed (5xx, 2005)."""


class RouteSkipped(CloudflareError):
    """A route was not tried for this call (circuit open, window too small, same failing credentials)."""

    def __init__(self, message: str, *, model: str, reason: str) -> None:
        super().__init__(message)
        self.model = model
        self.reason = reason


class CircuitOpenError(RouteSkipped):
    """The route is cooling down after repeated failures; nothing was sent."""

    def __init__(self, model: str, retry_in: float) -> None:
        super().__init__(
            f"{model}: circuit open after repeated failures; next probe in {max(retry_in, 0.0):.1f}s",
            model=model, reason="circuit_open",
        )
        self.retry_in = retry_in


class GatewayStepFailed(CloudflareError):
    """A Universal Endpoint step failed inside AI Gateway, which does not say why (only which step answered)."""

    def __init__(self, model: str, step: int) -> None:
        super().__init__(f"{model}: step {step} failed inside AI Gateway (the gateway does not report why)")
        self.model = model
        self.step = step


class AllRoutesFailed(CloudflareError, ExceptionGroup):  # type: ignore[misc]
    """Every route of a call failed: one exception per attempt (and per skipped route), in order.

    ``attempts`` lists each attempt (:class:`~cfgateway.types.AttemptInfo`); ``records`` holds every
    attempt's usage record. Catch it as a :class:`CloudflareError`, or pick the causes with
    ``except* RateLimitError``.
    """

    attempts: list[Any]
    records: list[Any]

    def derive(self, excs: Sequence[Exception]) -> AllRoutesFailed:  # type: ignore[override]
        new = AllRoutesFailed(self.message, list(excs))
        new.attempts, new.records = self.attempts, self.records
        return new


_AUTH_HINTS = {
    "gateway_token": (
        " — the AI Gateway rejected the gateway token (cf-aig-authorization): check CLOUDFLARE_AI_GATEWAY_TOKEN"
        " (gateway_token=, config key gateway_token_env) and the gateway id"
    ),
    "api_token": (
        " — Cloudflare rejected the API token: check CLOUDFLARE_API_TOKEN (api_token=, config key api_token_env);"
        " it needs Workers AI Read+Edit"
    ),
    "provider_key": (
        " — the provider rejected its key: with keys stored in the gateway (byok, the default) store the key in the"
        " gateway's Provider Keys and set the gateway token (CLOUDFLARE_AI_GATEWAY_TOKEN); with byok=False"
        " (CFGATEWAY_BYOK=0, config key byok) check the provider's env var (OPENAI_API_KEY, ...)"
    ),
}
_HINTS = {
    "NotFoundError": " — check the model string (`cfgateway models` lists known ones), account id and gateway id",
    "QuotaExceededError": " — upgrade to Workers Paid or add AI Gateway credits",
    "ContextLengthExceededError": " — shorten the input or fall back to a model with a larger window",
}

Credential = Literal["api_token", "gateway_token", "provider_key"]


@dataclass(frozen=True, slots=True)
class Code:
    """What one Cloudflare error code means (cloudflare-api.md §1.9, §3.9; docs/wire-notes.md)."""

    cls: type[APIError]
    status: int  # the HTTP status it comes with (used for error objects that arrive without one)
    retry: bool = False  # another attempt on the same route may succeed (after a wait)
    fallback: bool = False  # a chain sends the call to its next route by default
    credential: Credential | None = None  # the credential an auth error rejects


def _c(cls: type[APIError], status: int, retry: bool = False, fallback: bool = False,
       credential: Credential | None = None) -> Code:
    return Code(cls, status, retry, fallback, credential)


#: The one table of Cloudflare error codes.
CODES: dict[int, Code] = {
    10000: _c(AuthenticationError, 401, fallback=True, credential="api_token"),
    9106: _c(AuthenticationError, 400, fallback=True, credential="api_token"),  # no auth header at all
    2009: _c(AuthenticationError, 401, fallback=True, credential="gateway_token"),
    5016: _c(PermissionDeniedError, 403, fallback=True),  # model terms: per model
    5018: _c(PermissionDeniedError, 403, fallback=True),
    5035: _c(PermissionDeniedError, 403, fallback=True),  # needs Workers Paid: per model
    3023: _c(PermissionDeniedError, 403, fallback=True),
    3041: _c(PermissionDeniedError, 403, fallback=True),
    3040: _c(CapacityError, 429, retry=True, fallback=True),
    3036: _c(QuotaExceededError, 429, fallback=True),  # daily free neurons: waiting does not help
    2021: _c(QuotaExceededError, 402, fallback=True),  # gateway credits
    2003: _c(RateLimitError, 429, retry=True, fallback=True),  # gateway rate limit
    2041: _c(RateLimitError, 429, fallback=True),  # gateway spend limit: waiting does not help
    5006: _c(BadRequestError, 400),
    5004: _c(BadRequestError, 400),
    3003: _c(BadRequestError, 400),
    3039: _c(BadRequestError, 400),
    2008: _c(BadRequestError, 400),
    2040: _c(BadRequestError, 400),
    5005: _c(BadRequestError, 405),
    5019: _c(BadRequestError, 405),
    7001: _c(BadRequestError, 405),
    5007: _c(NotFoundError, 400),
    3042: _c(NotFoundError, 404),
    7000: _c(NotFoundError, 400),
    7003: _c(NotFoundError, 404),
    2001: _c(NotFoundError, 400),
    3006: _c(RequestTooLargeError, 413),
    3007: _c(ServerError, 408, retry=True, fallback=True),
    3008: _c(ServerError, 408, retry=True, fallback=True),
    2005: _c(ServerError, 502, retry=True, fallback=True),
    3043: _c(ServerError, 500, retry=True, fallback=True),  # guess: Workers AI internal error
}


def code_info(code: int | None) -> Code | None:
    return CODES.get(code) if code is not None else None


_CONTEXT_MARKERS = (
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "input is too long",
    "exceeds the maximum",
    "context_length_exceeded",
    "prompt is too long",
    "too long for the model",
)


def error_class(status: int, code: int | None, message: str) -> type[APIError]:
    """Pick the error class for an HTTP status, Cloudflare code and message."""
    low = message.lower()
    if status in (400, 413) and any(m in low for m in _CONTEXT_MARKERS):
        return ContextLengthExceededError
    info = code_info(code)
    if info is not None:
        return info.cls
    if status in (401, 403):
        return AuthenticationError if status == 401 or "auth" in low else PermissionDeniedError
    if status == 429:
        return RateLimitError
    if status == 404:
        return NotFoundError
    if status == 413:
        return RequestTooLargeError
    if status >= 500:
        return ServerError
    return BadRequestError


__all__ = [
    "CODES",
    "APIError",
    "AllRoutesFailed",
    "CircuitOpenError",
    "Code",
    "GatewayStepFailed",
    "RouteSkipped",
    "code_info",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CapacityError",
    "CloudflareError",
    "ConfigError",
    "InvalidInputError",
    "ConnectionError",
    "ContextLengthExceededError",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestTooLargeError",
    "ServerError",
    "StreamInterrupted",
    "TimeoutError",
    "TransportError",
    "error_class",
]
