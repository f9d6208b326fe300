"""The usage record (one per attempt) and the small helpers every ledger backend shares."""

from __future__ import annotations

import time
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

# UsageRecord is a value type every layer passes around: it lives in cfgateway.types (layer 1)
from cfgateway.types import UsageRecord, new_id

DAY_S = 86400
ZERO = Decimal(0)
# guess: SQLite and Redis aggregate spend as integers of 1e-12 USD ("pico-USD"). Exact for any
# price with <= 6 decimals per million tokens (every published price has <= 3); records keep the
# exact Decimal. Max per (scope, UTC day) is ~$9.2M (int64).
UNIT_EXP = 12
_UNIT = Decimal(10) ** UNIT_EXP
_ONE = Decimal(1)


def day_of(ts: float) -> int:
    """UTC day number (days since the epoch)."""
    return int(ts // DAY_S)


def day_start(ts: float) -> float:
    return float(day_of(ts) * DAY_S)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm; no imports)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def month_start(ts: float) -> float:
    t = time.gmtime(ts)
    return float(_days_from_civil(t.tm_year, t.tm_mon, 1) * DAY_S)


def next_month_start(ts: float) -> float:
    t = time.gmtime(ts)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return float(_days_from_civil(year, month, 1) * DAY_S)


def scopes_of(user: str | None, provider: str) -> tuple[str, ...]:
    """Aggregate keys a record with this user and provider adds to."""
    if user is None:
        return ("g", "p:" + provider)
    return ("g", "p:" + provider, "u:" + user, "up:" + user + "\x1f" + provider)


def scope_key(user: str | None = None, provider: str | None = None) -> str:
    """The aggregate key for a ``spent(user=, provider=)`` filter (``None`` = any)."""
    if user is not None and provider is not None:
        return "up:" + user + "\x1f" + provider
    if user is not None:
        return "u:" + user
    if provider is not None:
        return "p:" + provider
    return "g"


def filters_of(scope: str) -> tuple[str | None, str | None]:
    """The ``(user, provider)`` filter an aggregate key stands for (inverse of ``scope_key``)."""
    if scope.startswith("up:"):
        user, _, provider = scope[3:].partition("\x1f")
        return user, provider
    if scope.startswith("u:"):
        return scope[2:], None
    if scope.startswith("p:"):
        return None, scope[2:]
    return None, None


def matches(record: UsageRecord, user: str | None, provider: str | None) -> bool:
    return (user is None or record.user == user) and (provider is None or record.provider == provider)


def split_since(since: float) -> tuple[int, bool]:
    """``(first UTC day, whether since is that day's midnight)`` for day-aggregate queries."""
    day = day_of(since)
    return day, since <= day * DAY_S


def to_units(value: Decimal, *, rounding: str = "even") -> int:
    """Decimal USD -> integer pico-USD. ``rounding``: "even", "up" (reservations), "down" (limits)."""
    mode = {"even": ROUND_HALF_EVEN, "up": ROUND_CEILING, "down": ROUND_FLOOR}[rounding]
    return int((value * _UNIT).to_integral_value(rounding=mode))


def from_units(units: int) -> Decimal:
    """Integer pico-USD -> Decimal USD without trailing zeros or exponent (``0.00975``, ``100``)."""
    d = Decimal(units).scaleb(-UNIT_EXP).normalize()
    return d.quantize(_ONE) if d.as_tuple().exponent > 0 else d  # type: ignore[operator]


__all__ = [
    "DAY_S",
    "UsageRecord",
    "day_of",
    "day_start",
    "filters_of",
    "from_units",
    "new_id",
    "month_start",
    "next_month_start",
    "scope_key",
    "scopes_of",
    "split_since",
    "to_units",
]
