"""One exception tree for everything cfgateway raises.

::

    CloudflareError
    ├── ConfigError                      missing/invalid settings (names the fix)
    ├── InvalidInputError                input every route would reject (names the index), caught before sending
    ├── BudgetExceededError              a hard budget limit would be crossed (nothing sent)
    ├── MalformedResponseError           a 2xx body we cannot read
    ├── StreamInterrupted                a stream ended before its terminator, or errored mid-way
    ├── TransportError
    │   ├── TimeoutError                 connect/read deadline passed
    │   └── ConnectionError              refused, reset, dropped mid-body
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
"""

from __future__ import annotations

from typing import Any


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


class TimeoutError(TransportError):  # noqa: A001 - deliberate, exported as cfgateway.TimeoutError
    """A connect, read or overall deadline passed."""


class ConnectionError(TransportError):  # noqa: A001
    """The connection failed, was refused, or dropped mid-body."""


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
        hint = _HINTS.get(type(self).__name__, "")
        return f"{head}: {self.message}{tail}{ids}{hint}"


class AuthenticationError(APIError):
    """The token is missing, wrong, or lacks permission."""


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


_HINTS = {
    "AuthenticationError": (
        " — check CLOUDFLARE_API_TOKEN (Workers AI Read+Edit) and, for an authenticated gateway,"
        " CLOUDFLARE_AI_GATEWAY_TOKEN"
    ),
    "NotFoundError": " — check the model string (`cfgateway models` lists known ones), account id and gateway id",
    "QuotaExceededError": " — upgrade to Workers Paid or add AI Gateway credits",
    "ContextLengthExceededError": " — shorten the input or fall back to a model with a larger window",
}

_BY_CODE: dict[int, type[APIError]] = {
    10000: AuthenticationError,
    2009: AuthenticationError,
    9106: AuthenticationError,
    5016: PermissionDeniedError,
    5018: PermissionDeniedError,
    5035: PermissionDeniedError,
    3023: PermissionDeniedError,
    3041: PermissionDeniedError,
    3040: CapacityError,
    3036: QuotaExceededError,
    2021: QuotaExceededError,
    2003: RateLimitError,
    2041: RateLimitError,
    5006: BadRequestError,
    5004: BadRequestError,
    3003: BadRequestError,
    3039: BadRequestError,
    2008: BadRequestError,
    2040: BadRequestError,
    5005: BadRequestError,
    5019: BadRequestError,
    5007: NotFoundError,
    3042: NotFoundError,
    7000: NotFoundError,
    7001: BadRequestError,
    7003: NotFoundError,
    2001: NotFoundError,
    3006: RequestTooLargeError,
    3007: ServerError,
    3008: ServerError,
    2005: ServerError,
}

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
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
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
    "APIError",
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
