"""The proxy's state and its OpenAI endpoints: chat completions, embeddings, models.

Each handler: the tenant from the key, the body validated into its pydantic model (a 400 naming the
field otherwise), the tenant's model allow-list, the client for the name, the call, the OpenAI answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cfgateway.config import Settings, load_settings, redact_url
from cfgateway.costs.budget import Budget, CostTracker
from cfgateway.costs.ledger import open_ledger
from cfgateway.errors import ConfigError
from cfgateway.proxy.auth import KeyRing, ProxyKey
from cfgateway.proxy.chat import ChatStream, complete, open_streams
from cfgateway.proxy.clients import ClientPool, Resolved
from cfgateway.proxy.config import ProxyConfig
from cfgateway.proxy.convert import chat_call
from cfgateway.proxy.errors import map_error
from cfgateway.proxy.guard import BODY_KEY, INFO_KEY
from cfgateway.proxy.metrics import Metrics
from cfgateway.proxy.models import entry, listing
from cfgateway.proxy.schema import ChatCompletionRequest, EmbeddingRequest, error_param
from cfgateway.types import CallContext, ChatChunk, ChatResponse, EmbedResponse, new_call_id
from cfgateway.wire import openai_server as wire

log = logging.getLogger("cfgateway.proxy")
M = TypeVar("M", bound=BaseModel)


def json_response(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    try:
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:  # NaN/Infinity from upstream: not JSON a client can read
        body = json.dumps(wire.render_error("the upstream answer holds NaN or Infinity, which JSON cannot carry",
                                            type_="api_error", code="malformed_upstream_response")).encode()
        status = 502
    return Response(body, status, headers=dict(headers or {}), media_type="application/json")


def tracker_for(settings: Settings, config: ProxyConfig) -> CostTracker | None:
    """One tracker for every client: the configured ledger and each key's budgets (``None`` when neither)."""
    budgets = []
    for k in config.keys:
        if k.daily_usd is not None:
            budgets.append(Budget(limit=k.daily_usd, window="daily", scope="user", key=k.user))
        if k.monthly_usd is not None:
            budgets.append(Budget(limit=k.monthly_usd, window="monthly", scope="user", key=k.user))
    if not settings.ledger and not budgets:
        return None
    log.info("proxy ledger: %s", redact_url(settings.ledger) or "memory://")
    return CostTracker(open_ledger(settings.ledger), budgets)


