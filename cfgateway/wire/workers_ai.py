"""Workers AI native wire format (``/ai/run/{model}``; the model is in the URL, not the body).

Replies come in the Cloudflare envelope ``{"result": ..., "success": ..., "errors": [...]}``; the
``result`` is either the legacy shape (``response``, ``tool_calls``, ``usage``) or, for newer
models, an OpenAI ``chat.completion`` object — both are read here. Streams mix legacy events,
OpenAI ``chat.completion.chunk`` events and a final cumulative ``{"response": "", "usage": ...}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cfgateway.errors import MalformedResponseError
from cfgateway.types import ChatChunk, ChatRequest, ChatResponse, ToolCallChunk, Usage
from cfgateway.wire import openai as _oa
from cfgateway.wire.common import (
    load_event,
    normalise_finish,
    parse_tool_call,
    parse_usage,
    raise_for_error_event,
    select_tools,
)

if TYPE_CHECKING:
    from cfgateway.wire.sse import SSEEvent

__all__ = [
    "CLIENT_SIDE_STOP",
    "StreamParser",
    "build_chat_body",
    "build_embed_body",
    "parse_chat",
    "parse_embed",
    "parse_usage",
    "rejects_tool_choice",
    "unwrap_response_format",
]

_SAMPLING = (
    "temperature",
    "max_tokens",
    "top_p",
    "top_k",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
)
_MISTRAL = ("@cf/mistral", "@hf/mistral")
# guess: "stop" is not in the Workers AI schema, so it is never sent; the client cuts the text itself
CLIENT_SIDE_STOP = True


def rejects_tool_choice(model: str) -> bool:
    """Mistral models on Workers AI reject ``tool_choice``: pass ``omit_tool_choice=True`` for them."""
    return model.startswith(_MISTRAL)


def unwrap_response_format(rf: dict[str, Any]) -> dict[str, Any]:
    """Workers AI wants the schema bare under ``json_schema``; OpenAI's {name, schema, strict} is unwrapped."""
    if rf.get("type") != "json_schema":
        return rf
    js = rf.get("json_schema", rf.get("schema"))
    if not isinstance(js, dict):
        raise ValueError("response_format json_schema needs a JSON schema object under 'json_schema'")
    if isinstance(js.get("schema"), dict):
        return {"type": "json_schema", "json_schema": js["schema"]}
    return rf if "json_schema" in rf else {"type": "json_schema", "json_schema": js}


def build_chat_body(
    req: ChatRequest, model: str | None = None, *, stream: bool, omit_tool_choice: bool | None = None
) -> dict[str, Any]:
    """Messages-variant body. ``model`` goes in the URL, not the body; it tells the model's quirks
    (Mistral models reject ``tool_choice``: omitted for them unless ``omit_tool_choice`` says otherwise)."""
    if omit_tool_choice is None:
        omit_tool_choice = rejects_tool_choice(model or "")
    body: dict[str, Any] = {"messages": [_oa.message_to_openai(m, names=False) for m in req.messages]}
    if req.tools:
        tools, choice = req.tools, req.tool_choice
        if choice is not None and choice not in ("auto", "none", "required"):
            # a named tool: emulated the way the official provider does (only that tool + "required")
            tools, choice = select_tools(tools, choice), "required"
        body["tools"] = _oa.tools_to_openai(tools)
        if choice is not None and not omit_tool_choice:
            body["tool_choice"] = choice
    if req.response_format is not None:
        body["response_format"] = unwrap_response_format(req.response_format)
    _oa.add_sampling(body, req, _SAMPLING)
    if stream:
        body["stream"] = True
    if req.extra_body:
        body.update(req.extra_body)
    return body


