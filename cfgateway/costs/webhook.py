"""A webhook alert sink: JSON POSTs from a background thread, retried with backoff, never blocking a caller.

The body is :meth:`AlertEvent.to_dict` (``text`` for Slack and Slack-compatible hooks, plus ``kind``,
``key``, ``ts``, ``fields``). Connection errors, timeouts, 429 and 5xx answers are retried up to
``retries`` times, waiting ``backoff * 2**n`` seconds (at most ``max_backoff``; a ``Retry-After``
up to ``max_backoff`` is honoured); other 4xx answers are not retried. A delivery that still fails is
logged as an ERROR (``cfgateway.alerts``), never raised into the call that fired the alert. The queue
is bounded: when it is full the alert is dropped with an ERROR saying so.
The URL is treated as a secret (Slack's carries its token in the path): only its host is ever printed.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cfgateway import errors
from cfgateway.errors import ConfigError

if TYPE_CHECKING:
    from cfgateway.http.transport import Transport

logger = logging.getLogger("cfgateway.alerts")

_STOP = object()


def check_webhook_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host; a :class:`ConfigError` naming the fix otherwise."""
    try:
        parts = urlsplit(url)
    except (ValueError, TypeError):
        raise ConfigError("alert_webhook is not a URL: use https://host/path") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"alert_webhook must be an http(s) URL with a host (https://host/path), got scheme "
                          f"{parts.scheme or 'none'!r}")
    if any(c in url for c in "\r\n\t "):
        raise ConfigError("alert_webhook must not contain whitespace")
    return url


class WebhookSink:
    """POST each alert as JSON to ``url``, in the background. ``flush()`` waits for the queue to drain."""

    def __init__(
        self,
        url: str,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        max_queue: int = 1000,
        transport: Transport | None = None,
    ) -> None:
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise ConfigError("webhook: retries and backoff must be >= 0, timeout > 0")
        self.url = check_webhook_url(url)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.headers = {"content-type": "application/json", **(headers or {})}
        if transport is None:  # httpx costs ~0.1 s to import: only when a webhook sink is built
            from cfgateway.http.transport import Transport

            transport = Transport(timeout=timeout, max_retries=0)
        self._transport = transport
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.attempts = 0

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "?"

    def __repr__(self) -> str:
        return f"WebhookSink(host={self.host!r})"

    def __call__(self, event: Any) -> None:
        """Queue the alert and return at once."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            logger.error("webhook alert queue to %s is full (%d): dropped alert %r", self.host,
                         self._queue.maxsize, getattr(event, "message", event))
            return
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cfgateway-alert-webhook", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._deliver(item)
            finally:
                self._queue.task_done()

    def _deliver(self, event: Any) -> None:
        body = json.dumps(event.to_dict(), separators=(",", ":"), default=str).encode()
        for attempt in range(self.retries + 1):
            self.attempts += 1
            try:
                self._transport.request("POST", self.url, self.headers, body, model=f"alert webhook {self.host}")
                self.delivered += 1
                return
            except errors.CloudflareError as exc:
                wait = self._retry_wait(exc, attempt)
                if wait is None:
                    self.failed += 1
                    logger.error("webhook alert to %s failed after %d attempt(s): %s: %s", self.host, attempt + 1,
                                 type(exc).__name__, _short(exc))
                    return
                time.sleep(wait)

    def _retry_wait(self, exc: errors.CloudflareError, attempt: int) -> float | None:
        if attempt >= self.retries:
            return None
        status = getattr(exc, "status", None)
        if isinstance(exc, errors.APIError) and not (status == 429 or (status or 0) >= 500):
            return None  # the hook refused the request: sending it again will not help
        if not isinstance(exc, errors.APIError | errors.TransportError):
            return None
        wait = min(self.max_backoff, self.backoff * (2**attempt))
        after = getattr(exc, "retry_after", None)
        if after is not None and after <= self.max_backoff:
            wait = max(wait, after)
        return wait

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued alert was delivered or given up; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued, then stop the thread."""
        self.flush(timeout)
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)
        self._transport.close()


def _short(exc: Exception) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= 200 else text[:197] + "..."


__all__ = ["WebhookSink", "check_webhook_url"]
