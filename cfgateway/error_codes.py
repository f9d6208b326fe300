"""The one table of Cloudflare error codes, and how an error answer is classed.

For each code (docs/wire-notes.md §1.9, §3.9; Vectorize: docs/vectorize-notes.md §10): its class in
:mod:`cfgateway.errors`, the HTTP status it comes with, whether a retry on the same route may help, whether a
chain falls back by default, which credential an auth code rejects, and the fix to name. The HTTP layer
(``http.retry``), the wire modules (error bodies and events) and the fallback policy all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cfgateway.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CapacityError,
    ContextLengthExceededError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
)

Credential = Literal["api_token", "gateway_token", "provider_key"]

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


@dataclass(frozen=True, slots=True)
class Code:
    """What one Cloudflare error code means (docs/wire-notes.md §1.9, §3.9)."""

    cls: type[APIError]
    status: int  # the HTTP status it comes with (used for error objects that arrive without one)
    retry: bool = False  # another attempt on the same route may succeed (after a wait)
    fallback: bool = False  # a chain sends the call to its next route by default
    credential: Credential | None = None  # the credential an auth error rejects
    hint: str = ""  # the fix, appended to the message (replaces the error class's generic hint)


def _c(cls: type[APIError], status: int, retry: bool = False, fallback: bool = False,
       credential: Credential | None = None, hint: str = "") -> Code:
    return Code(cls, status, retry, fallback, credential, hint)


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
    # Vectorize v2 (vectorize-api.md §10). guess: the HTTP statuses of 3000/3002/3005 and the 400xx codes
    # are not documented; these are only used for error objects that arrive without a status.
    3000: _c(NotFoundError, 404, hint=" — no such Vectorize index: create it with create_index(dimensions=..., "
             "metric=...) (or `wrangler vectorize create`), or check the index name and account id"),
    3002: _c(BadRequestError, 409, hint=" — an active index already has this name: pick another name, or use "
             "the existing index (create_index(..., exist_ok=True))"),
    3005: _c(NotFoundError, 410, hint=" — this Vectorize index was deleted: create it again with "
             "create_index(...) (a deleted index's name can be reused)"),
    40006: _c(BadRequestError, 400, hint=" — the query vector's length must equal the index dimensions: "
              "query with the embedding model the index was built with"),
    40012: _c(BadRequestError, 400, hint=" — every vector's length must equal the index dimensions: use the "
              "embedding model the index was created for, or create an index with matching dimensions"),
    40025: _c(BadRequestError, 400, hint=" — topK is at most 100, and at most 50 with returnValues=true or "
              "returnMetadata='all'"),
    40026: _c(BadRequestError, 400, hint=" — the request body was refused: JSON bodies need "
              "Content-Type: application/json; returnMetadata is 'none', 'indexed' or 'all'"),
    971: _c(RateLimitError, 429, retry=True, hint=" — Cloudflare API rate limit (1,200 requests per 5 minutes): "
            "send fewer, larger batches"),
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


def hint_for(code: int | None, cls: type[APIError] | None = None) -> str | None:
    """The fix to name for ``code``: the code's own hint; for an authentication error, the credential that was
    rejected (the provider's key when the code does not say); None: the error class's generic hint."""
    info = code_info(code)
    if info is not None and info.hint:
        return info.hint
    if cls is not None and issubclass(cls, AuthenticationError):
        return _AUTH_HINTS[info.credential if info is not None and info.credential else "provider_key"]
    return None


__all__ = ["CODES", "Code", "Credential", "code_info", "error_class", "hint_for"]
