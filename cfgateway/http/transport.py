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
import socket
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from cfgateway import errors
from cfgateway.http.retry import RetryPolicy, api_error, retryable

log = logging.getLogger("cfgateway.http.transport")

# h11 writes the request head and body in two sends; with Nagle on, the body waits for the ACK of the
# head, and a delayed ACK stalls every small POST by ~40 ms. asyncio sets TCP_NODELAY; sync sockets do not.
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

_SSL_LOCK = threading.Lock()
_SSL_CONTEXT: list[ssl.SSLContext] = []


def _ssl_context() -> ssl.SSLContext:
    """One verifying SSL context per process (httpx's defaults: certifi, ``SSL_CERT_FILE``/``SSL_CERT_DIR``).

    httpx builds a new one for every transport, ~15-20 ms of loading CA certificates; we need a transport
    per event loop (``asyncio.run`` per call in sync code), so that cost would repeat on every loop.
    """
    with _SSL_LOCK:
        if not _SSL_CONTEXT:
            _SSL_CONTEXT.append(httpx.create_ssl_context())
        return _SSL_CONTEXT[0]


_URL_CACHE_MAX = 256


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, minus its per-response cost when a response sets no cookie.

    httpx builds two urllib adapter objects for every response just to find no ``Set-Cookie``
    header; skipping that when the header is absent is the same result, ~10 us cheaper per call.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


def _fast_cookies(client: httpx.Client | httpx.AsyncClient) -> None:
    client._cookies = _Cookies(client.cookies)  # noqa: SLF001 - same jar type, cheaper no-cookie path


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


_PerLoop = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]]


