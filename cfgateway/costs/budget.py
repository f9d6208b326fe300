"""Budgets, reservations, alerts: the :class:`CostTracker` the client calls around every request.

Before a request: :meth:`CostTracker.reserve` holds the call's worst-case cost (from an input bound
and ``max_tokens``) against every hard limit that applies, atomically with the other callers (in the
ledger: a lock, a SQLite ``BEGIN IMMEDIATE`` transaction, or a Redis Lua script), and raises
:class:`~cfgateway.errors.BudgetExceededError` when spent + reserved + this call would cross a limit:
nothing is sent, and the limit fires its alert (once per window). After it: :meth:`CostTracker.record`
prices the record, adds it and releases the reservation in one step, then fires the alert thresholds
crossed (once per threshold per window per user/provider). Windows are UTC days and UTC months.

When the ledger cannot be reached, budget checks fail closed (:class:`~cfgateway.errors.LedgerUnavailableError`,
nothing sent) or open (``on_ledger_down="open"``); usage records are spooled to a local file and replayed
when it answers (:mod:`cfgateway.costs.spooling`). Reservations are leases, renewed while their call runs
and released at exit (:mod:`cfgateway.costs.leases`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Literal

from cfgateway.config import Settings, default_spool_dir, load_settings
from cfgateway.costs.catalog import Catalog, load_catalog
from cfgateway.costs.leases import KEEPER, default_lease
from cfgateway.costs.ledger.base import BudgetStore, LeaseStore, Ledger, Rejection, SpendCheck
from cfgateway.costs.ledger.memory import MemoryLedger
from cfgateway.costs.ledger.record import (
    DAY_S,
    ZERO,
    UsageRecord,
    day_of,
    day_start,
    filters_of,
    scopes_of,
)
from cfgateway.costs.ledger.spool import DEFAULT_MAX_BYTES
from cfgateway.costs.ledger.store import LocalStore
from cfgateway.costs.limits import Alert, Budget, Reservation, alert_mark, day_text, key_text, log_alert, who
from cfgateway.costs.pricing import cost_of, max_cost_of, neurons_of
from cfgateway.costs.spooling import UNAVAILABLE, LedgerLink, root_cause
from cfgateway.errors import BudgetExceededError, ConfigError, LedgerUnavailableError
from cfgateway.types import Usage

logger = logging.getLogger("cfgateway.costs.budget")
cost_logger = logging.getLogger("cfgateway.cost")

_MIN_HOLD = Decimal("1E-12")
LedgerDown = Literal["closed", "open"]
_DOWN_MODES = ("closed", "open")


class CostTracker:
    """Prices and records usage, enforces budgets, fires alerts. Thread-safe.

    ``catalog``: prices for reservations and for records that come without a cost (default: the catalog the
    client prices calls with, ``load_catalog(settings.catalog)`` — ``CFGATEWAY_CATALOG``). ``reservation_ttl``:
    the lease of a reservation (default: twice ``settings.timeout``, 30 s to 5 min). ``on_ledger_down``:
    ``"closed"`` (default) refuses calls with :class:`LedgerUnavailableError` while budgets cannot be checked,
    ``"open"`` sends them unchecked (``budget_fail_open`` / ``CFGATEWAY_BUDGET_FAIL_OPEN``). ``spool_dir``:
    where records wait while the ledger is down (``spool_dir`` / ``CFGATEWAY_SPOOL_DIR``, else
    :func:`~cfgateway.config.default_spool_dir`). ``settings``: read for those defaults (default: loaded).
    """

    def __init__(
        self,
        ledger: Ledger | None = None,
        budgets: Sequence[Budget] = (),
        on_alert: Callable[[Alert], None] | None = None,
        catalog: Catalog | None = None,
        clock: Callable[[], float] = time.time,
        *,
        reservation_ttl: float | None = None,
        on_ledger_down: LedgerDown | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = DEFAULT_MAX_BYTES,
        settings: Settings | None = None,
    ) -> None:
        if settings is None and None in (catalog, reservation_ttl, on_ledger_down, spool_dir):
            settings = load_settings()
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.budgets = list(budgets)
        self.on_alert = on_alert or log_alert
        self.catalog: Catalog = catalog if catalog is not None else load_catalog(settings.catalog if settings else None)
        self.clock = clock
        self.reservation_ttl = reservation_ttl or default_lease(settings.timeout if settings else 60.0)
        self.on_ledger_down: LedgerDown = on_ledger_down or ("open" if settings and settings.budget_fail_open
                                                              else "closed")  # fmt: skip
        if self.on_ledger_down not in _DOWN_MODES:
            raise ConfigError(f"on_ledger_down must be 'closed' or 'open', got {self.on_ledger_down!r}")
        led = self.ledger
        self._store: BudgetStore = led if isinstance(led, BudgetStore) else LocalStore(led)
        spool = spool_dir or (settings.spool_dir if settings else None) or default_spool_dir()
        self._link = LedgerLink(led, self._store, spool, max_bytes=spool_max_bytes, on_replayed=self._replayed)
        self._limited = [b for b in self.budgets if b.limit is not None]
        self._alerting = [b for b in self.budgets if b.alerts]
        # live reservations of this process, held weakly: a reservation its caller dropped is not renewed
        self._live: weakref.WeakValueDictionary[str, Reservation] = weakref.WeakValueDictionary()
        self._live_lock = threading.Lock()
        self._live_pid = -1
        self._open_warned = 0.0

    def __repr__(self) -> str:
        return f"CostTracker(ledger={self.ledger!r}, budgets={self.budgets!r})"

    # -- before the call -------------------------------------------------------------------
    def reserve(
        self, *, model: str, provider: str, user: str | None, input_tokens: int, max_output_tokens: int,
        catalog: Catalog | None = None,
    ) -> Reservation | None:
        """Hold the call's worst case against every hard limit that applies; raise
        :class:`BudgetExceededError` (nothing sent) when it would cross one, and
        :class:`LedgerUnavailableError` when the ledger cannot be reached (unless ``on_ledger_down="open"``).
        ``None`` when no limit applies. ``catalog``: the client's, when it differs from the tracker's.
        guess: an unpriced model reserves (almost) 0 — its cost is unknown — but is refused once priced
        spend has reached a limit."""
        if not self._limited:
            return None
        now = self.clock()
        checks: list[SpendCheck] = []
        owners: list[tuple[Budget, str, float, float]] = []
        for b in self._limited:
            scope = b.scope_for(user, provider)
            if scope is None:
                continue
            start, end = b.window_bounds(now)
            assert b.limit is not None
            checks.append(SpendCheck(scope, day_of(start), b.limit))
            owners.append((b, scope, start, end))
        if not checks:
            return None
        worst = max_cost_of(model, input_tokens, max_output_tokens, catalog=catalog or self.catalog)
        # The smallest hold (1e-12 USD) rather than 0, so a call of unknown price is refused once
        # spent + reserved has reached a limit (and a limit of 0 blocks every call).
        amount = _MIN_HOLD if worst is None or worst < _MIN_HOLD else worst
        out = self._try_reserve(checks, amount, scopes_of(user, provider), now)
        if out is None:
            return None
        if isinstance(out, Rejection):
            b, scope, start, end = owners[out.index]
            self._limit_alert(b, scope, start, end, out)
            this = "this call (unknown price)" if worst is None else f"this call's worst case ${worst}"
            raise BudgetExceededError(
                f"budget {b.name!r} ({key_text(scope)}, window from {day_text(start)} UTC): "
                f"spent ${out.spent} + reserved ${out.reserved} + {this} "
                f"would exceed the limit ${b.limit}; the request was not sent",
                budget=b.name,
                limit=b.limit,
                spent=out.spent,
            )
        res = Reservation(out, amount, model, provider, user, now, lease_until=now + self.reservation_ttl)
        self._hold(res)
        return res

    def _try_reserve(
        self, checks: list[SpendCheck], amount: Decimal, scopes: tuple[str, ...], now: float
    ) -> str | Rejection | None:
        link = self._link
        if link.is_down() or not link.catch_up():
            self._ledger_down(link.last_error)
            return None
        try:
            return self._store.try_reserve(checks, amount, scopes, now=now, ttl=self.reservation_ttl)
        except UNAVAILABLE as exc:
            link.failed(exc, "checking a budget")
            self._ledger_down(exc)
            return None

    def _ledger_down(self, exc: BaseException | None) -> None:
        """Budgets cannot be checked: refuse the call (closed: raises) or let it through unchecked (open)."""
        cause = f" ({root_cause(exc)})" if exc is not None else ""
        if self.on_ledger_down == "open":
            if time.monotonic() - self._open_warned > 60:
                self._open_warned = time.monotonic()
                logger.warning("budgets cannot be checked: the ledger %r cannot be reached%s; calls are sent "
                               "unchecked (on_ledger_down='open')", self.ledger, cause)  # fmt: skip
            return
        raise LedgerUnavailableError(
            f"budgets cannot be checked: the ledger {self.ledger!r} cannot be reached{cause}; the request was not "
            "sent. Fix the ledger, or send calls unchecked while it is down with CostTracker(on_ledger_down='open') "
            "/ budget_fail_open = true (CFGATEWAY_BUDGET_FAIL_OPEN=1)",
            ledger=repr(self.ledger),
        ) from exc

    # -- leases ----------------------------------------------------------------------------
    def _hold(self, res: Reservation) -> None:
        with self._live_lock:
            if self._live_pid != os.getpid():  # new, or forked: the parent's holds are the parent's
                self._live, self._live_pid = weakref.WeakValueDictionary(), os.getpid()
                KEEPER.watch(self)
            self._live[res.id] = res

    def _drop(self, res: Reservation) -> None:
        with self._live_lock:
            self._live.pop(res.id, None)

    def renew(self, reservation: Reservation | None) -> bool:
        """Extend ``reservation``'s lease to now + ``reservation_ttl``. The lease keeper does this for every
        live reservation of the process; call it yourself only to be independent of that thread. False when
        the reservation is settled, has lapsed, or the ledger cannot be reached (never raises)."""
        if reservation is None or reservation.settled or not isinstance(self._store, LeaseStore):
            return False
        expires = self.clock() + self.reservation_ttl
        try:
            held = self._store.renew_reservations([reservation.id], expires=expires) == 1
        except UNAVAILABLE:
            return False
        reservation.lease_until = expires
        return held

    def renew_due(self) -> None:
        """Renew the live reservations a third or more into their lease (called by the lease keeper)."""
        now = self.clock()
        with self._live_lock:
            if self._live_pid != os.getpid():
                return
            due = [r for r in self._live.values() if r.lease_until - now <= self.reservation_ttl * 2 / 3]
        if not due or not isinstance(self._store, LeaseStore) or self._link.is_down():
            return
        expires = now + self.reservation_ttl
        self._store.renew_reservations([r.id for r in due], expires=expires)
        for r in due:
            r.lease_until = expires

    def release_all(self) -> None:
        """Release every live reservation of this process (at exit). Stops at the first sign that the ledger is
        down: the holds then lapse at the end of their lease, and an exit does not wait on a dead server."""
        with self._live_lock:
            live = list(self._live.values()) if self._live_pid == os.getpid() else []
        for res in live:
            if self._link.is_down():
                return
            self.release(res)

    # -- after the call --------------------------------------------------------------------
    def record(self, record: UsageRecord, reservation: Reservation | None = None) -> UsageRecord:
        """Price ``record`` when it has no cost, add it, settle ``reservation``, fire alerts.
        Bookkeeping never fails the call: a ledger that cannot be reached gets the record later (spool)."""
        self._price(record)
        rid = None
        if reservation is not None and not reservation.settled:
            reservation.settled = True
            rid = reservation.id
            self._drop(reservation)
        if not self._link.settle(record, rid):
            KEEPER.watch(self, renew=False)  # a last try to reach the ledger at exit
            return record
        if self._alerting and record.cost:
            try:
                self._check_alerts(record)
            except Exception:
                logger.exception("could not check budget alerts in %r", self.ledger)
        return record

    @property
    def spool_dir(self) -> Path:
        """Where this tracker's unsent records wait while the ledger cannot be reached."""
        return self._link.spool.directory

    @property
    def spooled(self) -> int:
        """Usage records this tracker had to spool (the ledger could not be reached) since it was made."""
        return self._link.spooled

    def flush_spool(self, timeout: float = 10.0) -> int:
        """Replay spooled records until none is left or ``timeout`` passes; the number still waiting."""
        return self._link.flush(timeout)

    def _replayed(self, records: list[UsageRecord]) -> None:
        if not self._alerting:
            return
        last = {(r.user, r.provider): r for r in records if r.cost}
        for r in last.values():
            try:
                self._check_alerts(r)
            except Exception:
                logger.exception("could not check budget alerts in %r", self.ledger)

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
        self._drop(reservation)
        try:
            self._store.release_reservation(reservation.id)
        except UNAVAILABLE as exc:  # the hold then lapses at the end of its lease
            self._link.failed(exc, "releasing a reservation")
            logger.warning("could not release reservation %s in %r (%s); it lapses within %.0f s",
                           reservation.id, self.ledger, exc, self.reservation_ttl)  # fmt: skip
        except Exception:
            cost_logger.exception("could not release reservation %s in %r", reservation.id, self.ledger)

    # -- alerts ----------------------------------------------------------------------------
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
                if self._store.mark_alert(alert_mark(b, scope, start, threshold), expires=end + DAY_S):
                    self._fire(b, threshold, spent, start, scope)

    def _limit_alert(self, b: Budget, scope: str, start: float, end: float, out: Rejection) -> None:
        """A hard limit is also an alert: it fires when the limit first refuses a call in a window (the spend
        itself never reaches the limit when the limit stops it first)."""
        assert b.limit is not None
        try:
            if not self._store.mark_alert(alert_mark(b, scope, start, b.limit), expires=end + DAY_S):
                return
        except Exception:
            logger.exception("could not mark the limit alert of budget %r in %r", b.name, self.ledger)
            return
        message = (
            f"budget {b.name!r} ({key_text(scope)}): the ${b.limit} hard limit refused a call (spent ${out.spent} "
            f"+ reserved ${out.reserved} since {day_text(start)} UTC); calls that would cross it are refused "
            "until the window ends"
        )
        self._emit(Alert(b, b.limit, out.spent, start, who(scope), message, kind="limit"))

    def _fire(self, b: Budget, threshold: Decimal, spent: Decimal, start: float, scope: str) -> None:
        message = (
            f"budget {b.name!r} ({key_text(scope)}): spent ${spent} since {day_text(start)} UTC "
            f"crossed the ${threshold} alert" + (f" (hard limit ${b.limit})" if b.limit is not None else "")
        )
        self._emit(Alert(b, threshold, spent, start, who(scope), message))

    def _emit(self, alert: Alert) -> None:
        try:
            self.on_alert(alert)
        except Exception:
            logger.exception("on_alert hook raised for %s", alert.message)

    # -- Workers AI free allocation ----------------------------------------------------------
    def neurons_today(self) -> float:
        """Neurons used since 00:00 UTC today (Workers AI's free allocation resets then)."""
        return self.ledger.neurons(since=day_start(self.clock()))

    def free_neurons_left(self) -> float:
        return max(0.0, self.catalog.free_neurons_per_day - self.neurons_today())


__all__ = ["Alert", "Budget", "CostTracker", "Reservation", "log_alert"]
