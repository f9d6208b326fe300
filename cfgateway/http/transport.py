"""HTTP transport: the only importer of httpx.

Pooled sync and async clients (one async client per event loop, closed with its loop, so
``asyncio.run`` per call neither fails nor leaks), one default timeout for both, retries as
:mod:`cfgateway.http.retry` decides (backoff with jitter, ``Retry-After``), and the mapping of every
failure into :mod:`cfgateway.errors`. Only sending exists twice (sync and async).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from cfgateway import errors
from cfgateway.http._aiohttp import AioResponse, AioSender
from cfgateway.http._drain import BodyPieces, adrain, drain
from cfgateway.http._pools import (
    SOCKET_OPTIONS,
    URL_CACHE_MAX,
    PerLoop,
    closed_with_loop,
    fair_pool,
    fast_cookies,
    ssl_context,
    step,
)
from cfgateway.http.pacing import Pacer, asleep_turn, sleep_turn
from cfgateway.http.retry import RetryPolicy, api_error, retryable

log = logging.getLogger("cfgateway.http.transport")

@dataclass(slots=True)
class RawResponse:
    status: int
    headers: httpx.Headers
    content: bytes
    elapsed: float


Body = dict[str, Any] | list[Any] | bytes | None
_encode_json = json.JSONEncoder(separators=(",", ":")).encode


def encode(body: Body) -> bytes | None:
    """A request body as bytes: JSON for a dict or list (the body stays a dict until here), bytes as they are."""
    if body is None or isinstance(body, bytes):
        return body
    return _encode_json(body).encode()


def _incomplete(exc: httpx.HTTPError, model: str | None, status: int) -> errors.IncompleteResponseError:
    return errors.IncompleteResponseError(
        f"the HTTP {status} answer broke off mid-body ({type(exc).__name__}: {exc}); the call may have been billed, "
        f"so it is not re-sent to the same route (model {model})", model=model,
    )


def _map_exc(exc: httpx.HTTPError, model: str | None, timeout: float) -> errors.TransportError:
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__
        return errors.TimeoutError(f"{kind} after {timeout:g}s (model {model}); raise timeout= if needed", model=model)
    return errors.ConnectionError(f"{type(exc).__name__}: {exc} (model {model})", model=model)


class Transport:
    """Sends JSON requests with retries; one pooled client per thread-safe sync use and per event loop."""

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
        async_backend: str = "httpx",
    ) -> None:
        """``async_backend="aiohttp"``: async requests go through aiohttp (:mod:`cfgateway.http._aiohttp`: the
        same contract, a quarter of the CPU per request); sync ones always use httpx."""
        if async_backend not in ("httpx", "aiohttp"):
            raise ValueError(f"async_backend must be 'httpx' or 'aiohttp', not {async_backend!r}")
        if async_backend == "aiohttp" and async_transport is not None:
            raise ValueError("async_transport is an httpx transport: it cannot be used with async_backend='aiohttp'")
        self.timeout = timeout
        self.policy = policy or RetryPolicy(max_retries=max_retries)
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._transport = transport
        self._async_transport = async_transport
        self._sync: httpx.Client | None = None
        self._urls: dict[str, httpx.URL] = {}  # parsed once per URL string (httpx re-parses str URLs per call)
        self._async: PerLoop = weakref.WeakKeyDictionary()
        self._aio: AioSender | None = AioSender(self._timeout, max_connections) if async_backend == "aiohttp" else None

    # -- clients -----------------------------------------------------------------------
    @property
    def sync_client(self) -> httpx.Client:
        if self._sync is None:
            transport = self._transport
            if transport is None:
                transport = httpx.HTTPTransport(verify=ssl_context(), limits=self._limits,
                                                socket_options=SOCKET_OPTIONS)
                fair_pool(transport)
            self._sync = httpx.Client(timeout=self._timeout, limits=self._limits, transport=transport)
            fast_cookies(self._sync)
        return self._sync

    @property
    def async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            for old in [lp for lp in self._async if lp.is_closed()]:  # loops closed without asyncio.run
                step(self._async[old][1].aclose())
            transport = self._async_transport
            if transport is None:
                transport = httpx.AsyncHTTPTransport(verify=ssl_context(), limits=self._limits,
                                                     socket_options=SOCKET_OPTIONS)
                fair_pool(transport)
            client = httpx.AsyncClient(timeout=self._timeout, limits=self._limits, transport=transport)
            fast_cookies(client)
            entry = self._async[loop] = (client, closed_with_loop(self._async, loop, client))
        return entry[0]

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        if self._aio is not None:
            await self._aio.aclose()
        entry = self._async.get(asyncio.get_running_loop())
        if entry is not None:
            await entry[1].aclose()  # its ``finally`` closes the client and forgets it

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= URL_CACHE_MAX:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    # -- policy ------------------------------------------------------------------------
    def _end(self, deadline: float | None) -> float:
        """When this request, its retries included, must be done: ``timeout`` from now, or the call's deadline."""
        end = time.monotonic() + self.timeout
        return end if deadline is None or deadline > end else deadline

    def _next_delay(
        self, attempt: int, exc: errors.CloudflareError, end: float, pace: Pacer | None = None
    ) -> float | None:
        delay = self.policy.delay(attempt, exc)
        if delay is None:
            return None
        if pace is not None and isinstance(exc, errors.RateLimitError):
            pace.pause(delay)  # every call on this route waits it out, not only this one
        if time.monotonic() + delay >= end:
            if isinstance(exc, errors.APIError) and exc.retry_after is not None:
                exc.message += f" (Retry-After {exc.retry_after:g}s does not fit in the call's time left; not retried)"
                exc.args = (exc._render(),)  # noqa: SLF001 - same error, fuller message
            return None
        log.debug("retrying after %.3fs: %s", delay, exc)
        return delay

    def _timeout_for(self, attempt: int, deadline: float | None, end: float) -> httpx.Timeout:
        if attempt == 0 and deadline is None:
            return self._timeout  # the whole timeout is left: no new Timeout object on the hot path
        left = end - time.monotonic()
        if left <= 0:
            raise errors.TimeoutError("the call's deadline passed before the request was sent")
        return httpx.Timeout(min(self.timeout, left), connect=min(self.timeout, left, 10.0))

    # -- sync --------------------------------------------------------------------------
    def _send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None, model: str | None,
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        """The one place a request is sent: returns the response with its headers read, or raises the typed error."""
        client = self.sync_client
        try:
            r = client.send(client.build_request(method, self._url(url), content=content, headers=headers,
                                                 timeout=timeout), stream=True)
        except httpx.HTTPError as exc:
            raise _map_exc(exc, model, self.timeout) from None
        if r.status_code >= 400:
            try:
                data = r.read()
            except httpx.HTTPError:
                data = b""
            finally:
                r.close()
            raise api_error(r.status_code, r.headers, data, model)
        return r

    def post(
        self, url: str, headers: Mapping[str, str], body: Body, *, model: str | None = None,
        deadline: float | None = None, pace: Pacer | None = None, tokens: int = 0,
    ) -> RawResponse:
        return self.request("POST", url, headers, body, model=model, deadline=deadline, pace=pace, tokens=tokens)

    def request(
        self, method: str, url: str, headers: Mapping[str, str], body: Body = None, *,
        model: str | None = None, deadline: float | None = None, pace: Pacer | None = None, tokens: int = 0,
    ) -> RawResponse:
        """Any method, with retries as the policy says, within ``timeout`` (or the call's ``deadline``);
        ``pace``: the route's client-side rate limit (each attempt waits its turn; ``tokens`` counts for it)."""
        content, end, attempt = encode(body), self._end(deadline), 0
        while True:
            start = time.perf_counter()
            try:
                if pace is not None:
                    sleep_turn(pace, tokens, end, model)
                r = self._send(method, url, headers, content, model, self._timeout_for(attempt, deadline, end))
                try:
                    data = r.read()
                except httpx.HTTPError as exc:
                    raise _incomplete(exc, model, r.status_code) from None
                finally:
                    r.close()
                return RawResponse(r.status_code, r.headers, data, time.perf_counter() - start)
            except errors.CloudflareError as exc:
                delay = self._next_delay(attempt, exc, end, pace)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    @contextmanager
    def stream(
        self, url: str, headers: Mapping[str, str], body: Body, *, model: str | None = None,
        deadline: float | None = None, pace: Pacer | None = None, tokens: int = 0,
    ) -> Iterator[tuple[httpx.Headers, Iterator[bytes]]]:
        """Open a stream (retrying before the first byte); yields headers and a byte iterator."""
        content, end, attempt = encode(body), self._end(deadline), 0
        while True:
            try:
                if pace is not None:
                    sleep_turn(pace, tokens, end, model)
                r = self._send("POST", url, headers, content, model, self._timeout_for(attempt, deadline, end))
                break
            except errors.CloudflareError as exc:
                delay = self._next_delay(attempt, exc, end, pace)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1
        try:
            yield r.headers, BodyPieces(self._iter(r, model), r.extensions.get("network_stream"))
        finally:
            r.close()

    def _iter(self, r: httpx.Response, model: str | None) -> Iterator[bytes]:
        try:
            yield from r.iter_bytes()
        except httpx.HTTPError as exc:
            raise _map_exc(exc, model, self.timeout) from None

    # -- async -------------------------------------------------------------------------
    async def _asend(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None, model: str | None,
        timeout: httpx.Timeout,
    ) -> httpx.Response | AioResponse:
        r: httpx.Response | AioResponse
        try:
            if self._aio is not None:
                r = await self._aio.send(method, url, headers, content, timeout)
            else:
                client = self.async_client
                r = await client.send(client.build_request(method, self._url(url), content=content, headers=headers,
                                                           timeout=timeout), stream=True)
        except httpx.HTTPError as exc:
            raise _map_exc(exc, model, self.timeout) from None
        if r.status_code >= 400:
            try:
                data = await r.aread()
            except httpx.HTTPError:
                data = b""
            finally:
                await r.aclose()
            raise api_error(r.status_code, r.headers, data, model)
        return r

    async def apost(
        self, url: str, headers: Mapping[str, str], body: Body, *, model: str | None = None,
        deadline: float | None = None, pace: Pacer | None = None, tokens: int = 0,
    ) -> RawResponse:
        return await self.arequest("POST", url, headers, body, model=model, deadline=deadline, pace=pace,
                                   tokens=tokens)

    async def arequest(
        self, method: str, url: str, headers: Mapping[str, str], body: Body = None, *,
        model: str | None = None, deadline: float | None = None, pace: Pacer | None = None, tokens: int = 0,
    ) -> RawResponse:
        content, end, attempt = encode(body), self._end(deadline), 0
        while True:
            start = time.perf_counter()
            try:
                if pace is not None:
                    await asleep_turn(pace, tokens, end, model)
                r = await self._asend(method, url, headers, content, model, self._timeout_for(attempt, deadline, end))
                try:
                    data = await r.aread()
                except httpx.HTTPError as exc:
                    raise _incomplete(exc, model, r.status_code) from None
                finally:
                    await r.aclose()
                return RawResponse(r.status_code, r.headers, data, time.perf_counter() - start)
            except errors.CloudflareError as exc:
                delay = self._next_delay(attempt, exc, end, pace)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    @asynccontextmanager
    async def astream(
        self, url: str, headers: Mapping[str, str], body: Body, *, model: str | None = None,
        deadline: float | None = None, pace: Pacer | None = None, tokens: int = 0,
    ) -> AsyncIterator[tuple[httpx.Headers, AsyncIterator[bytes]]]:
        content, end, attempt = encode(body), self._end(deadline), 0
        while True:
            try:
                if pace is not None:
                    await asleep_turn(pace, tokens, end, model)
                r = await self._asend("POST", url, headers, content, model, self._timeout_for(attempt, deadline, end))
                break
            except errors.CloudflareError as exc:
                delay = self._next_delay(attempt, exc, end, pace)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1
        try:
            yield r.headers, self._aiter(r, model)
        finally:
            await r.aclose()

    async def _aiter(self, r: httpx.Response | AioResponse, model: str | None) -> AsyncIterator[bytes]:
        try:
            async for chunk in r.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise _map_exc(exc, model, self.timeout) from None


# RetryPolicy, api_error and retryable live in cfgateway.http.retry; re-exported for callers of the transport
__all__ = ["Body", "RawResponse", "RetryPolicy", "Transport", "adrain", "api_error", "drain", "encode", "retryable"]