async def _closer(
    clients: _PerLoop, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        clients.pop(loop, None)
        if not loop.is_closed():  # a loop closed without asyncio.run: its sockets go with the client
            await client.aclose()


def _step(awaitable: Any) -> None:
    """Run a coroutine step that cannot suspend (no real await) to its end, synchronously."""
    try:
        awaitable.send(None)
    except StopIteration:
        pass


def _closed_with_loop(
    clients: _PerLoop, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
) -> AsyncGenerator[None, None]:
    """An async generator parked at its ``yield`` in the running loop, which closes ``client``.

    ``asyncio.run`` (and ``loop.shutdown_asyncgens``) closes every async generator the loop has started,
    so each per-loop client closes its connections while its loop can still run, instead of keeping the
    loop and its sockets alive until this Transport dies (one leaked client per ``asyncio.run`` call).
    The first step has no await, so it runs synchronously: ``send(None)`` ends in StopIteration at the yield.
    """
    gen = _closer(clients, loop, client)
    _step(gen.asend(None))
    return gen  # kept with the client: dropping it would let the loop's finaliser close the client early


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
    ) -> None:
        self.timeout = timeout
        self.policy = policy or RetryPolicy(max_retries=max_retries)
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._transport = transport
        self._async_transport = async_transport
        self._sync: httpx.Client | None = None
        self._urls: dict[str, httpx.URL] = {}  # parsed once per URL string (httpx re-parses str URLs per call)
        self._async: _PerLoop = weakref.WeakKeyDictionary()

    # -- clients -----------------------------------------------------------------------
    @property
    def sync_client(self) -> httpx.Client:
        if self._sync is None:
            transport = self._transport or httpx.HTTPTransport(
                verify=_ssl_context(), limits=self._limits, socket_options=_SOCKET_OPTIONS
            )
            self._sync = httpx.Client(timeout=self._timeout, limits=self._limits, transport=transport)
            _fast_cookies(self._sync)
        return self._sync

    @property
    def async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            for old in [lp for lp in self._async if lp.is_closed()]:  # loops closed without asyncio.run
                _step(self._async[old][1].aclose())
            transport = self._async_transport or httpx.AsyncHTTPTransport(
                verify=_ssl_context(), limits=self._limits, socket_options=_SOCKET_OPTIONS
            )
            client = httpx.AsyncClient(timeout=self._timeout, limits=self._limits, transport=transport)
            _fast_cookies(client)
            entry = self._async[loop] = (client, _closed_with_loop(self._async, loop, client))
        return entry[0]

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        entry = self._async.get(asyncio.get_running_loop())
        if entry is not None:
            await entry[1].aclose()  # its ``finally`` closes the client and forgets it

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URL_CACHE_MAX:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    # -- policy ------------------------------------------------------------------------
    def _end(self, deadline: float | None) -> float:
        """When this request, its retries included, must be done: ``timeout`` from now, or the call's deadline."""
        end = time.monotonic() + self.timeout
        return end if deadline is None or deadline > end else deadline

    def _next_delay(self, attempt: int, exc: errors.CloudflareError, end: float) -> float | None:
        delay = self.policy.delay(attempt, exc)
        if delay is None:
            return None
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
        deadline: float | None = None,
    ) -> RawResponse:
        return self.request("POST", url, headers, body, model=model, deadline=deadline)

    def request(
        self, method: str, url: str, headers: Mapping[str, str], body: Body = None, *,
        model: str | None = None, deadline: float | None = None,
    ) -> RawResponse:
        """Any method, with retries as the policy says, within ``timeout`` (or the call's ``deadline``)."""
        content, end, attempt = encode(body), self._end(deadline), 0
        while True:
            start = time.perf_counter()
            try:
                r = self._send(method, url, headers, content, model, self._timeout_for(attempt, deadline, end))
                try:
                    data = r.read()
                except httpx.HTTPError as exc:
                    raise _incomplete(exc, model, r.status_code) from None
                finally:
                    r.close()
                return RawResponse(r.status_code, r.headers, data, time.perf_counter() - start)
            except errors.CloudflareError as exc:
                delay = self._next_delay(attempt, exc, end)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    @contextmanager
    def stream(
        self, url: str, headers: Mapping[str, str], body: Body, *, model: str | None = None,
        deadline: float | None = None,
    ) -> Iterator[tuple[httpx.Headers, Iterator[bytes]]]:
        """Open a stream (retrying before the first byte); yields headers and a byte iterator."""
        content, end, attempt = encode(body), self._end(deadline), 0
        while True:
            try:
                r = self._send("POST", url, headers, content, model, self._timeout_for(attempt, deadline, end))
                break
            except errors.CloudflareError as exc:
                delay = self._next_delay(attempt, exc, end)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1
        try:
            yield r.headers, self._iter(r, model)
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
    ) -> httpx.Response:
        client = self.async_client
        try:
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
        deadline: float | None = None,
    ) -> RawResponse:
        return await self.arequest("POST", url, headers, body, model=model, deadline=deadline)

    async def arequest(
        self, method: str, url: str, headers: Mapping[str, str], body: Body = None, *,
        model: str | None = None, deadline: float | None = None,
    ) -> RawResponse:
        content, end, attempt = encode(body), self._end(deadline), 0
        while True:
            start = time.perf_counter()
            try:
                r = await self._asend(method, url, headers, content, model, self._timeout_for(attempt, deadline, end))
                try:
                    data = await r.aread()
                except httpx.HTTPError as exc:
                    raise _incomplete(exc, model, r.status_code) from None
                finally:
                    await r.aclose()
                return RawResponse(r.status_code, r.headers, data, time.perf_counter() - start)
            except errors.CloudflareError as exc:
                delay = self._next_delay(attempt, exc, end)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    @asynccontextmanager
    async def astream(
        self, url: str, headers: Mapping[str, str], body: Body, *, model: str | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[tuple[httpx.Headers, AsyncIterator[bytes]]]:
        content, end, attempt = encode(body), self._end(deadline), 0
        while True:
            try:
                r = await self._asend("POST", url, headers, content, model, self._timeout_for(attempt, deadline, end))
                break
            except errors.CloudflareError as exc:
                delay = self._next_delay(attempt, exc, end)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1
        try:
            yield r.headers, self._aiter(r, model)
        finally:
            await r.aclose()

    async def _aiter(self, r: httpx.Response, model: str | None) -> AsyncIterator[bytes]:
        try:
            async for chunk in r.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise _map_exc(exc, model, self.timeout) from None


# RetryPolicy, api_error and retryable live in cfgateway.http.retry; re-exported for callers of the transport
__all__ = ["Body", "RawResponse", "RetryPolicy", "Transport", "api_error", "encode", "retryable"]
