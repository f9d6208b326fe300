"""Reading what is left of a finished stream, so its connection goes back to the pool — bounded in size and
in time, sync and async.

A stream whose answer is complete usually has only the chunked body's end left; reading it keeps the
connection (a new connection per stream costs more than the rest of the call; with TLS, much more). An
upstream that holds its body open after the last event must not hold the caller: the async drain gives up
after ``DRAIN_S``; the sync one caps each blocking socket read at ``DRAIN_S`` (see :class:`BodyPieces`). More
than ``DRAIN_MAX_BYTES``, a timeout or a failure: the connection is closed, as without a drain.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from cfgateway import errors

DRAIN_MAX_BYTES = 65536  # what is left of a finished stream worth reading to keep its connection
DRAIN_S = 1.0  # how long one wait for it may take


class BodyPieces(Iterator[bytes]):
    """A sync response body's pieces, with the httpcore network stream they are read from (when there is one)
    so that :func:`drain` can bound its reads."""

    def __init__(self, pieces: Iterator[bytes], network_stream: Any) -> None:
        self._pieces, self._net = pieces, network_stream

    def __iter__(self) -> BodyPieces:
        return self

    def __next__(self) -> bytes:
        return next(self._pieces)

    @contextmanager
    def reads_capped(self, seconds: float) -> Iterator[None]:
        """Each socket read waits at most ``seconds`` meanwhile (httpcore fixes a stream's read timeout when
        the body starts, so the cap wraps its network stream's ``read``; without one, nothing changes)."""
        read = getattr(self._net, "read", None)
        if read is None:
            yield
            return

        def capped(max_bytes: int, timeout: float | None = None) -> bytes:
            return bytes(read(max_bytes, seconds if timeout is None else min(timeout, seconds)))

        self._net.read = capped
        try:
            yield
        finally:
            del self._net.read  # the class's own read again


def drain(pieces: Iterator[bytes]) -> None:
    """Read what is left of a finished sync stream (bounded: see the module docstring)."""
    size = 0
    capped = pieces.reads_capped(DRAIN_S) if isinstance(pieces, BodyPieces) else nullcontext()
    try:
        with capped:
            for piece in pieces:
                size += len(piece)
                if size > DRAIN_MAX_BYTES:
                    return
    except errors.CloudflareError:
        return


async def adrain(pieces: AsyncIterator[bytes]) -> None:
    """Read what is left of a finished async stream (bounded: see the module docstring)."""
    size = 0
    try:
        async with asyncio.timeout(DRAIN_S):
            async for piece in pieces:
                size += len(piece)
                if size > DRAIN_MAX_BYTES:
                    return
    except (errors.CloudflareError, TimeoutError):
        return


__all__ = ["DRAIN_MAX_BYTES", "DRAIN_S", "BodyPieces", "adrain", "drain"]
