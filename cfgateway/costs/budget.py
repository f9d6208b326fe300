"""Budgets, reservations, alerts: the :class:`CostTracker` the client calls around every request.

Before a request: :meth:`CostTracker.reserve` holds the call's worst-case cost (from its input
estimate and ``max_tokens``) against every hard limit that applies, atomically with the other
callers (in the ledger: a lock, a SQLite ``BEGIN IMMEDIATE`` transaction, or a Redis Lua script),
and raises :class:`~cfgateway.errors.BudgetExceededError` when spent + reserved + this call would
cross a limit: nothing is sent. After it: :meth:`CostTracker.record` prices the record, adds it
and releases the reservation in one step, then fires the alert thresholds crossed (once per
threshold per window per user/provider). Windows are UTC days and UTC months.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cfgateway.costs.catalog import Catalog, default_catalog
from cfgateway.costs.ledger.base import BudgetStore, Ledger, Rejection, SpendCheck
from cfgateway.costs.ledger.memory import MemoryLedger
from cfgateway.costs.ledger.record import (
    DAY_S,
    ZERO,
    UsageRecord,
    day_of,
    day_start,
    filters_of,
    month_start,
    next_month_start,
    scopes_of,
)
from cfgateway.costs.ledger.store import LocalStore
from cfgateway.costs.pricing import cost_of, max_cost_of, neurons_of
from cfgateway.errors import BudgetExceededError, ConfigError
from cfgateway.types import Usage

logger = logging.getLogger("cfgateway.costs.budget")
cost_logger = logging.getLogger("cfgateway.cost")

_WINDOWS = ("daily", "monthly")
_MIN_HOLD = Decimal("1E-12")
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


@dataclass(slots=True)
class Reservation:
    """A held worst-case cost; settled by :meth:`CostTracker.record` or :meth:`CostTracker.release`."""

    id: str
    amount: Decimal
    model: str
    provider: str
    user: str | None
    created: float
    settled: bool = False


def log_alert(alert: Alert) -> None:
    """The default ``on_alert``: a warning on the ``cfgateway.costs.budget`` logger."""
    logger.warning("%s", alert.message)


def _day_text(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class CostTracker:
    """Prices and records usage, enforces budgets, fires alerts. Thread-safe."""

    def __init__(
        self,
        ledger: Ledger | None = None,
        budgets: Sequence[Budget] = (),
        on_alert: Callable[[Alert], None] | None = None,
        catalog: Catalog | None = None,
        clock: Callable[[], float] = time.time,
        *,
        reservation_ttl: float = 3600.0,
    ) -> None:
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.budgets = list(budgets)
        self.on_alert = on_alert or log_alert
        self.catalog = catalog
        self.clock = clock
        # guess: a reservation whose caller died stops counting after this many seconds
        self.reservation_ttl = reservation_ttl
        led = self.ledger
        self._store: BudgetStore = led if isinstance(led, BudgetStore) else LocalStore(led)
        self._native = self._store is led
        self._limited = [b for b in self.budgets if b.limit is not None]
        self._alerting = [b for b in self.budgets if b.alerts]

    def __repr__(self) -> str:
        return f"CostTracker(ledger={self.ledger!r}, budgets={self.budgets!r})"

    # -- before the call -------------------------------------------------------------------
    def reserve(
        self, *, model: str, provider: str, user: str | None, input_tokens: int, max_output_tokens: int
    ) -> Reservation | None:
        """Hold the call's worst case against every hard limit that applies; raise
        :class:`BudgetExceededError` (nothing sent) when it would cross one. ``None`` when no limit
        applies. guess: an unpriced model reserves (almost) 0 — its cost is unknown — but is
        refused once priced spend has reached a limit."""
        if not self._limited:
            return None
        now = self.clock()
        checks: list[SpendCheck] = []
        owners: list[tuple[Budget, str, float]] = []
        for b in self._limited:
            scope = b.scope_for(user, provider)
            if scope is None:
                continue
            start, _ = b.window_bounds(now)
            assert b.limit is not None
            checks.append(SpendCheck(scope, day_of(start), b.limit))
            owners.append((b, scope, start))
        if not checks:
            return None
        worst = max_cost_of(model, input_tokens, max_output_tokens, catalog=self.catalog)
        # The smallest hold (1e-12 USD) rather than 0, so a call of unknown price is refused once
        # spent + reserved has reached a limit (and a limit of 0 blocks every call).
        amount = _MIN_HOLD if worst is None or worst < _MIN_HOLD else worst
        out = self._store.try_reserve(checks, amount, scopes_of(user, provider), now=now, ttl=self.reservation_ttl)
        if isinstance(out, Rejection):
            b, scope, start = owners[out.index]
            this = "this call (unknown price)" if worst is None else f"this call's worst case ${worst}"
            raise BudgetExceededError(
                f"budget {b.name!r} ({_key_text(scope)}, window from {_day_text(start)} UTC): "
                f"spent ${out.spent} + reserved ${out.reserved} + {this} "
                f"would exceed the limit ${b.limit}; the request was not sent",
                budget=b.name,
                limit=b.limit,
                spent=out.spent,
            )
        return Reservation(out, amount, model, provider, user, now)

    # -- after the call --------------------------------------------------------------------
    def record(self, record: UsageRecord, reservation: Reservation | None = None) -> UsageRecord:
        """Price ``record`` when it has no cost, add it, settle ``reservation``, fire alerts.
        Bookkeeping never fails the call: a ledger error is logged on ``cfgateway.cost``."""
        self._price(record)
        rid = None
        if reservation is not None and not reservation.settled:
            reservation.settled = True
            rid = reservation.id
        try:
            if rid is None and self._native:
                self.ledger.add(record)
            else:
                self._store.settle(record, rid)
        except Exception:
            cost_logger.exception("could not add a usage record to %r; the call itself succeeded", self.ledger)
            return record
        if self._alerting and record.cost:
            try:
                self._check_alerts(record)
            except Exception:
                logger.exception("could not check budget alerts in %r", self.ledger)
        return record

    def _price(self, r: UsageRecord) -> None:
        # Priced: successful calls, and failed ones that report tokens (an interrupted stream is
        # billed for what it produced). A failed call with no usage keeps cost None (unknown).
        used = r.input_tokens or r.output_tokens
        if r.cost is None and (r.outcome == "ok" or used):
            if (r.cache_status or "").upper() == "HIT":
                r.cost = ZERO
            else:
                u = Usage(r.input_tokens, r.output_tokens, r.input_tokens + r.output_tokens, r.cached_tokens)
                r.cost = cost_of(r.model, u, catalog=self.catalog)
        if r.neurons is None and used and (r.cache_status or "").upper() != "HIT":
            r.neurons = neurons_of(r.model, Usage(r.input_tokens, r.output_tokens), catalog=self.catalog)

    def release(self, reservation: Reservation | None) -> None:
        """Drop a reservation whose call failed before producing any record."""
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        try:
            self._store.release_reservation(reservation.id)
        except Exception:  # the hold then lapses after reservation_ttl
            cost_logger.exception("could not release reservation %s in %r", reservation.id, self.ledger)

    def _check_alerts(self, record: UsageRecord) -> None:
        now = self.clock()
        for b in self._alerting:
            scope = b.scope_for(record.user, record.provider)
            if scope is None:
                continue
            start, end = b.window_bounds(now)
            user, provider = filters_of(scope)
            spent = self.ledger.spent(since=start, user=user, provider=provider)
            for threshold in b.alerts:
                if spent < threshold:
                    break
                mark = f"{b.name}|{b.limit}|{scope}|{int(start)}|{threshold}"
                if self._store.mark_alert(mark, expires=end + DAY_S):
                    self._fire(b, threshold, spent, start, scope)

    def _fire(self, b: Budget, threshold: Decimal, spent: Decimal, start: float, scope: str) -> None:
        user, provider = filters_of(scope)
        message = (
            f"budget {b.name!r} ({_key_text(scope)}): spent ${spent} since {_day_text(start)} UTC "
            f"crossed the ${threshold} alert" + (f" (hard limit ${b.limit})" if b.limit is not None else "")
        )
        alert = Alert(b, threshold, spent, start, user if user is not None else provider, message)
        try:
            self.on_alert(alert)
        except Exception:
            logger.exception("on_alert hook raised for %s", message)

    # -- Workers AI free allocation ----------------------------------------------------------
    def neurons_today(self) -> float:
        """Neurons used since 00:00 UTC today (Workers AI's free allocation resets then)."""
        return self.ledger.neurons(since=day_start(self.clock()))

    def free_neurons_left(self) -> float:
        free = (self.catalog or default_catalog()).free_neurons_per_day
        return max(0.0, free - self.neurons_today())


def _key_text(scope: str) -> str:
    user, provider = filters_of(scope)
    if user is not None:
        return f"user {user}"
    if provider is not None:
        return f"provider {provider}"
    return "all calls"


__all__ = ["Alert", "Budget", "CostTracker", "Reservation", "log_alert"]
