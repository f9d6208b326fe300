"""Operations endpoints and the app: ``/healthz`` (liveness), ``/readyz`` (the upstream answers),
``/metrics`` (Prometheus), ``/openapi.json``, and OpenAI-shaped answers for unknown paths and methods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cfgateway import errors
from cfgateway.config import Settings
from cfgateway.costs.budget import CostTracker
from cfgateway.proxy.app import Proxy, json_response
from cfgateway.proxy.auth import key_from_spec
from cfgateway.proxy.config import ProxyConfig
from cfgateway.proxy.dashboard import dashboard_routes
from cfgateway.proxy.guard import Guard
from cfgateway.proxy.openapi import openapi_document
from cfgateway.proxy.responses import responses
from cfgateway.wire.openai_server import render_error

log = logging.getLogger("cfgateway.proxy")
READY_CACHE_S = 5.0


class Ops:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self._ready: tuple[float, int, dict[str, Any]] | None = None
        self._openapi: dict[str, Any] | None = None

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def _probe(self) -> tuple[int, dict[str, Any]]:
        s = self.proxy.settings
        if s.account_id and s.api_token:
            url = f"{s.base_url}/accounts/{s.account_id}/ai/models/search?per_page=1"
            headers = {"Authorization": f"Bearer {s.api_token.get_secret_value()}"}
        else:  # only a gateway configured: any HTTP answer from its host means it is reachable
            url, headers = s.gateway_base_url, {}
        try:
            await self.proxy.pool.transport.arequest("GET", url, headers, model="readyz",
                                                     deadline=time.monotonic() + 5.0)
        except (errors.AuthenticationError, errors.PermissionDeniedError) as exc:
            log.error("readiness: upstream refused the proxy's credentials: %s", exc)
            return 503, {"status": "unready", "upstream": "credentials refused (see the proxy's log)"}
        except errors.APIError as exc:
            if exc.status >= 500:
                return 503, {"status": "unready", "upstream": f"HTTP {exc.status}"}
        except errors.CloudflareError as exc:
            return 503, {"status": "unready", "upstream": type(exc).__name__}
        return 200, {"status": "ready", "upstream": "reachable"}

    async def readyz(self, request: Request) -> Response:
        now = time.monotonic()
        if self._ready is None or now - self._ready[0] > READY_CACHE_S:  # an open endpoint: no probe per request
            status, body = await self._probe()
            self._ready = (now, status, body)
        return json_response(self._ready[2], self._ready[1])

    async def metrics(self, request: Request) -> Response:
        try:
            self.proxy.tenant(request)
        except Exception as exc:  # noqa: BLE001
            return self.proxy.fail(request, exc)
        if self.proxy.metrics is None:
            return json_response(render_error("metrics are off", type_="invalid_request_error"), 404)
        body, media = self.proxy.metrics.render()
        return Response(body, media_type=media)

    async def openapi(self, request: Request) -> Response:
        if self._openapi is None:
            self._openapi = openapi_document()
        return json_response(self._openapi)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        msg = f"unknown path {request.url.path[:200]!r}: this proxy serves /v1/chat/completions, /v1/embeddings, " \
              "/v1/responses, /v1/models"
        return json_response(render_error(msg, type_="invalid_request_error", code="unknown_url"), 404)
    if status == 405:
        msg = f"method {request.method} is not allowed on {request.url.path[:200]!r}"
        return json_response(render_error(msg, type_="invalid_request_error", code="method_not_allowed"), 405)
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return json_response(render_error(str(detail), type_="invalid_request_error"), status)


async def _crash(request: Request, exc: Exception) -> Response:
    log.error("unexpected error in the proxy", exc_info=exc)
    return json_response(render_error("internal error in the proxy; details are in its log", type_="api_error",
                                      code="internal_error"), 500)


def build_app(proxy: Proxy) -> Any:
    """The ASGI app: the guard in front of the routes."""
    ops = Ops(proxy)

    async def responses_ep(request: Request) -> Response:
        return await responses(proxy, request)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await proxy.pool.aclose()

    app = Starlette(routes=[
        Route("/v1/chat/completions", proxy.chat, methods=["POST"]),
        Route("/v1/embeddings", proxy.embeddings, methods=["POST"]),
        Route("/v1/responses", responses_ep, methods=["POST"]),
        Route("/v1/models", proxy.models, methods=["GET"]),
        Route("/v1/models/{model:path}", proxy.model, methods=["GET"]),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route("/openapi.json", ops.openapi, methods=["GET"]),
        *dashboard_routes(proxy),
    ], exception_handlers={HTTPException: _http_error, Exception: _crash}, lifespan=lifespan)
    app.state.proxy = proxy
    guarded = Guard(app, proxy.config, proxy.metrics.observe if proxy.metrics else None)
    guarded.state = app.state  # type: ignore[attr-defined]
    return guarded


def create_proxy_app(
    settings: Settings | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    tracker: CostTracker | None = None,
    api_keys: Sequence[str] | None = None,
    *,
    config: ProxyConfig | None = None,
) -> Any:
    """The proxy as an ASGI app (``app.state.proxy`` is its :class:`Proxy`). ``aliases`` and ``api_keys``
    (``KEY`` or ``USER:KEY``) are shortcuts for a :class:`ProxyConfig` with only those."""
    if config is None:
        config = ProxyConfig(aliases=dict(aliases or {}), keys=[key_from_spec(k) for k in api_keys or ()])
    return build_app(Proxy(settings, config, tracker))


__all__ = ["Ops", "build_app", "create_proxy_app"]
