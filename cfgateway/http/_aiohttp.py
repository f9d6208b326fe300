"""aiohttp as the transport's async sender (``Transport(async_backend="aiohttp")``; the proxy uses it).

httpx, httpcore, anyio and h11 are pure Python: in the proxy they were ~60 % of the CPU of a proxied call.
aiohttp parses HTTP in C and costs about a quarter of that per request. Only sending changes: the
:class:`~cfgateway.http.transport.Transport` keeps its retries, deadlines and error mapping, because a
response here has the few members the transport uses of an httpx one (``status_code``, ``headers`` as
``httpx.Headers``, ``aread``, ``aiter_bytes``, ``aclose``) and every aiohttp failure is raised as the httpx
exception of the same meaning (connect/read timeout, connect error, broken body).

One ``ClientSession`` per event loop, closed with its loop (as the httpx clients); same limits, timeouts
(connect, per-read; ``pool`` bounds the wait for a connection plus connecting), SSL context, keep-alive
expiry (5 s), no cookie jar. Requires the ``aiohttp`` package (the ``proxy`` extra installs it).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from cfgateway.http._pools import closed_with_loop, ssl_context, step

KEEPALIVE_S = 5.0  # httpx's keep-alive expiry


def available() -> bool:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def _httpx_error(exc: BaseException, method: str, url: str, connecting: bool) -> httpx.HTTPError:
    """The httpx exception that means what ``exc`` (aiohttp, or a timeout) means."""
    import aiohttp

    msg = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    cls: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        cls = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.SocketTimeoutError):
        cls = httpx.ReadTimeout
    elif isinstance(exc, asyncio.TimeoutError):
        cls = httpx.ConnectTimeout if connecting else httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        cls = httpx.ConnectError
    elif isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError)):
        cls = httpx.RemoteProtocolError
    else:
        cls = httpx.ReadError
    return cls(msg, request=httpx.Request(method, url))


class AioResponse:
    """An aiohttp response seen through the members the transport uses of an ``httpx.Response``."""

    __slots__ = ("_r", "headers", "method", "status_code", "url")

    def __init__(self, r: Any, method: str, url: str) -> None:
        self._r = r
        self.status_code: int = r.status
        self.headers = httpx.Headers(list(r.raw_headers))
        self.method, self.url = method, url

    async def aread(self) -> bytes:
        try:
            return bytes(await self._r.read())
        except Exception as exc:  # noqa: BLE001 - aiohttp's failures, as httpx's
            raise _httpx_error(exc, self.method, self.url, False) from None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._r.content.iter_any():
                yield piece
        except Exception as exc:  # noqa: BLE001
            raise _httpx_error(exc, self.method, self.url, False) from None

    async def aclose(self) -> None:
        if self._r.content.at_eof():
            self._r.release()  # read to its end: the connection goes back to the pool
        else:
            self._r.close()  # not read to its end: the connection cannot be reused


class _Session:
    def __init__(self, session: Any) -> None:
        self.session = session

    async def aclose(self) -> None:
        await self.session.close()


class AioSender:
    """Per-event-loop aiohttp sessions and the one ``send``."""

    def __init__(self, timeout: httpx.Timeout, max_connections: int) -> None:
        self._timeout = timeout
        self._max = max_connections
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[_Session, Any]] = \
            weakref.WeakKeyDictionary()

    def session(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        entry = self._sessions.get(loop)
        if entry is None:
            for old in [lp for lp in self._sessions if lp.is_closed()]:  # loops closed without asyncio.run
                step(self._sessions[old][1].aclose())
            connector = aiohttp.TCPConnector(limit=self._max, limit_per_host=0, ssl=ssl_context(),
                                             keepalive_timeout=KEEPALIVE_S)
            holder = _Session(aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                                    auto_decompress=True, trust_env=False))
            entry = self._sessions[loop] = (holder, closed_with_loop(self._sessions, loop, holder))  # type: ignore[arg-type]
        return entry[0].session

    async def aclose(self) -> None:
        entry = self._sessions.get(asyncio.get_running_loop())
        if entry is not None:
            await entry[1].aclose()

    async def send(self, method: str, url: str, headers: Mapping[str, str], content: bytes | None,
                   timeout: httpx.Timeout) -> AioResponse:
        import aiohttp

        t = timeout.as_dict()
        client_timeout = aiohttp.ClientTimeout(total=None, connect=t.get("pool"), sock_connect=t.get("connect"),
                                               sock_read=t.get("read"))
        try:
            r = await self.session().request(method, url, data=content, headers=dict(headers),
                                             timeout=client_timeout, allow_redirects=False)
        except Exception as exc:  # noqa: BLE001 - aiohttp's failures, as httpx's
            raise _httpx_error(exc, method, url, True) from None
        return AioResponse(r, method, url)


__all__ = ["AioResponse", "AioSender", "available"]
