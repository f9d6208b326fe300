"""The Starlette app: URL routing for both bases, Workers AI auth, the request log, control endpoints.

``/client/v4/...`` is the Cloudflare API (Workers AI); ``/v1/...`` is the AI Gateway host.
``/__emulator/...`` drives the emulator from another process (never logged).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cfgateway.emulator.config import EmulatorConfig, Fault
from cfgateway.emulator.context import Ctx
from cfgateway.emulator.faults import EmuResponse
from cfgateway.emulator.gateway import call_upstream, gateway_headers, provider_call, universal, with_gateway
from cfgateway.emulator.jsonbody import json_safe, parse_body, strict_loads
from cfgateway.emulator.providers import Handler
from cfgateway.emulator.reply import Reply, cf_error, gateway_error
from cfgateway.emulator.state import EmulatorState, RecordedRequest
from cfgateway.emulator.vectorize import vectorize_target
from cfgateway.emulator.workers import chat_v1, embed_v1, models_search, run_native

_ACCOUNT_RE = re.compile(r"^/client/v4/accounts/([^/]+)/(.*)$")
_GATEWAY_RE = re.compile(r"^/v1/([^/]+)/([^/]+)(?:/(.*))?$")
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _no_route(ctx: Ctx) -> Reply:
    return cf_error(400, 7000, "No route for that URI")


def _client_v4_target(ctx: Ctx, rest: str) -> Handler | Reply:
    """The Workers AI handler for ``/client/v4/accounts/{acct}/{rest}``, or an error reply."""
    if rest.startswith("vectorize/"):
        return vectorize_target(ctx, rest[len("vectorize/") :])
    if rest == "ai/models/search":
        return models_search if ctx.method == "GET" else _method_not_allowed(ctx)
    if ctx.method != "POST":
        return _method_not_allowed(ctx) if rest.startswith("ai/") else _no_route(ctx)
    if rest.startswith("ai/run/"):
        model = rest[len("ai/run/") :]
        return lambda c: run_native(c, model)
    if rest == "ai/run":
        return _unified_run
    if rest == "ai/v1/chat/completions":
        return chat_v1
    if rest == "ai/v1/embeddings":
        return embed_v1
    return _no_route(ctx)


def _method_not_allowed(ctx: Ctx) -> Reply:
    return cf_error(405, 7001, f"{ctx.method} not supported for requested URI.")


def _unified_run(ctx: Ctx) -> Reply:
    """2026 unified REST ``POST /ai/run`` with ``{"model", "input"}`` (Workers AI models only here)."""
    body = ctx.body if isinstance(ctx.body, dict) else {}
    model, inner = body.get("model"), body.get("input")
    if not isinstance(model, str) or not isinstance(inner, dict):
        return cf_error(400, 5006, "AiError: Bad input: required properties at '/' are 'model', 'input'", result={})
    if not model.startswith("@"):
        return cf_error(400, 7000, "No route for that URI: third-party models are not emulated on /ai/run")
    return run_native(ctx.sub(body=inner), model)


def _workers_auth(ctx: Ctx) -> Reply | None:
    auth = ctx.headers.get("authorization")
    if not auth:
        return cf_error(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
    token = ctx.state.config.api_token
    if not auth.startswith("Bearer ") or not auth[7:].strip() or (token is not None and auth[7:] != token):
        return cf_error(401, 10000, "Authentication error")
    return None


async def client_v4(ctx: Ctx) -> Reply:
    m = _ACCOUNT_RE.match(ctx.path)
    if m is None:
        return _no_route(ctx)
    denied = _workers_auth(ctx)
    if denied is not None:
        return denied
    account, rest = m.group(1), m.group(2)
    wanted = ctx.state.config.account_id
    if wanted is not None and account != wanted:
        return cf_error(404, 7003, f"Could not route to {ctx.path}, perhaps your object identifier is invalid?")
    target = _client_v4_target(ctx, rest)
    if isinstance(target, Reply):
        return target

    async def run(c: Ctx) -> Reply:
        reply, _ = await call_upstream(c, target, c.path)
        return reply

    gateway_id = ctx.headers.get("cf-aig-gateway-id")
    if gateway_id:
        return await with_gateway(ctx, gateway_id, account, run)
    return await run(ctx)


async def gateway_v1(ctx: Ctx) -> Reply:
    m = _GATEWAY_RE.match(ctx.path)
    if m is None:
        return gateway_error(404, 2001, "Gateway does not exist")  # guess
    account, gateway_id, rest = m.group(1), m.group(2), m.group(3) or ""
    if ctx.method != "POST":
        return gateway_headers(ctx, gateway_error(405, 2000, f"{ctx.method} not supported"), None)  # guess
    if not rest.strip("/"):
        return await with_gateway(ctx, gateway_id, account, lambda c: universal(c, account, gateway_id))
    provider, _, tail = rest.partition("/")
    return await with_gateway(ctx, gateway_id, account, lambda c: provider_call(c, provider, tail))


async def dispatch(ctx: Ctx) -> Reply:
    if ctx.path.startswith("/client/v4/"):
        return await client_v4(ctx)
    if ctx.path.startswith("/v1/"):
        return await gateway_v1(ctx)
    return cf_error(404, 7000, "No route for that URI")


def _logged(raw: bytes, logged: Any, headers: dict[str, str]) -> Any:
    """What the request log shows as ``json``: the body, or the objects of an NDJSON body (Vectorize writes)."""
    if "ndjson" not in headers.get("content-type", ""):
        return logged
    try:
        return [json_safe(json.loads(line)) for line in raw.split(b"\n") if line.strip()]
    except ValueError:
        return None


def create_app(config: EmulatorConfig | None = None, state: EmulatorState | None = None) -> Starlette:
    """The emulator as an ASGI app; ``app.state.emulator`` is its :class:`EmulatorState`."""
    emu = state or EmulatorState(config or EmulatorConfig())
    stream_delay = emu.config.stream_delay_s

    async def handle(request: Request) -> Response:
        raw = await request.body()
        parsed = parse_body(raw)  # strict JSON: NaN and lone surrogates are unreadable (a 400), not a 500
        headers = dict(request.headers.items())
        path = request.scope["path"]
        rec = RecordedRequest(request.method, path, dict(request.query_params), headers,
                              _logged(raw, parsed.logged, headers), time.time())
        emu.record(rec)
        ctx = Ctx(request.method, path, rec.query, headers, parsed.body, raw, parsed.ok, emu, json_error=parsed.error)
        reply = await dispatch(ctx)  # an unreadable body arrives as None: handlers answer "bad input"
        rec.status = reply.status
        return EmuResponse(reply, stream_delay)

    app = Starlette(routes=[*control_routes(emu), Route("/{path:path}", handle, methods=_METHODS)])
    app.state.emulator = emu
    return app


def control_routes(emu: EmulatorState) -> list[Route]:
    """``/__emulator/{faults,requests,reset,health,vectorize}`` for driving the emulator over HTTP
    (``vectorize``: GET or POST the Vectorize switches, e.g. ``{"delay_s": 1.0}``)."""

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            emu.clear_faults()
            return JSONResponse({"cleared": True})
        if request.method == "GET":
            return JSONResponse([f.to_dict() for f in emu.faults])
        try:
            data = strict_loads(await request.body())
            items = data if isinstance(data, list) else [data]
            added = [emu.add_fault(Fault.from_dict(d)) for d in items]
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"added": [f.to_dict() for f in added]})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            emu.clear_requests()
            return JSONResponse({"cleared": True})
        return JSONResponse([r.to_dict() for r in list(emu.requests)])  # to_dict is strict JSON (json_safe)

    async def reset(request: Request) -> Response:
        emu.clear()
        return JSONResponse({"reset": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def vectorize(request: Request) -> Response:
        if request.method == "POST":
            try:
                emu.vectorize.update(await request.json())
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(emu.vectorize.settings_dict())

    return [
        Route("/__emulator/vectorize", vectorize, methods=["GET", "POST"]),
        Route("/__emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/__emulator/requests", requests, methods=["GET", "DELETE"]),
        Route("/__emulator/reset", reset, methods=["POST"]),
        Route("/__emulator/health", health, methods=["GET"]),
    ]


__all__ = ["create_app", "dispatch"]
