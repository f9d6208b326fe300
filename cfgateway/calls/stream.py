"""The state of one streamed call (sans-IO): SSE decoding, wire parsing, stop sequences, the final chunk."""

from __future__ import annotations

import time
from collections.abc import Mapping

from cfgateway import errors
from cfgateway.calls.limits import checked_finish
from cfgateway.calls.outcome import gateway_meta, make_record, price
from cfgateway.calls.plan import ChatPlan
from cfgateway.costs.catalog import Catalog
from cfgateway.types import AttemptInfo, ChatChunk, GatewayMeta, UsageRecord
from cfgateway.wire.common import apply_stop
from cfgateway.wire.sse import SSEDecoder, SSEEvent


class StreamRun:
    """One streamed answer to a :class:`ChatPlan`: feed it bytes, get chunks; :meth:`end` gives the final chunk."""

    def __init__(self, plan: ChatPlan, catalog: Catalog | None) -> None:
        self.plan = plan
        self.catalog = catalog
        self.decoder = SSEDecoder()
        self.parser = plan.wire.StreamParser()
        self.gateway = GatewayMeta()
        self.text = ""
        self.chunks = 0  # chunks handed to the caller
        self.events = 0  # SSE events received
        self.ttft: float | None = None
        self.stopped = False  # a stop sequence ended the stream client-side
        self.record: UsageRecord | None = None
        self.sse = True
        self._stop = plan.stop or []
        self._held = ""  # text held back while it could be the start of a stop sequence

    @property
    def first(self) -> bool:
        """Nothing has reached the caller yet (a failure now may still fall back)."""
        return self.chunks == 0 and not self.text

    def start(self, headers: Mapping[str, str]) -> None:
        self.gateway = gateway_meta(self.plan.route, headers)
        # A JSON body answering ``stream: true`` is a model that cannot stream on this route (its result
        # is empty): the caller re-sends the call without streaming.
        self.sse = "json" not in headers.get("content-type", "")

    def feed(self, data: bytes) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        for event in self.decoder.feed(data):
            out.extend(self._chunks(event))
        return out

    def _chunks(self, event: SSEEvent) -> list[ChatChunk]:
        self.events += 1
        if self.stopped:
            return []
        chunks = self.parser.feed(event)
        if self._stop:
            chunks = [c for c in (self._apply_stop(c) for c in chunks) if c is not None]
        for c in chunks:
            self.text += c.text
            if self.chunks == 0:
                route = self.plan.route
                self.ttft = time.perf_counter() - self.plan.started
                c.model, c.provider, c.provider_model, c.gateway = (
                    route.model, route.provider, route.provider_model, self.gateway)
            self.chunks += 1
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
        hold = 0  # hold back a tail that could begin a stop sequence
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

    @property
    def ended(self) -> bool:
        """The upstream itself said the answer is over (not a client-side stop): what is left of its body is
        the framing's end, worth reading so the connection is reused."""
        return bool(self.parser.done) and not self.stopped

    def end(self) -> ChatChunk:
        """The final chunk (usage, cost, record); raises when the stream was cut or empty."""
        route = self.plan.route
        if not self.sse:
            raise errors.StreamInterrupted(
                f"{route.model} answered a stream request with JSON, not events: it cannot stream on this route "
                "(set \"native_stream\": false in its catalog row, or call without streaming)",
                model=route.model, text="",
            )
        for event in self.decoder.flush():
            self._chunks(event)
        if self.events == 0 and not self.done:
            # guess: a 200 stream without a single event is the upstream failing, not an empty answer
            raise errors.MalformedResponseError(f"{route.model}: the stream ended without a single event",
                                                model=route.model)
        if self.stopped:
            final = ChatChunk(final=True, finish_reason="stop", usage=self.parser.usage)
        else:
            final = self.parser.finish()
            p = self.plan
            final.finish_reason = checked_finish(p.cap, p.default_cap, route.model, final.finish_reason, final.usage)
            if self._held:
                final.text = self._held + final.text
                self.text += self._held
                self._held = ""
        final.model, final.provider, final.provider_model = route.model, route.provider, route.provider_model
        final.gateway = self.gateway
        final.cost = price(route, final.usage, self.gateway, self.catalog)
        latency = time.perf_counter() - self.plan.started
        self.record = make_record(
            route, self.plan.ctx, operation="chat", usage=final.usage, latency=latency, gateway=self.gateway,
            cost=final.cost, stream=True, stream_complete=True, ttft=self.ttft,
        )
        final.records = [self.record]
        final.attempts = [AttemptInfo(route.model, "ok", None, latency)]
        return final

    def interrupted(self, exc: BaseException) -> errors.StreamInterrupted:
        """The error to raise for a failure after the first chunk, with its incomplete record."""
        route = self.plan.route
        latency = time.perf_counter() - self.plan.started
        usage = self.parser.usage
        self.record = make_record(
            route, self.plan.ctx, operation="chat", usage=usage, latency=latency, gateway=self.gateway,
            outcome=type(exc).__name__, stream=True, stream_complete=False, ttft=self.ttft,
        )
        where = f"after {self.chunks} chunks ({len(self.text)} characters)"
        if isinstance(exc, errors.StreamInterrupted):
            err = exc
        elif isinstance(exc, errors.APIError):  # an error event inside the stream, typed by its own status/code
            err = errors.MidStreamError(f"{route.model}: the stream failed {where}: {exc}", exc, text=self.text)
        else:
            err = errors.StreamInterrupted(f"{route.model}: the stream broke {where}: {exc}", model=route.model,
                                           text=self.text, cause=exc)
        err.text = err.text or self.text
        err.usage = usage
        err.chunks = self.chunks
        return err


__all__ = ["StreamRun"]
