"""Sans-IO call logic shared by the sync and async client: build, finish, stream state.

Nothing here sends bytes; :mod:`cfgateway.client` does, in a few lines per twin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any

from cfgateway import errors
from cfgateway.costs.catalog import Catalog, ModelInfo
from cfgateway.costs.ledger import UsageRecord
from cfgateway.costs.pricing import cost_of
from cfgateway.route_limits import WORKERS_AI_DEFAULT_MAX_TOKENS, check_images, checked_finish
from cfgateway.routing.routes import GatewayOptions, Route, parse_gateway_headers
from cfgateway.types import AttemptInfo, CallContext, ChatChunk, ChatRequest, ChatResponse, GatewayMeta, Usage
from cfgateway.wire import anthropic as anthropic_wire
from cfgateway.wire import openai as openai_wire
from cfgateway.wire import workers_ai as workers_ai_wire
from cfgateway.wire.common import apply_stop
from cfgateway.wire.sse import SSEDecoder

WIRES: dict[str, ModuleType] = {
    "workers-ai": workers_ai_wire,
    "openai": openai_wire,
    "anthropic": anthropic_wire,
}


@dataclass(slots=True)
class Prepared:
    route: Route
    url: str
    headers: dict[str, str]
    body: bytes
    stop: list[str] | None
    started: float = 0.0
    cap: int | None = None  # legacy Workers AI results carry no finish reason: the output cap, to infer one
    default_cap: bool = False  # that cap is the service's default (256): the caller set no max_tokens


def request_headers(
    route: Route, options: GatewayOptions | None, metadata: Mapping[str, Any] | None
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **route.headers}
    if route.via_gateway and (options is not None or metadata):
        headers.update((options or GatewayOptions()).headers(metadata))
    return headers


def prepare_chat(
    route: Route, req: ChatRequest, *, stream: bool, options: GatewayOptions | None, ctx: CallContext,
    info: ModelInfo | None = None, images_checked: bool = True,
) -> Prepared:
    if route.chat_url is None:
        raise errors.ConfigError(f"{route.model} has no chat endpoint on {route.provider}")
    if images_checked:
        check_images(route, req, info)
    wire = WIRES[route.wire]
    if route.wire == "workers-ai":
        omit = workers_ai_wire.rejects_tool_choice(route.provider_model)
        body = wire.build_chat_body(req, None, stream=stream, omit_tool_choice=omit)
        stop = req.stop  # Workers AI native has no `stop` field: cut client-side
    else:
        body = wire.build_chat_body(req, route.body_model, stream=stream)
        stop = None
    # the metadata only feeds gateway headers: not built for direct routes
    headers = request_headers(route, options, _metadata(ctx, req) if route.via_gateway else None)
    legacy = route.wire == "workers-ai" and info is not None and info.shape == "legacy"
    cap = (req.max_tokens if req.max_tokens is not None else WORKERS_AI_DEFAULT_MAX_TOKENS) if legacy else None
    return Prepared(route, route.chat_url, headers, json.dumps(body).encode(), stop, time.perf_counter(), cap,
                    legacy and req.max_tokens is None)


def _metadata(ctx: CallContext, req: ChatRequest | None = None) -> dict[str, Any]:
    meta = dict(ctx.metadata)
    if req is not None:
        meta.update(req.metadata)
    user = ctx.user or (req.user if req is not None else None)
    if user:
        meta.setdefault("user", user)
    return meta


_decode_json = json.JSONDecoder().decode


def load_json(content: bytes, model: str) -> Any:
    try:
        # fast path: plain UTF-8 (skips json.loads' encoding sniffing); anything else (a BOM, UTF-16,
        # bad JSON) takes json.loads' own path, so results and errors are the same as before
        return _decode_json(content.decode("utf-8"))
    except ValueError:
        pass
    try:
        return json.loads(content)
    except ValueError:
        raise errors.MalformedResponseError(
            f"{model}: the response body is not JSON", model=model, body=content[:500].decode("utf-8", "replace")
        ) from None


def gateway_meta(route: Route, headers: Mapping[str, str]) -> GatewayMeta:
    return parse_gateway_headers(headers) if route.via_gateway else GatewayMeta()


def make_record(
    route: Route,
    ctx: CallContext,
    *,
    operation: str,
    usage: Usage | None,
    latency: float,
    outcome: str = "ok",
    gateway: GatewayMeta | None = None,
    cost: Decimal | None = None,
    stream: bool = False,
    stream_complete: bool | None = None,
    ttft: float | None = None,
) -> UsageRecord:
    u = usage or Usage()
    return UsageRecord(
        ts=time.time(),
        model=route.model,
        provider=route.provider,
        operation=operation,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cached_tokens=u.cached_tokens,
        neurons=u.neurons,
        cost=cost,
        latency_s=latency,
        ttft_s=ttft,
        outcome=outcome,
        attempt=ctx.attempt,
        fallback=ctx.fallback,
        cache_status=gateway.cache_status if gateway else None,
        log_id=gateway.log_id if gateway else None,
        stream=stream,
        stream_complete=stream_complete,
        user=ctx.user,
        tags=dict(ctx.metadata),
        call_id=ctx.call_id,
    )


def price(route: Route, usage: Usage | None, gateway: GatewayMeta, catalog: Catalog | None) -> Decimal | None:
    if usage is None:
        return None
    return cost_of(route.model, usage, cache_hit=gateway.cache_status == "HIT", catalog=catalog)


def finish_chat(
    p: Prepared, status_headers: Mapping[str, str], content: bytes, ctx: CallContext, catalog: Catalog | None
) -> ChatResponse:
    route = p.route
    payload = load_json(content, route.model)
    resp: ChatResponse = WIRES[route.wire].parse_chat(payload)
    resp.finish_reason = checked_finish(p.cap, p.default_cap, route.model, resp.finish_reason, resp.usage)
    if p.stop and resp.text:
        resp.text, cut = apply_stop(resp.text, p.stop)
        if cut:
            resp.finish_reason = "stop"
    resp.model = route.model
    resp.provider = route.provider
    if not resp.provider_model:
        resp.provider_model = route.provider_model
    resp.gateway = gateway_meta(route, status_headers)
    resp.cost = price(route, resp.usage, resp.gateway, catalog)
    latency = time.perf_counter() - p.started
    rec = make_record(route, ctx, operation="chat", usage=resp.usage, latency=latency, gateway=resp.gateway,
                      cost=resp.cost)
    resp.records = [rec]
    resp.attempts = [AttemptInfo(route.model, "ok", None, latency)]
    return resp


def failed_record(route: Route, ctx: CallContext, exc: BaseException, started: float, operation: str) -> UsageRecord:
    return make_record(
        route, ctx, operation=operation, usage=None, latency=time.perf_counter() - started, outcome=type(exc).__name__
    )


class StreamRun:
    """The state of one streamed call: SSE decoding, wire parsing, stop sequences, the final record."""

    def __init__(self, p: Prepared, ctx: CallContext, catalog: Catalog | None) -> None:
        self.p = p
        self.ctx = ctx
        self.catalog = catalog
        self.decoder = SSEDecoder()
        self.parser = WIRES[p.route.wire].StreamParser()
        self.gateway = GatewayMeta()
        self.text = ""
        self.ttft: float | None = None
        self.first = True
        self.stopped = False  # a stop sequence ended the stream client-side
        self.record: UsageRecord | None = None
        self._stop = p.stop or []
        self._held = ""  # text held back while it could be the start of a stop sequence
        self.sse = True

    def start(self, headers: Mapping[str, str]) -> None:
        self.gateway = gateway_meta(self.p.route, headers)
        # A JSON body answering ``stream: true`` is a model that cannot stream on this route (its result
        # is empty): the client re-sends the call without streaming.
        self.sse = "json" not in headers.get("content-type", "")

    def feed(self, data: bytes) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        for event in self.decoder.feed(data):
            out.extend(self._chunks(event))
        return out

    def _chunks(self, event: Any) -> list[ChatChunk]:
        if self.stopped:
            return []
        chunks = self.parser.feed(event)
        if self._stop:
            chunks = [c for c in (self._apply_stop(c) for c in chunks) if c is not None]
        for c in chunks:
            self.text += c.text
            if self.first:
                self.first = False
                self.ttft = time.perf_counter() - self.p.started
                c.model, c.provider = self.p.route.model, self.p.route.provider
                c.provider_model, c.gateway = self.p.route.provider_model, self.gateway
        return chunks

    def _apply_stop(self, c: ChatChunk) -> ChatChunk | None:
        text = self._held + c.text
        cut, hit = apply_stop(text, self._stop)
        if hit:
            self.stopped = True
            self._held = ""
            c.text = cut
            c.finish_reason = "stop"
            return c
        keep = max(len(s) for s in self._stop) - 1
        # hold back a tail that could begin a stop sequence
        hold = 0
        for n in range(min(keep, len(text)), 0, -1):
            if any(s.startswith(text[-n:]) for s in self._stop):
                hold = n
                break
        c.text, self._held = (text[:-hold], text[-hold:]) if hold else (text, "")
        if not c.text and not c.tool_call_chunks and not c.reasoning and c.finish_reason is None:
            return None
        return c

    @property
    def done(self) -> bool:
        return self.stopped or bool(self.parser.done)

    def end(self) -> ChatChunk:
        """The final chunk (usage, cost, record); raises StreamInterrupted when the stream was cut."""
        if not self.sse:
            raise errors.StreamInterrupted(
                f"{self.p.route.model} answered a stream request with JSON, not events: it cannot stream on "
                "this route (set \"native_stream\": false in its catalog row, or call without streaming)",
                model=self.p.route.model, text="",
            )
        for event in self.decoder.flush():
            self._chunks(event)
        if self.stopped:
            final = ChatChunk(final=True, finish_reason="stop", usage=self.parser.usage)
        else:
            final = self.parser.finish()
            p = self.p
            final.finish_reason = checked_finish(p.cap, p.default_cap, p.route.model, final.finish_reason, final.usage)
            if self._held:
                final.text = self._held + final.text
                self.text += self._held
                self._held = ""
        route = self.p.route
        final.model, final.provider, final.provider_model = route.model, route.provider, route.provider_model
        final.gateway = self.gateway
        final.cost = price(route, final.usage, self.gateway, self.catalog)
        latency = time.perf_counter() - self.p.started
        self.record = make_record(
            route, self.ctx, operation="chat", usage=final.usage, latency=latency, gateway=self.gateway,
            cost=final.cost, stream=True, stream_complete=True, ttft=self.ttft,
        )
        final.records = [self.record]
        final.attempts = [AttemptInfo(route.model, "ok", None, latency)]
        return final

    def interrupted(self, exc: BaseException) -> BaseException:
        """The error to raise for a failure mid-stream, with its incomplete record."""
        latency = time.perf_counter() - self.p.started
        usage = self.parser.usage
        self.record = make_record(
            self.p.route, self.ctx, operation="chat", usage=usage, latency=latency, gateway=self.gateway,
            outcome=type(exc).__name__, stream=True, stream_complete=False, ttft=self.ttft,
        )
        if isinstance(exc, errors.StreamInterrupted):
            err = exc
        elif isinstance(exc, errors.APIError):
            return exc  # an error event inside the stream: keep its type (rate limit, capacity, ...)
        else:
            err = errors.StreamInterrupted(
                f"{self.p.route.model}: the stream broke after {len(self.text)} characters: {exc}",
                model=self.p.route.model, text=self.text, cause=exc,
            )
        err.text = err.text or self.text
        err.usage = usage
        return err


__all__ = ["WIRES", "Prepared", "StreamRun", "finish_chat", "prepare_chat"]
