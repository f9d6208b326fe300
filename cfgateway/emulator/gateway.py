"""AI Gateway behaviours: gateway lookup and auth, cache, ``cf-aig-*`` headers, upstream faults and
timeouts, and the Universal Endpoint (fallback over steps)."""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cfgateway.emulator.config import STREAM_ONLY_KINDS
from cfgateway.emulator.context import Ctx
from cfgateway.emulator.faults import apply_fault
from cfgateway.emulator.providers import Handler, resolve_provider
from cfgateway.emulator.reply import Reply, dumps, gateway_error

DEFAULT_KEY_TTL_S = 300.0  # cf-aig-cache-key without a TTL: cached 5 minutes


def uuid7() -> str:
    """A lowercase UUIDv7-style id (time-ordered), as gateway log ids are since 2026-10."""
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    n = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def timeout_error() -> Reply:
    # guess: the gateway's timeout body is not documented; 2005 = "failed to get response from provider"
    return gateway_error(504, 2005, "Failed to get response from provider: request timed out")


def check_gateway(ctx: Ctx, gateway_id: str, account: str) -> Reply | None:
    """Resolve the gateway into ``ctx`` and check ``cf-aig-authorization``; an error reply or None."""
    wanted = ctx.state.config.account_id
    gw = ctx.state.gateway(gateway_id) if wanted is None or wanted == account else None
    if gw is None:
        return gateway_error(400, 2001, "Gateway does not exist")  # guess: message text unknown
    ctx.gateway_id, ctx.gateway = gateway_id, gw
    if gw.auth_token is not None:
        sent = ctx.headers.get("cf-aig-authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {gw.auth_token}".encode()):
            return gateway_error(401, 2009, "Unauthorized")
    wait = ctx.state.rate_admit(gateway_id, gw, time.time())
    if wait is not None:
        limited = gateway_error(429, 2003, "Rate limited")
        # guess: the gateway's 429 says when to come back (the docs show only the status and code)
        limited.headers["retry-after"] = f"{max(wait, 0.001):.3f}"
        return limited
    return None


def _cache_plan(ctx: Ctx) -> tuple[tuple[str, ...], float] | None:
    h = ctx.headers
    if (h.get("cf-aig-skip-cache") or h.get("cf-skip-cache", "")).lower() == "true" or ctx.wants_stream:
        return None
    ttl_raw = h.get("cf-aig-cache-ttl") or h.get("cf-cache-ttl")
    key = h.get("cf-aig-cache-key")
    if ttl_raw is None and key is None:
        return None
    try:
        ttl = float(ttl_raw) if ttl_raw is not None else DEFAULT_KEY_TTL_S
    except ValueError:
        ttl = DEFAULT_KEY_TTL_S
    if ttl <= 0:
        return None
    ident = ("key", key) if key is not None else ("body", ctx.raw.decode("utf-8", "replace"))
    return (ctx.gateway_id or "", ctx.path, *ident), ttl


def gateway_headers(ctx: Ctx, reply: Reply, cache_status: str | None) -> Reply:
    log_id = uuid7()
    reply.headers["cf-aig-log-id"] = log_id
    reply.headers["cf-aig-request-id"] = log_id
    reply.headers["cf-aig-event-id"] = ctx.headers.get("cf-aig-event-id") or log_id
    if cache_status is not None:
        reply.headers["cf-aig-cache-status"] = cache_status
    return reply


async def with_gateway(ctx: Ctx, gateway_id: str, account: str, target: Callable[[Ctx], Awaitable[Reply]]) -> Reply:
    """Run ``target`` with gateway auth, cache and response headers around it."""
    denied = check_gateway(ctx, gateway_id, account)
    if denied is not None:
        return gateway_headers(ctx, denied, None)
    plan = _cache_plan(ctx)
    if plan is not None:
        hit = ctx.state.cache_get(plan[0])
        if hit is not None:
            return gateway_headers(ctx, hit.copy(), "HIT")
    reply = await target(ctx)
    if plan is not None and reply.ok and not reply.is_stream:
        ctx.state.cache_put(plan[0], reply.copy(delay_s=0.0), plan[1])
    return gateway_headers(ctx, reply, "MISS" if plan is not None else None)


