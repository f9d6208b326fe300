"""The proxy's front door, a pure ASGI middleware: what reaches a handler has passed every check here.

- ``Host`` must be an allowed name (loopback names by default, ``--allowed-host`` for more): a DNS-rebinding
  page's requests carry its own host name and are refused.
- A browser's cross-origin request (an ``Origin`` header, or ``Sec-Fetch-Site: cross-site``) is refused unless
  its origin is configured (``--cors-origin``); then CORS headers and preflights are answered.
- ``POST`` bodies must be ``application/json`` (a form or ``text/plain`` post from a page is refused), at most
  ``max_body_bytes`` long, and arrive within ``read_timeout_s`` (a body shorter than its Content-Length
  does not hold the connection).
- One structured access-log line per request (no bodies, no query strings, no secrets) and the request metrics.

Every refusal is an OpenAI-shaped JSON error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cfgateway.proxy.config import ProxyConfig
from cfgateway.wire.openai_server import render_error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("cfgateway.proxy.access")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # liveness probes come with the pod's address as Host
BODY_KEY = "cfgateway.body"
INFO_KEY = "cfgateway.info"


class Refusal(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code
        self.headers = headers or []


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k: v for k, v in scope.get("headers", ())}


def host_name(value: str) -> str:
    """The name in a Host header, without its port (``[::1]:8080`` -> ``[::1]``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """Host allow-list, browser origin policy, content type, body size and read time (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: ProxyConfig, observe: Callable[[str, str, int, float], None] | None
                 = None) -> None:
        self.app = app
        self.config = config
        self.hosts = config.hosts
        self.any_host = "*" in config.allowed_hosts
        self.origins = config.cors_origins
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info: dict[str, Any] = {}
        scope[INFO_KEY] = info
        status = [0]
        cors: list[tuple[bytes, bytes]] = []

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if cors:
                    message["headers"] = [*message.get("headers", ()), *cors]
            await send(message)

        try:
            headers = _headers(scope)
            cors.extend(self._check(scope, headers))
            if scope["method"] == "OPTIONS" and cors:
                await send_wrapped({"type": "http.response.start", "status": 204, "headers": self._preflight(headers)})
                await send_wrapped({"type": "http.response.body", "body": b""})
                return
            if scope["method"] in ("POST", "PUT", "PATCH"):
                scope[BODY_KEY] = await self._body(headers, receive)
            await self.app(scope, _replay(scope.get(BODY_KEY, b""), receive), send_wrapped)
        except Refusal as r:
            info.setdefault("error", r.type)
            await send_json(send_wrapped, r.status, render_error(r.message, type_=r.type, code=r.code), r.headers)
        finally:
            self._log(scope, info, status[0], time.perf_counter() - started)

    def _check(self, scope: Scope, headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        path = scope.get("path", "")
        if path in OPEN_PATHS and scope["method"] == "GET":
            return []
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if not self.any_host and host not in self.hosts:
            raise Refusal(400, f"Host {host!r} is not served by this proxy (allowed: {', '.join(sorted(self.hosts))}); "
                               "the operator can add names with --allowed-host", code="host_not_allowed")
        origin = headers.get(b"origin", b"").decode("latin-1")
        site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
        if origin and origin != "null" and (origin in self.origins or "*" in self.origins):
            return [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin"),
                    (b"access-control-expose-headers", b"x-cfgateway-model, x-request-id")]
        if origin or site in ("cross-site", "same-site"):
            raise Refusal(403, f"cross-origin browser requests are refused (Origin {origin or '(none)'!r}); "
                               "the operator can allow an origin with --cors-origin", "permission_error",
                          "origin_not_allowed")
        return []

    def _preflight(self, headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        asked = headers.get(b"access-control-request-headers", b"authorization, content-type")[:512]
        return [(b"access-control-allow-methods", b"GET, POST, OPTIONS"), (b"access-control-allow-headers", asked),
                (b"access-control-max-age", b"600"), (b"content-length", b"0")]

    async def _body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media != b"application/json":
            raise Refusal(415, f"the body must be JSON sent as 'Content-Type: application/json' "
                               f"(got {media.decode('latin-1')[:80] or 'none'!r})", code="unsupported_media_type")
        limit = self.config.limits.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise Refusal(400, "Content-Length is not a number")
            if int(declared) > limit:
                raise Refusal(413, f"the body is {int(declared)} bytes, above this proxy's limit of {limit} "
                                   "(--max-body-bytes)", code="request_too_large")
        try:
            async with asyncio.timeout(self.config.limits.read_timeout_s):
                return await _read(receive, limit)
        except TimeoutError:
            raise Refusal(408, f"the body did not arrive within {self.config.limits.read_timeout_s:g} s "
                               "(shorter than its Content-Length?)", code="request_timeout",
                          headers=[(b"connection", b"close")]) from None

    def _log(self, scope: Scope, info: dict[str, Any], status: int, seconds: float) -> None:
        path = scope.get("path", "")
        if self.observe is not None:
            self.observe(scope.get("method", ""), path, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client") or ("", 0)
            entry = {"method": scope.get("method"), "path": path[:200], "status": status,
                     "ms": round(seconds * 1000, 2), "client": client[0], **info}
            access_log.info(json.dumps(entry))


async def _read(receive: Receive, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refusal(400, "the client went away before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"the body is above this proxy's limit of {limit} bytes (--max-body-bytes)",
                          code="request_too_large", headers=[(b"connection", b"close")])
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


__all__ = ["BODY_KEY", "INFO_KEY", "Guard", "Refusal", "host_name", "send_json"]
