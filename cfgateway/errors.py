"""One exception tree for everything cfgateway raises.

::

    CloudflareError
    ├── ConfigError                      missing/invalid settings (names the fix)
    ├── InvalidInputError                input every route would reject (names the index), caught before sending
    ├── BudgetExceededError              a hard budget limit would be crossed (nothing sent)
    ├── LedgerUnavailableError           the cost ledger (SQLite, Redis) cannot be reached (budgets fail closed)
    ├── MalformedResponseError           a 2xx body we cannot read
    ├── StreamInterrupted                a stream ended before its terminator, or errored mid-way
    │   └── MidStreamError               an error event after the first chunk (``error``: its typed error)
    ├── RouteSkipped                     a route of a chain was not tried (reason in ``reason``)
    │   └── CircuitOpenError             its circuit is open (cooling down after failures)
    ├── GatewayStepFailed                a Universal Endpoint step failed inside AI Gateway
    ├── AllRoutesFailed                  every route of a chain failed (also an ExceptionGroup)
    ├── TransportError
    │   ├── TimeoutError                 connect/read deadline passed (also the builtin TimeoutError)
    │   └── ConnectionError              refused, reset, dropped mid-body (also the builtin ConnectionError)
    │       └── IncompleteResponseError  a 2xx body broke off: maybe billed, not re-sent to the same route
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

:data:`cfgateway.error_codes.CODES` is the one table of Cloudflare error codes: class, HTTP status, whether a
retry on the same route may help, whether a chain falls back by default, which credential an auth code
rejects, and the fix to name. The HTTP layer, the wire modules and the fallback policy all read it.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any


class CloudflareError(Exception):
    """Base of every cfgateway error. An error that ends a call carries the call's ``attempts``
    (:class:`~cfgateway.types.AttemptInfo`) and usage ``records`` (read them with ``getattr(exc, "records", [])``:
    errors raised before anything was sent have none)."""

    attempts: list[Any]
    records: list[Any]


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


class LedgerUnavailableError(CloudflareError):
    """The cost ledger (a SQLite file, a Redis server) could not be reached or answered with an error.

    Raised by the ledger backends instead of the driver's own errors (``redis.exceptions.*``,
    ``sqlite3.OperationalError``; the original is ``__cause__``). A budget check that cannot reach its
    ledger raises it before anything is sent (``on_ledger_down="closed"``, the default); usage records
    that cannot be written are spooled to a local file and replayed later, never raised.
    """

    def __init__(self, message: str, *, ledger: str = "") -> None:
        super().__init__(message)
        self.ledger = ledger  # the ledger's repr (passwords redacted)


class MalformedResponseError(CloudflareError):
    """The server answered 2xx with a body that does not match the wire format."""

    def __init__(self, message: str, *, model: str | None = None, body: str = "") -> None:
        super().__init__(message)
        self.model = model
        self.body = body[:500]


class StreamInterrupted(CloudflareError):
    """A stream stopped before its terminator. ``text`` holds what was received, ``chunks`` how many chunks."""

    def __init__(
        self, message: str, *, model: str | None = None, text: str = "", cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.model = model
        self.text = text
        self.chunks = 0
        self.usage: Any = None
        self.__cause__ = cause


class MidStreamError(StreamInterrupted):
    """An error event arrived after the stream had started. ``error`` is the typed error it stands for
    (:class:`RateLimitError`, :class:`ServerError`, ...), with its own ``status`` and ``code``."""

    def __init__(self, message: str, error: APIError, *, text: str = "") -> None:
        super().__init__(message, model=error.model, text=text, cause=error)
        self.error = error
        self.status = error.status
        self.code = error.code


class TransportError(CloudflareError):
    """The request did not get an HTTP answer."""

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class TimeoutError(TransportError, builtins.TimeoutError):  # noqa: A001 - exported as cfgateway.TimeoutError
    """A connect, read or overall deadline passed. Also a builtin :class:`TimeoutError`."""


class ConnectionError(TransportError, builtins.ConnectionError):  # noqa: A001
    """The connection failed, was refused, or dropped mid-body. Also a builtin :class:`ConnectionError`."""


class IncompleteResponseError(ConnectionError):
    """A 2xx answer began and its body broke off: the call may have been billed, so it is not re-sent to the
    same route (``RetryPolicy(retry_incomplete=True)`` allows it)."""


class APIError(CloudflareError):
    """An HTTP error answer from Cloudflare or a provider behind the gateway."""

    hint: str = ""  # the class's generic fix; a code's own hint (cfgateway.error_codes) replaces it

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
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.hint = type(self).hint if hint is None else hint  # the fix, appended to the message
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
        return f"{head}: {self.message}{tail}{ids}{self.hint}"


class AuthenticationError(APIError):
    """The token is missing, wrong, or lacks permission. The hint names the credential that was rejected:
    the gateway token (code 2009), the Cloudflare API token (10000, 9106) or the provider's key (otherwise;
    :func:`cfgateway.error_codes.hint_for`)."""

    hint = (" — the provider rejected its key: with keys stored in the gateway (byok, the default) store the key in"
            " the gateway's Provider Keys and set the gateway token (CLOUDFLARE_AI_GATEWAY_TOKEN); with byok=False"
            " (CFGATEWAY_BYOK=0, config key byok) check the provider's env var (OPENAI_API_KEY, ...)")


class PermissionDeniedError(APIError):
    """The account may not use this model (terms, plan, private model)."""


class RateLimitError(APIError):
    """Too many requests (HTTP 429)."""


class CapacityError(RateLimitError):
    """Workers AI is out of capacity for this model (code 3040)."""


class QuotaExceededError(RateLimitError):
    """Daily free neurons (3036) or gateway credits (2021) are used up."""

    hint = " — upgrade to Workers Paid or add AI Gateway credits"


class BadRequestError(APIError):
    """The request was rejected as invalid; every route would reject it the same way."""


class ContextLengthExceededError(BadRequestError):
    """The input is longer than the model's context window."""

    hint = " — shorten the input or fall back to a model with a larger window"


class NotFoundError(APIError):
    """Unknown model, account, gateway or path."""

    hint = " — check the model string (`cfgateway models` lists known ones), account id and gateway id"


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


__all__ = [
        "APIError",
    "AllRoutesFailed",
    "CircuitOpenError",
    "GatewayStepFailed",
    "IncompleteResponseError",
    "MidStreamError",
    "RouteSkipped",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CapacityError",
    "CloudflareError",
    "ConfigError",
    "InvalidInputError",
    "LedgerUnavailableError",
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
]
