"""Stream helpers shared by the wire tests (importable because pytest's ``pythonpath`` holds tests/core)."""

from __future__ import annotations

import json
from typing import Any, Protocol

from cfgateway.types import ChatChunk
from cfgateway.wire.sse import SSEDecoder


class Parser(Protocol):
    def feed(self, event: Any) -> list[ChatChunk]: ...


def feed_all(parser: Parser, body: bytes, cut: int | None = None) -> list[ChatChunk]:
    """Decode ``body`` as SSE (split in two at ``cut`` when given) and feed every event to ``parser``."""
    dec = SSEDecoder()
    out: list[ChatChunk] = []
    pieces = [body] if cut is None else [body[:cut], body[cut:]]
    for piece in pieces:
        for ev in dec.feed(piece):
            out.extend(parser.feed(ev))
    for ev in dec.flush():
        out.extend(parser.feed(ev))
    return out


def sse(*objs: Any) -> bytes:
    """``data:`` events from JSON objects (or raw bytes)."""
    return b"".join(b"data: " + (o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n\n" for o in objs)
