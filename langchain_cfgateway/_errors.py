"""cfgateway's errors as LangChain's: what a LangChain model raises is also langchain-core's ``ModelError`` family.

``except cfgateway.RateLimitError`` and ``except langchain_core.exceptions.ModelRateLimitError`` both catch a
rate limit from :class:`~langchain_cfgateway.ChatCloudflare` (as langchain-openai's errors are the openai SDK's
and LangChain's at once). The error object stays the same — status, code, records, message — only its class gains
the LangChain parent (a subclass made once per cfgateway class, named like it, importable from this module).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from cfgateway import errors as cf

# most specific first: the first cfgateway class an error is an instance of picks its LangChain parent
FAMILY: tuple[tuple[type[cf.CloudflareError], type[Exception]], ...] = (
    (cf.ContextLengthExceededError, ContextOverflowError),
    (cf.AuthenticationError, ModelAuthenticationError),
    (cf.PermissionDeniedError, ModelPermissionDeniedError),
    (cf.RateLimitError, ModelRateLimitError),
    (cf.NotFoundError, ModelNotFoundError),
    (cf.BadRequestError, ModelInvalidRequestError),
    (cf.RequestTooLargeError, ModelInvalidRequestError),
    (cf.InvalidInputError, ModelInvalidRequestError),
    (cf.TimeoutError, ModelTimeoutError),
    (cf.ConnectionError, ModelConnectionError),
    (cf.ServerError, ModelAPIError),
    (cf.MalformedResponseError, ModelAPIError),
    (cf.StreamInterrupted, ModelAPIError),
)
_MADE: dict[type[BaseException], type[BaseException] | None] = {}


def _langchain_class(cls: type[BaseException]) -> type[BaseException] | None:
    if cls in _MADE:
        return _MADE[cls]
    parent = next((theirs for ours, theirs in FAMILY if issubclass(cls, ours)), None)
    made: type[BaseException] | None = None
    if parent is not None and not issubclass(cls, parent):
        made = type(cls.__name__, (cls, parent), {"__module__": __name__, "__doc__": cls.__doc__})
        globals()[cls.__name__] = made  # importable by name (tracebacks, pickle's class lookup)
    _MADE[cls] = made
    return made


def as_langchain(exc: BaseException) -> BaseException:
    """``exc``, its class now also the matching LangChain ``ModelError`` (errors outside the family unchanged)."""
    made = _langchain_class(type(exc))
    if made is not None:
        exc.__class__ = made
    return exc


@contextmanager
def langchain_errors() -> Iterator[None]:
    """Re-raise cfgateway errors from the block as the same errors, also LangChain's."""
    try:
        yield
    except cf.CloudflareError as exc:
        as_langchain(exc)
        raise


__all__ = ["FAMILY", "as_langchain", "langchain_errors"]
