"""``POST /v1/responses``: the Responses API over any chat route (text, images, function tools, streaming events).

The request is translated to a chat call (instructions -> a system message, ``function_call`` items ->
an assistant message's tool calls, ``function_call_output`` -> tool messages); the answer back to output
items. Nothing is stored: ``previous_response_id``, ``background`` and ``include`` are refused by name.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cfgateway import errors
from cfgateway.proxy.chat import dumps
from cfgateway.proxy.errors import map_error
from cfgateway.proxy.schema_responses import FunctionCallItem, FunctionOutputItem, InputPart, ResponsesRequest
from cfgateway.types import ChatChunk, ChatRequest, Message, ToolCall, ToolSpec
from cfgateway.wire import openai_responses as rwire
from cfgateway.wire.openai_server import RequestError

if TYPE_CHECKING:
    from cfgateway.proxy.app import Proxy


def refuse_stored(body: ResponsesRequest) -> None:
    if body.previous_response_id:
        raise RequestError("this proxy does not store responses, so previous_response_id cannot be resolved: send "
                           "the whole conversation in input (earlier output items included)", "previous_response_id",
                           code="previous_response_not_found")
    if body.background:
        raise RequestError("background responses are not served by this proxy; leave background unset", "background")
    if body.include:
        raise RequestError(f"include {body.include!r} is not served by this proxy; leave include unset", "include")


def _parts(content: str | list[InputPart]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    out: list[dict[str, Any]] = []
    for p in content:
        if p.type == "input_image":
            out.append({"type": "image_url", "image_url": {"url": p.image_url}})
        else:
            out.append({"type": "text", "text": p.text if p.text is not None else p.refusal or ""})
    return out


def to_messages(body: ResponsesRequest) -> list[Message]:
    msgs: list[Message] = [Message("system", body.instructions)] if body.instructions else []
    if isinstance(body.input, str):
        return [*msgs, Message("user", body.input)]
    for item in body.input:
        if isinstance(item, FunctionCallItem):
            call = ToolCall(item.name, json.loads(item.arguments or "{}"), item.call_id)
            last = msgs[-1] if msgs else None
            if last is not None and last.role == "assistant" and last.tool_calls and not last.text():
                last.tool_calls.append(call)
            else:
                msgs.append(Message("assistant", None, [call]))
        elif isinstance(item, FunctionOutputItem):
            msgs.append(Message("tool", item.output, tool_call_id=item.call_id))
        else:
            role = "system" if item.role == "developer" else item.role
            msgs.append(Message(role, _parts(item.content)))
    return msgs


def _format(body: ResponsesRequest) -> dict[str, Any] | None:
    fmt = body.text.format if body.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": fmt.schema_, "strict": bool(fmt.strict)}}


def to_chat(body: ResponsesRequest) -> ChatRequest:
    refuse_stored(body)
    tc = body.tool_choice
    extra: dict[str, Any] = {}
    if body.reasoning and body.reasoning.effort:
        extra["reasoning_effort"] = body.reasoning.effort
    return ChatRequest(
        to_messages(body),
        tools=[ToolSpec(t.name, t.description or "", t.parameters or {"type": "object", "properties": {}})
               for t in body.tools or []],
        tool_choice=tc if isinstance(tc, str) or tc is None else tc.name, response_format=_format(body),
        temperature=body.temperature, top_p=body.top_p, max_tokens=body.max_output_tokens, extra_body=extra,
        user=body.user, metadata=dict(body.metadata or {}),
    )


def echo(body: ResponsesRequest) -> dict[str, Any]:
    """The request settings a ``response`` object shows back."""
    fmt = body.text.format.model_dump(by_alias=True, exclude_none=True) if body.text and body.text.format else \
        {"type": "text"}
    return {"model": body.model, "instructions": body.instructions, "max_output_tokens": body.max_output_tokens,
            "parallel_tool_calls": body.parallel_tool_calls if body.parallel_tool_calls is not None else True,
            "temperature": body.temperature, "top_p": body.top_p, "tool_choice": body.tool_choice or "auto",
            "tools": [t.model_dump(exclude_none=True) for t in body.tools or []], "text": {"format": fmt},
            "reasoning": body.reasoning.model_dump() if body.reasoning else {"effort": None, "summary": None},
            "metadata": dict(body.metadata or {}), "user": body.user}


def _sse(ev: dict[str, Any]) -> bytes:
    return b"event: " + ev["type"].encode() + b"\ndata: " + dumps(ev) + b"\n\n"


async def _events(first: ChatChunk, gen: AsyncIterator[ChatChunk], builder: rwire.ResponseEvents,
                  proxy: Proxy) -> AsyncIterator[bytes]:
    chunk = first
    try:
        for ev in builder.start():
            yield _sse(ev)
        while True:
            for ev in builder.feed(chunk):
                yield _sse(ev)
            if chunk.final:
                for ev in builder.finish(chunk.usage, chunk.finish_reason):
                    yield _sse(ev)
                proxy.booked([chunk])
                return
            try:
                chunk = await anext(gen)
            except StopAsyncIteration:
                raise errors.StreamInterrupted("the upstream stream ended without its final chunk") from None
    except errors.CloudflareError as exc:
        _, err = map_error(exc)
        for ev in builder.failed(err["error"]["message"], err["error"]["code"]):
            yield _sse(ev)
    finally:
        await gen.aclose()  # type: ignore[attr-defined]


async def responses(proxy: Proxy, request: Request) -> Response:
    try:
        tenant = proxy.tenant(request)
        body = proxy.parse(ResponsesRequest, request)
        req = to_chat(body)
        if len(req.messages) > proxy.limits.max_messages:
            raise RequestError(f"{len(req.messages)} input items is above this proxy's limit of "
                               f"{proxy.limits.max_messages}", "input")
        _, client = proxy.target(body.model, tenant, request)
        ctx = proxy.context_for(tenant, body.user, body.metadata)()
        rid, created = rwire.new_id("resp"), int(time.time())
        if not body.stream:
            resp = await client.achat(req, context=ctx)
            proxy.booked([resp])
            return proxy.respond(rwire.render_response(resp, echo(body), rid, created), resp.model)
        gen = client.astream(req, context=ctx)
        try:
            first = await anext(gen)
        except BaseException:
            await gen.aclose()  # type: ignore[attr-defined]
            raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI-style error body
        return proxy.fail(request, exc)
    builder = rwire.ResponseEvents(echo(body), rid, created)
    return StreamingResponse(_events(first, gen, builder, proxy), media_type="text/event-stream",
                             headers={"x-cfgateway-model": first.model or body.model, "cache-control": "no-cache"})


__all__ = ["responses", "to_chat", "to_messages"]