def _timeout_ms(ctx: Ctx, config: Any = None) -> float | None:
    raw = config.get("requestTimeout") if isinstance(config, dict) else None
    if raw is None:
        raw = ctx.headers.get("cf-aig-request-timeout")
    try:
        return float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


async def call_upstream(ctx: Ctx, handler: Handler, vpath: str, config: Any = None) -> tuple[Reply, bool]:
    """Run a handler with faults for ``vpath`` applied; (reply, timed_out)."""
    reply = handler(ctx)
    fault = ctx.state.take_fault(vpath, stream=reply.is_stream)
    if fault is None:
        return reply, False
    timeout = _timeout_ms(ctx, config)
    if timeout is not None and fault.delay_s * 1000 > timeout:
        await asyncio.sleep(timeout / 1000)
        return timeout_error(), True
    return apply_fault(reply, fault), False


async def provider_call(ctx: Ctx, provider: str, rest: str) -> Reply:
    """A provider-native gateway path: ``/v1/{acct}/{gw}/{provider}/{rest}``."""
    target = resolve_provider(ctx, provider, rest)
    if isinstance(target, Reply):
        return target
    reply, _ = await call_upstream(ctx, target, ctx.path)
    return reply


def _steps(body: Any) -> list[Any] | None:
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list) and body:
        return body
    return None


async def _run_step(ctx: Ctx, account: str, gateway_id: str, step: Any) -> tuple[Reply, bool]:
    """(reply, answered): answered = this step's reply goes to the client (success or mid-stream fault)."""
    if (
        not isinstance(step, dict)
        or not isinstance(step.get("provider"), str)
        or not isinstance(step.get("endpoint"), str)
    ):
        return gateway_error(400, 2008, "Invalid provider"), False
    provider, endpoint = step["provider"], step["endpoint"].lstrip("/")
    headers = dict(ctx.headers)
    if isinstance(step.get("headers"), dict):
        headers.update({str(k).lower(): str(v) for k, v in step["headers"].items()})
    query = step.get("query")
    vpath = f"/v1/{account}/{gateway_id}/{provider}/{endpoint}"
    sub = ctx.sub(path=vpath, headers=headers, body=query, raw=dumps(query).encode(), json_ok=True)
    target = resolve_provider(sub, provider, endpoint)
    if isinstance(target, Reply):
        return target, False
    reply = target(sub)
    fault = ctx.state.take_fault(vpath, stream=reply.is_stream)
    if fault is None:
        return reply, reply.ok
    timeout = _timeout_ms(sub, step.get("config"))
    if timeout is not None and fault.delay_s * 1000 > timeout:
        await asyncio.sleep(timeout / 1000)
        return timeout_error(), False
    reply = apply_fault(reply, fault)
    if fault.kind in STREAM_ONLY_KINDS:
        return reply, True  # the stream had started: the gateway cannot fall back any more
    return reply, reply.ok


async def universal(ctx: Ctx, account: str, gateway_id: str) -> Reply:
    """The Universal Endpoint: try the steps in order; the first success answers with ``cf-aig-step``."""
    steps = _steps(ctx.body)
    if steps is None:
        # guess: code/text
        return gateway_error(400, 2000, ctx.body_problem("Invalid request: expected a JSON array of steps"))
    last: Reply | None = None
    for i, step in enumerate(steps):
        reply, answered = await _run_step(ctx, account, gateway_id, step)
        reply.headers["cf-aig-step"] = str(i)
        if answered:
            return reply
        if i + 1 < len(steps) and reply.delay_s > 0:
            await asyncio.sleep(reply.delay_s)  # the failing step took this long
            reply.delay_s = 0.0
        last = reply
    assert last is not None
    return last


__all__ = ["call_upstream", "check_gateway", "provider_call", "universal", "uuid7", "with_gateway"]
