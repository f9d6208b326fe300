"""Pooled httpx clients: one SSL context per process, a cheaper cookie jar, and async clients that close
with their event loop (so ``asyncio.run`` per call neither fails nor leaks)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import Any

import httpcore
import httpx

# h11 writes the request head and body in two sends; with Nagle on, the body waits for the ACK of the
# head, and a delayed ACK stalls every small POST by ~40 ms. asyncio sets TCP_NODELAY; sync sockets do not.
SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

_SSL_LOCK = threading.Lock()
_SSL_CONTEXT: list[ssl.SSLContext] = []


def ssl_context() -> ssl.SSLContext:
    """One verifying SSL context per process (httpx's defaults: certifi, ``SSL_CERT_FILE``/``SSL_CERT_DIR``).

    httpx builds a new one for every transport, ~15-20 ms of loading CA certificates; we need a transport
    per event loop (``asyncio.run`` per call in sync code), so that cost would repeat on every loop.
    """
    with _SSL_LOCK:
        if not _SSL_CONTEXT:
            _SSL_CONTEXT.append(httpx.create_ssl_context())
        return _SSL_CONTEXT[0]


URL_CACHE_MAX = 256


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, minus its per-response cost when a response sets no cookie.

    httpx builds two urllib adapter objects for every response just to find no ``Set-Cookie``
    header; skipping that when the header is absent is the same result, ~10 us cheaper per call.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


def fast_cookies(client: httpx.Client | httpx.AsyncClient) -> None:
    client._cookies = _Cookies(client.cookies)  # noqa: SLF001 - same jar type, cheaper no-cookie path


class _FairAssign:
    """httpcore's request-to-connection assignment, minus its unfairness under concurrency.

    httpcore gives every queued request the *first* available connection, and a connection stays "available"
    until its request starts on it, several awaits later. Meanwhile other requests are given the same
    connection; all but one then fail with ``ConnectionNotAvailable`` and queue again for the first available
    connection, where they collide again. Under 64 concurrent requests some lose this race for seconds
    (measured: p99 at 10x p50, one request in 40 waiting > 1 s before it is even sent) and throughput falls
    to a quarter. Here a connection already given to a request that has not started is not given again: the
    next request gets another idle connection, or a new one. HTTP/1.1 only (the transport never asks for
    HTTP/2, where a connection serves several requests at once).
    """

    def _assign_requests_to_connections(self) -> list[Any]:
        pool: Any = self
        closing = []
        for connection in list(pool._connections):  # closed, expired, surplus idle: as httpcore does
            if connection.is_closed():
                pool._connections.remove(connection)
            elif connection.has_expired() or (
                connection.is_idle() and len(pool._connections) > pool._max_keepalive_connections
            ):
                pool._connections.remove(connection)
                closing.append(connection)
        claimed = {id(r.connection) for r in pool._requests if r.connection is not None}
        for request in [r for r in pool._requests if r.is_queued()]:
            origin = request.request.url.origin
            free = [c for c in pool._connections if id(c) not in claimed]
            connection = next((c for c in free if c.can_handle_request(origin) and c.is_available()), None)
            if connection is None and len(pool._connections) >= pool._max_connections:
                idle = next((c for c in free if c.is_idle()), None)
                if idle is None:
                    continue  # every connection busy: the request waits for one to be released
                pool._connections.remove(idle)
                closing.append(idle)
            if connection is None:
                connection = pool.create_connection(origin)
                pool._connections.append(connection)
            claimed.add(id(connection))
            request.assign_to_connection(connection)
        return closing


class FairAsyncPool(_FairAssign, httpcore.AsyncConnectionPool):
    pass


class FairPool(_FairAssign, httpcore.ConnectionPool):
    pass


def fair_pool(transport: httpx.HTTPTransport | httpx.AsyncHTTPTransport) -> None:
    """Give ``transport`` the fair assignment (its pool keeps every setting: only the class changes). A pool
    of another kind (a proxy's) or an httpcore without the method it replaces is left as it is."""
    pool = transport._pool  # noqa: SLF001 - the transport's own pool; no public way to choose its class
    base = type(pool)
    if not hasattr(base, "_assign_requests_to_connections"):
        return
    if base is httpcore.AsyncConnectionPool:
        pool.__class__ = FairAsyncPool
    elif base is httpcore.ConnectionPool:
        pool.__class__ = FairPool


PerLoop = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]]


async def _closer(
    clients: PerLoop, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        clients.pop(loop, None)
        if not loop.is_closed():  # a loop closed without asyncio.run: its sockets go with the client
            await client.aclose()


def step(awaitable: Any) -> None:
    """Run a coroutine step that cannot suspend (no real await) to its end, synchronously."""
    try:
        awaitable.send(None)
    except StopIteration:
        pass


def closed_with_loop(
    clients: PerLoop, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
) -> AsyncGenerator[None, None]:
    """An async generator parked at its ``yield`` in the running loop, which closes ``client``.

    ``asyncio.run`` (and ``loop.shutdown_asyncgens``) closes every async generator the loop has started,
    so each per-loop client closes its connections while its loop can still run, instead of keeping the
    loop and its sockets alive until this Transport dies (one leaked client per ``asyncio.run`` call).
    The first step has no await, so it runs synchronously: ``send(None)`` ends in StopIteration at the yield.
    """
    gen = _closer(clients, loop, client)
    step(gen.asend(None))
    return gen  # kept with the client: dropping it would let the loop's finaliser close the client early


__all__ = ["FairAsyncPool", "FairPool", "PerLoop", "SOCKET_OPTIONS", "URL_CACHE_MAX", "closed_with_loop", "fair_pool",
           "fast_cookies", "ssl_context", "step"]
