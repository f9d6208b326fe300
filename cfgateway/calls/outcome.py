"""What came back (sans-IO): answers parsed, priced and turned into usage records.

:func:`finish_chat` reads a non-streamed answer for a :class:`~cfgateway.calls.plan.ChatPlan`;
:func:`make_record` is the one place a :class:`~cfgateway.costs.ledger.UsageRecord` is built.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cfgateway import errors
from cfgateway.calls.limits import checked_finish
from cfgateway.calls.plan import ChatPlan
from cfgateway.costs.catalog import Catalog
from cfgateway.costs.pricing import cost_of
from cfgateway.routing.routes import Route, parse_gateway_headers
from cfgateway.types import AttemptInfo, CallContext, ChatResponse, GatewayMeta, Usage, UsageRecord
from cfgateway.wire.common import apply_stop

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
    cache_status = gateway.cache_status if gateway else None
    # a gateway cache HIT runs no model: it uses no neurons (the answer repeats the original's usage)
    neurons = 0.0 if cache_status == "HIT" and u.neurons is not None else u.neurons
    return UsageRecord(
        ts=time.time(),
        model=route.model,
        provider=route.provider,
        operation=operation,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cached_tokens=u.cached_tokens,
        neurons=neurons,
        cost=cost,
        latency_s=latency,
        ttft_s=ttft,
        outcome=outcome,
        attempt=ctx.attempt,
        fallback=ctx.fallback,
        cache_status=cache_status,
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
    p: ChatPlan, status_headers: Mapping[str, str], content: bytes, catalog: Catalog | None
) -> ChatResponse:
    """The answer to ``p``: parsed, stop sequences applied, priced, with its record and attempt."""
    route, ctx = p.route, p.ctx
    payload = load_json(content, route.model)
    resp = p.wire.parse_chat(payload)
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


__all__ = ["failed_record", "finish_chat", "gateway_meta", "load_json", "make_record", "price"]
