"""An OpenAI-compatible proxy in front of cfgateway (for AutoGen, the openai SDK, any OpenAI client).

``cfgateway proxy --port 8080 --alias fast=@cf/meta/llama-3.1-8b-instruct-fp8-fast,openai/gpt-4o-mini``
then point the client's ``base_url`` at ``http://127.0.0.1:8080/v1``. The ``model`` field takes any
cfgateway model string or an alias (an alias with several models is a fallback chain). Answers always
carry ``usage`` (streams: with ``stream_options.include_usage``) and echo the requested model name, so
clients that book cost from usage never book a silent $0. Per-call ``user`` and ``metadata`` body fields
flow into the gateway metadata and the cost ledger (AutoGen blocks per-call headers; bodies pass).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cfgateway import errors
from cfgateway.config import Settings, load_settings
from cfgateway.costs.budget import CostTracker
from cfgateway.costs.catalog import load_catalog
from cfgateway.fallback import ModelClient, build_client
from cfgateway.types import CallContext
from cfgateway.wire import openai_server as wire

_TYPES: dict[type[errors.CloudflareError], tuple[int, str]] = {
    errors.ConfigError: (400, "invalid_request_error"),
    errors.InvalidInputError: (400, "invalid_request_error"),
    errors.BudgetExceededError: (429, "insufficient_quota"),
    errors.TimeoutError: (504, "timeout"),
    errors.ConnectionError: (502, "api_connection_error"),
    errors.MalformedResponseError: (502, "api_error"),
    errors.StreamInterrupted: (502, "api_error"),
}


def error_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, wire.RequestError):
        return JSONResponse(wire.render_error(str(exc), type_="invalid_request_error"), status_code=400)
    if isinstance(exc, errors.APIError):
        kind = "authentication_error" if isinstance(exc, errors.AuthenticationError) else (
            "rate_limit_error" if isinstance(exc, errors.RateLimitError) else "api_error")
        if isinstance(exc, errors.ContextLengthExceededError):
            kind = "context_length_exceeded"
        return JSONResponse(wire.render_error(str(exc), type_=kind, code=exc.code), status_code=exc.status)
    for cls, (status, kind) in _TYPES.items():
        if isinstance(exc, cls):
            return JSONResponse(wire.render_error(str(exc), type_=kind), status_code=status)
    return JSONResponse(wire.render_error(f"{type(exc).__name__}: {exc}", type_="api_error"), status_code=500)


class Proxy:
    """The proxy's state: settings, aliases, one pooled client per model string or alias."""

    def __init__(
        self,
        settings: Settings | None = None,
        aliases: Mapping[str, Sequence[str]] | None = None,
        tracker: CostTracker | None = None,
        api_keys: Sequence[str] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.aliases = {k: list(v) for k, v in (aliases or {}).items()}
        self.tracker = tracker
        self.api_keys = set(api_keys or ())
        self._clients: dict[str, ModelClient] = {}

    def client(self, name: str) -> ModelClient:
        c = self._clients.get(name)
        if c is None:
            models = self.aliases.get(name, [name])
            c = build_client(models[0], models[1:] or None, settings=self.settings, tracker=self.tracker)
            self._clients[name] = c
        return c

    def check_key(self, request: Request) -> None:
        if not self.api_keys:
            return
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.api_keys:
            raise errors.AuthenticationError("invalid proxy API key", status=401)

    async def body(self, request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            raise wire.RequestError("the body is not JSON") from None

    async def chat(self, request: Request) -> Response:
        try:
            self.check_key(request)
            name, req, stream, include_usage = wire.parse_chat_request(await self.body(request))
            client = self.client(name)
            ctx = CallContext(user=req.user, metadata=dict(req.metadata))
            cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
            if not stream:
                resp = await client.achat(req, context=ctx)
                return JSONResponse(wire.render_chat(resp, name, cid), headers=_route_headers(resp.model))
            gen = client.astream(req, context=ctx)
            first = await anext(gen)  # errors before the first chunk become a normal error response
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI-style error body
            return error_response(exc)
        return StreamingResponse(
            _sse(first, gen, name, cid, include_usage), media_type="text/event-stream",
            headers=_route_headers(first.model or name),
        )

    async def embeddings(self, request: Request) -> Response:
        try:
            self.check_key(request)
            body = await self.body(request)
            name, texts = body.get("model"), body.get("input")
            if not isinstance(name, str) or texts is None:
                raise wire.RequestError("`model` and `input` are required")
            texts = [texts] if isinstance(texts, str) else texts
            resp = await self.client(name).aembed(texts, context=CallContext(user=body.get("user")))
            return JSONResponse(wire.render_embeddings(resp.vectors, name, resp.usage),
                                headers=_route_headers(resp.model))
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)

    async def models(self, request: Request) -> Response:
        catalog = load_catalog(self.settings.catalog)
        data = [_model_entry(m, catalog.get(m)) for m in catalog.models]
        data += [_model_entry(alias, catalog.get(models[0])) for alias, models in self.aliases.items()]
        return JSONResponse({"object": "list", "data": data})


def _route_headers(model: str | None) -> dict[str, str]:
    return {"x-cfgateway-model": model} if model else {}


def _model_entry(name: str, info: Any) -> dict[str, Any]:
    fc = bool(info and info.function_calling)
    js = bool(info and info.json_mode)
    family = name.split("/")[1] if name.startswith("@") and "/" in name else name.split("/")[0]
    return {"id": name, "object": "model", "created": 0, "owned_by": info.provider if info else "unknown",
            "model_info": {"vision": "vision" in name, "function_calling": fc, "json_output": js,
                           "structured_output": js, "family": family,
                           "context_window": info.context_window if info else None}}


async def _sse(first: Any, rest: AsyncIterator[Any], model: str, cid: str, include_usage: bool) -> AsyncIterator[bytes]:
    chunk, is_first = first, True
    try:
        while True:
            if chunk.text or chunk.tool_call_chunks or chunk.reasoning or chunk.finish_reason or is_first:
                data = wire.render_chunk(chunk, model, cid, first=is_first)
                yield b"data: " + json.dumps(data).encode() + b"\n\n"
                is_first = False
            if chunk.final:
                if include_usage:
                    yield b"data: " + json.dumps(wire.render_usage_chunk(chunk.usage, model, cid)).encode() + b"\n\n"
                yield b"data: [DONE]\n\n"
                return
            chunk = await anext(rest)
    except StopAsyncIteration:
        err = wire.render_error("the upstream stream ended without its final chunk", type_="api_error")
        yield b"data: " + json.dumps(err).encode() + b"\n\n"
    except errors.CloudflareError as exc:  # mid-stream failure: an error event, never a silent [DONE]
        yield b"data: " + json.dumps(wire.render_error(str(exc), type_="api_error")).encode() + b"\n\n"


def create_proxy_app(
    settings: Settings | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    tracker: CostTracker | None = None,
    api_keys: Sequence[str] | None = None,
) -> Starlette:
    proxy = Proxy(settings, aliases, tracker, api_keys)
    app = Starlette(routes=[
        Route("/v1/chat/completions", proxy.chat, methods=["POST"]),
        Route("/v1/embeddings", proxy.embeddings, methods=["POST"]),
        Route("/v1/models", proxy.models, methods=["GET"]),
    ])
    app.state.proxy = proxy
    return app


def serve_proxy(host: str, port: int, aliases: Mapping[str, Sequence[str]] | None = None,
                api_keys: Sequence[str] | None = None) -> None:
    import uvicorn

    uvicorn.run(create_proxy_app(aliases=aliases, api_keys=api_keys), host=host, port=port, log_level="warning")


__all__ = ["Proxy", "create_proxy_app", "serve_proxy"]
