"""The one function set every wire format module provides (checked by mypy: see ``WIRES`` below).

A wire module says *what the bytes look like* for one format; a route (``cfgateway.routing.routes``)
says where to send them and how to authenticate. Each module is a set of pure functions:

- ``build_chat_body(req, model, *, stream)`` -> the JSON body as a dict (``model``: the route's model
  field; Workers AI's native format puts it in the URL and uses it only to know the model's quirks);
- ``parse_chat(payload)``, ``parse_usage(d)``;
- ``StreamParser(model)`` -> a parser fed one SSE event at a time (``feed``), with ``usage``, ``done``
  and ``finish()`` (the final chunk, or ``StreamInterrupted`` when the terminator never came);
- ``build_embed_body(texts, model, *, pooling, extra)``, ``parse_embed(payload, *, expected)``
  (a format without embeddings raises ``ConfigError``);
- ``CLIENT_SIDE_STOP``: the format has no stop-sequence field, so the client cuts the text itself.

Unknown content raises; it is never dropped silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from cfgateway.types import ChatChunk, ChatRequest, ChatResponse, Usage

if TYPE_CHECKING:
    from cfgateway.wire.sse import SSEEvent


class StreamParser(Protocol):
    done: bool

    def feed(self, event: SSEEvent) -> list[ChatChunk]: ...

    @property
    def usage(self) -> Usage | None: ...

    def finish(self) -> ChatChunk: ...


class Wire(Protocol):
    CLIENT_SIDE_STOP: bool

    def build_chat_body(self, req: ChatRequest, model: str | None, *, stream: bool) -> dict[str, Any]: ...

    def parse_chat(self, payload: Any) -> ChatResponse: ...

    def parse_usage(self, d: Any) -> Usage | None: ...

    def StreamParser(self, model: str | None = None) -> StreamParser: ...  # noqa: N802 - the class in each module

    def build_embed_body(
        self, texts: list[str], model: str | None, *, pooling: str | None = None, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...

    def parse_embed(self, payload: Any, *, expected: int | None = None) -> tuple[list[list[float]], Usage | None]: ...


__all__ = ["StreamParser", "Wire"]
