"""Client-side rate limits as the transport sees them: each attempt waits for its route's turn, never past
the call's deadline (:mod:`cfgateway.routing.ratelimit` keeps the limits)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from cfgateway import errors


class Pacer(Protocol):
    """One route's rate limit: ``delay`` takes a slot (0) or says how long to wait; ``pause`` after a 429."""

    def delay(self, tokens: int = 0, now: float | None = None) -> float: ...

    def pause(self, seconds: float) -> None: ...


def turn_error(wait: float, model: str | None) -> errors.RateLimitError:
    return errors.RateLimitError(
        f"client-side rate limit: the next slot is in {wait:.2f}s, past this call's deadline", status=429,
        model=model, retry_after=wait,
    )


def sleep_turn(pace: Pacer, tokens: int, end: float, model: str | None) -> None:
    """Wait for the route's next slot (taking it), or raise ``RateLimitError`` when it is past ``end``."""
    while (wait := pace.delay(tokens)) > 0:
        if time.monotonic() + wait >= end:
            raise turn_error(wait, model)
        time.sleep(wait)


async def asleep_turn(pace: Pacer, tokens: int, end: float, model: str | None) -> None:
    while (wait := pace.delay(tokens)) > 0:
        if time.monotonic() + wait >= end:
            raise turn_error(wait, model)
        await asyncio.sleep(wait)


__all__ = ["Pacer", "asleep_turn", "sleep_turn", "turn_error"]