def _unwrap(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise MalformedResponseError("Workers AI response is not a JSON object", body=str(payload))
    raise_for_error_event(payload)
    result = payload.get("result", payload)
    if not isinstance(result, dict):
        raise MalformedResponseError("Workers AI result is not a JSON object", body=json.dumps(payload)[:500])
    return result


def parse_chat(payload: Any) -> ChatResponse:
    result = _unwrap(payload)
    if "choices" in result:
        return _oa.parse_chat(result)
    if "response" not in result:
        raise MalformedResponseError(
            "Workers AI result has neither 'response' nor 'choices'", body=json.dumps(result)[:500]
        )
    resp = result["response"]
    tool_calls = [parse_tool_call(tc) for tc in result.get("tool_calls") or ()]
    parsed: Any = None
    if isinstance(resp, str):
        text = resp
    elif isinstance(resp, (dict, list)):  # JSON mode: the response is the object itself
        text, parsed = json.dumps(resp), resp
    elif resp is None and tool_calls:
        text = ""
    else:
        raise MalformedResponseError("Workers AI 'response' is neither text nor JSON", body=json.dumps(result)[:500])
    model = result.get("model")
    reasoning = result.get("reasoning_content") or result.get("reasoning")
    return ChatResponse(
        text=text,
        model="",
        provider="",
        tool_calls=tool_calls,
        # guess: legacy results carry no finish reason; a tool call means "tool_calls", else "stop"
        finish_reason=normalise_finish(result.get("finish_reason")) or ("tool_calls" if tool_calls else "stop"),
        usage=parse_usage(result.get("usage")),
        provider_model=model if isinstance(model, str) and model else None,
        reasoning=reasoning if isinstance(reasoning, str) and reasoning else None,
        parsed=parsed,
        id=result.get("id") if isinstance(result.get("id"), str) else None,
    )


class StreamParser(_oa.StreamParser):
    """One ``/ai/run`` stream: legacy events and/or OpenAI chunks, then ``[DONE]``.

    Usage: the cumulative legacy ``{"response": "", "usage": ...}`` event wins; without one, a
    ``choices: []`` usage-only chunk; without that, the sum of the chunks' incremental usages.
    """

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self._cumulative: Usage | None = None
        self._sum: Usage | None = None
        self._flat_index = 0

    @property
    def usage(self) -> Usage | None:
        return self._cumulative or self._total or self._sum

    def _record_usage(self, raw: Any, usage_only: bool) -> None:
        u = parse_usage(raw)
        if u is None:
            return
        if usage_only:
            self._total = u
        else:
            self._sum = u if self._sum is None else self._sum + u

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        if self.done:
            return []
        if event.is_done:
            self.done = True
            return []
        obj = load_event(event.data)
        raise_for_error_event(obj, model=self.model, in_stream=True)
        if "choices" in obj:
            chunk = self._openai_chunk(obj)
            return [chunk] if chunk is not None else []
        if "response" in obj or "tool_calls" in obj or "usage" in obj:
            chunk = self._legacy(obj)
            return [chunk] if chunk is not None else []
        if isinstance(obj.get("streamed_data"), list):  # batched legacy events (seen by langchain)
            out = [self._legacy(e) for e in obj["streamed_data"] if isinstance(e, dict)]
            return [c for c in out if c is not None]
        raise MalformedResponseError("unknown Workers AI stream event", model=self.model, body=event.data)

    def _legacy(self, obj: dict[str, Any]) -> ChatChunk | None:
        resp = obj.get("response")
        if isinstance(resp, str) or resp is None:
            text = resp or ""
        elif isinstance(resp, (dict, list)):
            text = json.dumps(resp)
        else:
            raise MalformedResponseError("stream 'response' is neither text nor JSON", model=self.model, body=str(obj))
        tools = self._flat_tool_calls(obj.get("tool_calls"))
        if "usage" in obj and obj["usage"]:
            self._cumulative = parse_usage(obj["usage"])
        if obj.get("finish_reason"):
            self.finish_reason = normalise_finish(obj["finish_reason"])
        reasoning = obj.get("reasoning_content") or obj.get("reasoning") or ""
        if not isinstance(reasoning, str):
            reasoning = ""
        if text or tools or reasoning:
            return self._chunk(text, reasoning, tools)
        return None

    def _flat_tool_calls(self, raw: Any) -> list[ToolCallChunk]:
        """Complete tool calls in a legacy event: object arguments are JSON-serialised."""
        if not raw:
            return []
        if not isinstance(raw, list):
            raise MalformedResponseError("tool_calls in a stream event is not a list", model=self.model, body=str(raw))
        out: list[ToolCallChunk] = []
        for tc in raw:
            if isinstance(tc, dict) and "function" in tc:
                out.extend(_oa.tool_call_deltas([tc]))
                continue
            call = parse_tool_call(tc)  # validates name and arguments
            out.append(ToolCallChunk(self._flat_index, call.id, call.name, json.dumps(call.arguments)))
            self._flat_index += 1
        return out


# ---------------------------------------------------------------------------------------------
# Embeddings


def build_embed_body(
    texts: list[str], model: str | None = None, *, pooling: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"text": [...], "pooling"?}`` (qwen3-embedding accepts ``text`` as an alias of documents)."""
    body: dict[str, Any] = {"text": texts}
    if pooling is not None:
        body["pooling"] = pooling
    if extra:
        body.update(extra)
    return body


def parse_embed(payload: Any, *, expected: int | None = None) -> tuple[list[list[float]], Usage | None]:
    result = _unwrap(payload)
    data = result.get("data")
    if data is None:
        data = result.get("response")  # bge-m3's contexts form answers {"response": [[...]]}
    if not isinstance(data, list) or not data or not all(isinstance(row, list) and row for row in data):
        raise MalformedResponseError("Workers AI embeddings result has no data rows", body=json.dumps(result)[:500])
    shape = result.get("shape")
    if isinstance(shape, list) and shape and shape[0] != len(data):
        raise MalformedResponseError(f"embeddings shape {shape} does not match {len(data)} rows")
    if expected is not None and len(data) != expected:
        raise MalformedResponseError(f"embeddings result has {len(data)} rows, expected {expected}")
    return data, parse_usage(result.get("usage"))
