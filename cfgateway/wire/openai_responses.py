"""OpenAI Responses API, server side: a ChatResponse -> a ``response`` object, and ChatChunks -> the
stream's typed events (``response.created`` … ``response.output_text.delta`` … ``response.completed``).
Pure functions and a stateful-but-I/O-free event builder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from cfgateway.types import ChatChunk, ChatResponse, ToolCall, Usage
from cfgateway.wire.common import new_tool_call_id


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(12).hex()}"


def usage_json(u: Usage | None) -> dict[str, Any] | None:
    if u is None:
        return None
    return {"input_tokens": u.input_tokens, "input_tokens_details": {"cached_tokens": u.cached_tokens},
            "output_tokens": u.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u.total_tokens or u.input_tokens + u.output_tokens}


def message_item(text: str, item_id: str, status: str = "completed") -> dict[str, Any]:
    done = status == "completed"
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if done else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def reasoning_item(text: str, item_id: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "reasoning_text", "text": text}] if status == "completed" else []
    return {"type": "reasoning", "id": item_id, "summary": [], "content": content, "status": status}


def call_item(call_id: str, name: str, arguments: str, item_id: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def _call(tc: ToolCall) -> dict[str, Any]:
    return call_item(tc.id or new_tool_call_id(), tc.name, json.dumps(tc.arguments), new_id("fc"))


def output_items(resp: ChatResponse) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if resp.reasoning:
        out.append(reasoning_item(resp.reasoning, new_id("rs")))
    if resp.text or not resp.tool_calls:
        out.append(message_item(resp.text, new_id("msg")))
    out.extend(_call(tc) for tc in resp.tool_calls)
    return out


def response_object(echo: dict[str, Any], *, rid: str, created: int, status: str, output: list[dict[str, Any]],
                    usage: Usage | None, finish_reason: str | None = None) -> dict[str, Any]:
    """A ``response`` object; ``echo`` holds the request's settings shown back (model, tools, text, …)."""
    incomplete = {"reason": "max_output_tokens"} if finish_reason == "length" else None
    if incomplete and status == "completed":
        status = "incomplete"
    return {"id": rid, "object": "response", "created_at": created, "status": status, "error": None,
            "incomplete_details": incomplete, "output": output, "usage": usage_json(usage),
            "previous_response_id": None, "store": False, "truncation": "disabled", **echo}


def render_response(resp: ChatResponse, echo: dict[str, Any], rid: str, created: int) -> dict[str, Any]:
    return response_object(echo, rid=rid, created=created, status="completed", output=output_items(resp),
                           usage=resp.usage, finish_reason=resp.finish_reason)


@dataclass
class _Item:
    kind: str  # "message" | "reasoning" | "function_call"
    index: int
    id: str
    text: str = ""
    call_id: str = ""
    name: str = ""
    done: bool = False