class Proxy:
    """Settings, aliases, keys, one shared transport and the client cache (see :mod:`cfgateway.proxy.clients`)."""

    def __init__(self, settings: Settings | None = None, config: ProxyConfig | None = None,
                 tracker: CostTracker | None = None, *, metrics: bool = True) -> None:
        self.settings = settings or load_settings()
        self.config = config or ProxyConfig()
        self.limits = self.config.limits
        self.tracker = tracker if tracker is not None else tracker_for(self.settings, self.config)
        if self.config.shadows and self.tracker is None:
            raise ConfigError("the proxy's shadows book their comparisons in the ledger: set the ledger setting "
                              "(CFGATEWAY_LEDGER, e.g. sqlite:///costs.db or redis://...)")
        self.keys = KeyRing(self.config.keys)
        self.pool = ClientPool(self.settings, self.config.aliases, tracker=self.tracker,
                               default_provider=self.config.default_provider,
                               max_cached=self.limits.max_cached_clients,
                               endpoint=self.config.endpoint, shadows=self.config.shadows)  # type: ignore[arg-type]
        self.metrics = Metrics() if metrics else None
        self._listing: list[Any] | None = None

    # -- helpers -------------------------------------------------------------------------------
    def tenant(self, request: Request) -> ProxyKey | None:
        key = self.keys.check(request.headers.get("authorization"))
        if key is not None:
            request.scope[INFO_KEY]["user"] = key.user
        return key

    def parse(self, model: type[M], request: Request) -> M:
        try:
            body = model.model_validate_json(request.scope.get(BODY_KEY, b""))
        except ValidationError as exc:
            message, param = error_param(exc)
            raise wire.RequestError(message, param or None) from None
        if getattr(body, "model", None) == "":  # no model named: the configured default for this endpoint
            body.model = self.pool.default_for("embed" if isinstance(body, EmbeddingRequest) else "chat")  # type: ignore[attr-defined]
        return body

    def target(self, name: str, tenant: ProxyKey | None, request: Request) -> tuple[Resolved, Any]:
        if tenant is not None and not tenant.may_call(name):
            raise wire.RequestError(f"this API key may not call model {name!r}", "model", status=403,
                                    type_="permission_error", code="model_not_allowed")
        request.scope[INFO_KEY]["model"] = name
        resolved = self.pool.resolve(name)
        return resolved, self.pool.get(resolved)

    def context_for(self, tenant: ProxyKey | None, user: str | None,
                    metadata: Mapping[str, Any] | None) -> Callable[[], CallContext]:
        meta = dict(metadata or {})
        if tenant is not None and user:
            meta["end_user"] = user
        who = tenant.user if tenant is not None else user
        return lambda: CallContext(user=who, metadata=dict(meta))

    def fail(self, request: Request, exc: BaseException) -> Response:
        status, body = map_error(exc)
        kind = body["error"]["type"]
        request.scope[INFO_KEY]["error"] = kind
        if self.metrics is not None:
            self.metrics.error(request.scope.get("path", ""), kind)
        return json_response(body, status)

    def respond(self, obj: Any, model: str | None) -> Response:
        return json_response(obj, headers=_route_headers(model))

    def booked(self, answers: list[ChatResponse] | list[ChatChunk] | list[EmbedResponse]) -> None:
        if self.metrics is None:
            return
        for a in answers:
            u = a.usage
            self.metrics.usage(a.model or "unknown", u.input_tokens if u else 0, u.output_tokens if u else 0,
                               a.cost, len(a.attempts))

    # -- endpoints -----------------------------------------------------------------------------
    async def chat(self, request: Request) -> Response:
        try:
            tenant = self.tenant(request)
            body = self.parse(ChatCompletionRequest, request)
            if len(body.messages) > self.limits.max_messages:
                raise wire.RequestError(f"{len(body.messages)} messages is above this proxy's limit of "
                                        f"{self.limits.max_messages} (--max-messages)", "messages")
            _, client = self.target(body.model, tenant, request)
            call = chat_call(body, body.model, self.limits.max_n)
            ctx = self.context_for(tenant, body.user, body.metadata)
            cid = f"chatcmpl-{new_call_id()}"
            if not call.stream:
                answers = await complete(client, call, ctx)
                self.booked(answers)
                return json_response(wire.render_chat(answers, body.model, cid, int(time.time())),
                                     headers=_route_headers(answers[0].model))
            streams = await open_streams(client, call, ctx)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI-style error body
            return self.fail(request, exc)
        stream = ChatStream(streams, body.model, cid, call.include_usage, self.booked)
        return StreamingResponse(stream.body(), media_type="text/event-stream",
                                 headers={**_route_headers(streams.firsts[0].model), "cache-control": "no-cache"})

    async def embeddings(self, request: Request) -> Response:
        try:
            tenant = self.tenant(request)
            body = self.parse(EmbeddingRequest, request)
            texts = [body.input] if isinstance(body.input, str) else body.input
            if len(texts) > self.limits.max_embedding_inputs:
                raise wire.RequestError(f"{len(texts)} inputs is above this proxy's limit of "
                                        f"{self.limits.max_embedding_inputs} per request (--max-embedding-inputs); "
                                        "send them in several requests", "input")
            _, client = self.target(body.model, tenant, request)
            ctx = self.context_for(tenant, body.user, body.metadata)()
            resp = await client.aembed(texts, context=ctx, dimensions=body.dimensions)
            self.booked([resp])
            out = wire.render_embeddings(resp.vectors, body.model, resp.usage, body.encoding_format or "float")
            return json_response(out, headers=_route_headers(resp.model))
        except Exception as exc:  # noqa: BLE001
            return self.fail(request, exc)

    def _models(self, tenant: ProxyKey | None) -> list[Any]:
        if self._listing is None:
            self._listing = listing(self.pool, self.config.capabilities, None)
        if tenant is None or tenant.models is None:
            return self._listing
        return [m for m in self._listing if m["id"] in tenant.models]

    async def models(self, request: Request) -> Response:
        try:
            return json_response({"object": "list", "data": self._models(self.tenant(request))})
        except Exception as exc:  # noqa: BLE001
            return self.fail(request, exc)

    async def model(self, request: Request) -> Response:
        try:
            tenant = self.tenant(request)
            name = request.path_params["model"]
            known = name in self.pool.aliases or name in self.pool.catalog.models
            if not known and "/" not in name and not name.startswith("@") and self.pool.default_provider:
                known = f"{self.pool.default_provider}/{name}" in self.pool.catalog.models  # a bare name
            if not known or (tenant is not None and not tenant.may_call(name)):
                raise wire.RequestError(f"the model {name!r} does not exist on this proxy", "model", status=404,
                                        code="model_not_found")
            return json_response(entry(name, self.pool, self.config.capabilities))
        except Exception as exc:  # noqa: BLE001
            return self.fail(request, exc)


def _route_headers(model: str | None) -> dict[str, str]:
    return {"x-cfgateway-model": model} if model else {}


__all__ = ["Proxy", "json_response", "tracker_for"]
