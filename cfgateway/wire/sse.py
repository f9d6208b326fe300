"""Sans-IO Server-Sent Events decoder (the ``text/event-stream`` framing only).

Feed it raw bytes as they arrive from the network; it returns complete events. It knows nothing
about the JSON carried inside ``data:`` — the wire modules read that.

Follows the WHATWG event-stream parsing rules that matter to API clients: ``\\n``, ``\\r\\n`` and
``\\r`` line endings (a ``\\r\\n`` may be split across two chunks), multi-byte UTF-8 characters split
across chunks, several ``data:`` lines joined with ``\\n``, ``:`` comment lines ignored, ``event:``
kept, ``id:``/``retry:`` ignored, one leading space after the colon removed.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent"]


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str

    @property
    def is_done(self) -> bool:
        """True for the ``data: [DONE]`` terminator used by OpenAI-style streams."""
        return self.data == "[DONE]"


class SSEDecoder:
    """Incremental decoder: ``feed(bytes) -> [SSEEvent]`` then ``flush()`` at end of input."""

    __slots__ = ("_decoder", "_tail", "_skip_lf", "_data", "_event", "_started")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""  # an incomplete line carried over to the next feed
        self._skip_lf = False  # the previous chunk ended with "\r": a leading "\n" belongs to it
        self._data: list[str] = []
        self._event: str | None = None
        self._started = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(data)
        if not text:
            return []
        return self._lines(text)

    def flush(self) -> list[SSEEvent]:
        """End of input: dispatch a last event that had no blank line after it."""
        rest = self._decoder.decode(b"", final=True)
        events = self._lines(rest) if rest else []
        if self._tail:
            line, self._tail = self._tail, ""
            ev = self._line(line)
            if ev is not None:
                events.append(ev)
        ev = self._dispatch()
        if ev is not None:
            events.append(ev)
        return events

    def _lines(self, text: str) -> list[SSEEvent]:
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        if not text:
            return []
        buf = self._tail + text if self._tail else text
        if "\r" in buf:
            if buf.endswith("\r"):  # maybe the first half of "\r\n": end the line, drop a next "\n"
                self._skip_lf = True
                buf = buf[:-1] + "\n"
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
        lines = buf.split("\n")
        self._tail = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            ev = self._line(line)
            if ev is not None:
                events.append(ev)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        # "id", "retry" and unknown fields are ignored
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = None
            return None
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        ev = SSEEvent(self._event or None, data)
        self._data = []
        self._event = None
        return ev