@dataclass
class ResponseEvents:
    """Builds the typed events of one streamed response, chunk by chunk."""

    echo: dict[str, Any]
    rid: str
    created: int
    seq: int = 0
    items: list[_Item] = field(default_factory=list)
    _open: dict[str, _Item] = field(default_factory=dict)  # "message", "reasoning", "call:<index>"

    def _ev(self, type_: str, **data: Any) -> dict[str, Any]:
        ev = {"type": type_, "sequence_number": self.seq, **data}
        self.seq += 1
        return ev

    def _obj(self, status: str, usage: Usage | None = None, finish: str | None = None) -> dict[str, Any]:
        out = [self._item_json(i) for i in self.items if i.done] if status != "in_progress" else []
        return response_object(self.echo, rid=self.rid, created=self.created, status=status, output=out, usage=usage,
                               finish_reason=finish)

    def start(self) -> list[dict[str, Any]]:
        return [self._ev("response.created", response=self._obj("in_progress")),
                self._ev("response.in_progress", response=self._obj("in_progress"))]

    def _item_json(self, it: _Item, status: str = "completed") -> dict[str, Any]:
        if it.kind == "message":
            return message_item(it.text, it.id, status)
        if it.kind == "reasoning":
            return reasoning_item(it.text, it.id, status)
        return call_item(it.call_id, it.name, it.text, it.id, status)

    def _add(self, key: str, kind: str, prefix: str, **kw: Any) -> tuple[_Item, list[dict[str, Any]]]:
        it = self._open.get(key)
        if it is not None:
            return it, []
        it = self._open[key] = _Item(kind, len(self.items), new_id(prefix), **kw)
        self.items.append(it)
        evs = [self._ev("response.output_item.added", output_index=it.index, item=self._item_json(it, "in_progress"))]
        if kind != "function_call":
            part = {"type": "output_text", "text": "", "annotations": []} if kind == "message" else \
                {"type": "reasoning_text", "text": ""}
            evs.append(self._ev("response.content_part.added", item_id=it.id, output_index=it.index,
                                content_index=0, part=part))
        return it, evs

    def feed(self, chunk: ChatChunk) -> list[dict[str, Any]]:
        evs: list[dict[str, Any]] = []
        if chunk.reasoning:
            it, evs2 = self._add("reasoning", "reasoning", "rs")
            it.text += chunk.reasoning
            evs += [*evs2, self._ev("response.reasoning_text.delta", item_id=it.id, output_index=it.index,
                                    content_index=0, delta=chunk.reasoning)]
        if chunk.text:
            it, evs2 = self._add("message", "message", "msg")
            it.text += chunk.text
            evs += [*evs2, self._ev("response.output_text.delta", item_id=it.id, output_index=it.index,
                                    content_index=0, delta=chunk.text, logprobs=[])]
        for t in chunk.tool_call_chunks:
            it, evs2 = self._add(f"call:{t.index}", "function_call", "fc", call_id=t.id or new_tool_call_id(),
                                 name=t.name or "")
            it.name = it.name or t.name or ""
            evs += evs2
            if t.arguments:
                it.text += t.arguments
                evs.append(self._ev("response.function_call_arguments.delta", item_id=it.id, output_index=it.index,
                                    delta=t.arguments))
        return evs

    def _close(self, it: _Item) -> list[dict[str, Any]]:
        it.done = True
        if it.kind == "function_call":
            return [self._ev("response.function_call_arguments.done", item_id=it.id, output_index=it.index,
                             name=it.name, arguments=it.text),
                    self._ev("response.output_item.done", output_index=it.index, item=self._item_json(it))]
        if it.kind == "message":
            part = {"type": "output_text", "text": it.text, "annotations": [], "logprobs": []}
            done = self._ev("response.output_text.done", item_id=it.id, output_index=it.index, content_index=0,
                            text=it.text, logprobs=[])
        else:
            part = {"type": "reasoning_text", "text": it.text}
            done = self._ev("response.reasoning_text.done", item_id=it.id, output_index=it.index, content_index=0,
                            text=it.text)
        return [done, self._ev("response.content_part.done", item_id=it.id, output_index=it.index, content_index=0,
                               part=part),
                self._ev("response.output_item.done", output_index=it.index, item=self._item_json(it))]

    def finish(self, usage: Usage | None, finish_reason: str | None) -> list[dict[str, Any]]:
        pre = self._add("message", "message", "msg")[1] if not self.items else []
        evs = [*pre, *(e for it in self.items for e in self._close(it))]
        obj = self._obj("completed", usage, finish_reason)
        kind = "response.incomplete" if obj["status"] == "incomplete" else "response.completed"
        return [*evs, self._ev(kind, response=obj)]

    def failed(self, message: str, code: str | None) -> list[dict[str, Any]]:
        obj = self._obj("failed")
        obj["error"] = {"code": code or "server_error", "message": message}
        return [self._ev("error", code=code, message=message, param=None),
                self._ev("response.failed", response=obj)]


__all__ = ["ResponseEvents", "message_item", "new_id", "output_items", "render_response", "response_object",
           "usage_json"]
