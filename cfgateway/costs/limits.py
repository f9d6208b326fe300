"""Budget definitions and what they produce: :class:`Budget`, :class:`Alert`, :class:`Reservation`.

The :class:`~cfgateway.costs.budget.CostTracker` enforces them; this module only describes them (and the
texts and alert marks they use), so both stay small.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cfgateway.costs.ledger.record import DAY_S, day_start, filters_of, month_start, next_month_start
from cfgateway.errors import ConfigError

logger = logging.getLogger("cfgateway.costs.budget")

_WINDOWS = ("daily", "monthly")
_SCOPES = ("global", "user", "provider")


def _usd(value: Any, what: str) -> Decimal:
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError:
        raise ConfigError(f"budget {what} must be a USD amount, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"budget {what} must be a non-negative USD amount, got {value!r}")
    return d


@dataclass
class Budget:
    """A spend budget. ``limit`` is a hard limit (USD; ``None`` = alerts only); ``alerts`` are
    thresholds (USD) that fire ``on_alert`` once per window. ``scope="user"``/``"provider"`` with
    ``key=None`` gives every user / provider its own budget; with a key, only that one."""

    limit: Decimal | None = None
    window: str = "daily"  # "daily" | "monthly" (UTC)
    scope: str = "global"  # "global" | "user" | "provider"
    key: str | None = None
    alerts: list[Decimal] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        if self.window not in _WINDOWS:
            raise ConfigError(f"budget window must be one of {_WINDOWS}, got {self.window!r}")
        if self.scope not in _SCOPES:
            raise ConfigError(f"budget scope must be one of {_SCOPES}, got {self.scope!r}")
        if self.scope == "global" and self.key is not None:
            raise ConfigError("a global budget takes no key (key is the user id or provider slug of a scoped one)")
        if self.limit is not None:
            self.limit = _usd(self.limit, "limit")
        self.alerts = sorted(_usd(a, "alert threshold") for a in self.alerts)
        if not self.name:
            who = {"global": "global", "user": "per-user", "provider": "per-provider"}[self.scope]
            if self.key is not None:
                who = f"{self.scope} {self.key}"
            self.name = f"{self.window} {who}"

    def scope_for(self, user: str | None, provider: str) -> str | None:
        """The aggregate key this budget counts a call under, or ``None`` when it does not apply.
        guess: user budgets do not apply to calls that carry no user."""
        if self.scope == "global":
            return "g"
        if self.scope == "user":
            if user is None or (self.key is not None and user != self.key):
                return None
            return "u:" + user
        if self.key is not None and provider != self.key:
            return None
        return "p:" + provider

    def window_bounds(self, now: float) -> tuple[float, float]:
        """``(start, end)`` of the UTC day or month holding ``now``."""
        if self.window == "daily":
            start = day_start(now)
            return start, start + DAY_S
        return month_start(now), next_month_start(now)


@dataclass(frozen=True, slots=True)
class Alert:
    """A threshold crossed: ``spent`` (USD) in the window starting at ``window_start`` reached
    ``threshold`` for ``budget`` (``key``: the user / provider of a scoped budget)."""

    budget: Budget
    threshold: Decimal
    spent: Decimal
    window_start: float
    key: str | None
    message: str
    kind: str = "threshold"  # "threshold" (spend reached it) or "limit" (the hard limit refused a call)


@dataclass(slots=True, weakref_slot=True)
class Reservation:
    """A held worst-case cost; settled by :meth:`CostTracker.record` or :meth:`CostTracker.release`.
    Held until ``lease_until``, renewed while the call runs — while this object is alive: one that was
    dropped without being settled stops being renewed and lapses (see :mod:`cfgateway.costs.leases`)."""

    id: str
    amount: Decimal
    model: str
    provider: str
    user: str | None
    created: float
    settled: bool = False
    lease_until: float = 0.0


def log_alert(alert: Alert) -> None:
    """The default ``on_alert``: a warning on the ``cfgateway.costs.budget`` logger."""
    logger.warning("%s", alert.message)


def day_text(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))




def key_text(scope: str) -> str:
    user, provider = filters_of(scope)
    if user is not None:
        return f"user {user}"
    if provider is not None:
        return f"provider {provider}"
    return "all calls"


def alert_mark(b: Budget, scope: str, start: float, threshold: Decimal) -> str:
    """The alert mark of one threshold in one window (a limit alert shares it with an alert at the limit)."""
    return f"{b.name}|{b.limit}|{scope}|{int(start)}|{threshold}"


def who(scope: str) -> str | None:
    user, provider = filters_of(scope)
    return user if user is not None else provider


__all__ = ["Alert", "Budget", "Reservation", "alert_mark", "day_text", "key_text", "log_alert", "who"]
