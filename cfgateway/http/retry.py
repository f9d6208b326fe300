"""When to retry (sans-IO): the retry policy, which errors are worth another attempt, and the typed
error for an HTTP error answer (``Retry-After`` parsed). No httpx here: :mod:`cfgateway.http.transport` sends.

Retried: what :data:`cfgateway.error_codes.CODES` marks ``retry`` (capacity 3040, gateway rate limit 2003,
upstream timeouts, 5xx codes), and, for answers without a known code, 429, 5xx and connection errors.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from cfgateway import errors
from cfgateway.error_codes import code_info, error_class, hint_for
from cfgateway.wire.common import parse_error_body


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    retry_incomplete: bool = False  # re-send after a 2xx answer broke off mid-body (it may have been billed)

    def delay(self, attempt: int, exc: errors.CloudflareError) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or ``None`` to give up."""
        if attempt >= self.max_retries or not retryable(exc):
            return None
        if isinstance(exc, errors.IncompleteResponseError) and not self.retry_incomplete:
            return None
        backoff = random.uniform(0, min(self.backoff_max, self.backoff_base * (2**attempt)))
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return max(retry_after, backoff if retry_after == 0 else 0.0)
        return backoff


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, errors.ConnectionError):
        return True
    if isinstance(exc, errors.APIError):
        info = code_info(exc.code)
        if info is not None:
            return info.retry
        return exc.status == 429 or exc.status >= 500
    return False


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def api_error(status: int, headers: Mapping[str, str], body: bytes, model: str | None) -> errors.APIError:
    code, message = parse_error_body(body)
    cls = error_class(status, code, message)
    return cls(
        message,
        status=status,
        code=code,
        model=model,
        request_id=headers.get("cf-aig-request-id") or headers.get("cf-ray"),
        log_id=headers.get("cf-aig-log-id"),
        retry_after=_retry_after(headers),
        body=body.decode("utf-8", "replace"),
        hint=hint_for(code, cls),
    )


__all__ = ["RetryPolicy", "api_error", "retryable"]
