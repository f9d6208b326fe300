"""In-process ledger: one lock, per-UTC-day record lists and exact Decimal aggregates."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from decimal import Decimal

from cfgateway.costs.ledger.base import Rejection, SpendCheck, new_reservation_id, renew_in
from cfgateway.costs.ledger.record import DAY_S, ZERO, UsageRecord, day_of, matches, scope_key, scopes_of, split_since
from cfgateway.costs.ledger.state import MemoryState


class MemoryLedger(MemoryState):
    """Thread-safe, exact (Decimal), lost when the process ends. The default ledger."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._days: dict[int, list[UsageRecord]] = {}
        self._spend: dict[str, dict[int, Decimal]] = {}  # scope -> UTC day -> USD
        self._neurons: dict[int, float] = {}
        self._reservations: dict[str, tuple[Decimal, tuple[str, ...], float]] = {}
        self._alerts: dict[str, float] = {}
        self._ids: set[str] = set()  # record ids already counted (a replayed record counts once)

    def __repr__(self) -> str:
        return "MemoryLedger()"

    # -- Ledger ----------------------------------------------------------------------------
    def add(self, record: UsageRecord) -> None:
        with self._lock:
            self._add(record)

    def _add(self, r: UsageRecord) -> None:
        rid = r.record_id
        if rid:
            if rid in self._ids:
                return
            self._ids.add(rid)
        day = int(r.ts // DAY_S)
        bucket = self._days.get(day)
        if bucket is None:
            bucket = self._days[day] = []
        bucket.append(r)
        cost = r.cost
        if cost:
            for scope in scopes_of(r.user, r.provider):
                per_day = self._spend.get(scope)
                if per_day is None:
                    per_day = self._spend[scope] = {}
                per_day[day] = per_day.get(day, ZERO) + cost
        if r.neurons:
            self._neurons[day] = self._neurons.get(day, 0.0) + r.neurons

    def records(self, *, since: float | None = None) -> list[UsageRecord]:
        with self._lock:
            if since is None:
                out = [r for day in sorted(self._days) for r in self._days[day]]
            else:
                first = day_of(since)
                out = [r for d in sorted(self._days) if d >= first for r in self._days[d] if r.ts >= since]
        out.sort(key=lambda r: r.ts)
        return out

    def spent(self, *, since: float, user: str | None = None, provider: str | None = None) -> Decimal:
        first, aligned = split_since(since)
        with self._lock:
            total = self._spent_days(scope_key(user, provider), first if aligned else first + 1)
            if not aligned:
                for r in self._days.get(first, ()):
                    if r.cost and r.ts >= since and matches(r, user, provider):
                        total += r.cost
        return total

    def _spent_days(self, scope: str, first_day: int) -> Decimal:
        per_day = self._spend.get(scope)
        if not per_day:
            return ZERO
        return sum((v for d, v in per_day.items() if d >= first_day), ZERO)

    def neurons(self, *, since: float) -> float:
        first, aligned = split_since(since)
        start = first if aligned else first + 1
        with self._lock:
            total = sum(v for d, v in self._neurons.items() if d >= start)
            if not aligned:
                total += sum(r.neurons or 0.0 for r in self._days.get(first, ()) if r.ts >= since)
        return float(total)

    def close(self) -> None:
        pass

    # -- BudgetStore -----------------------------------------------------------------------
    def try_reserve(
        self, checks: Sequence[SpendCheck], amount: Decimal, scopes: tuple[str, ...], *, now: float, ttl: float
    ) -> str | Rejection:
        with self._lock:
            live = self._live_reservations(now)
            for i, check in enumerate(checks):
                spent = self._spent_days(check.scope, check.since_day)
                reserved = sum((a for a, sc, _ in live if check.scope in sc), ZERO)
                if spent + reserved + amount > check.limit:
                    return Rejection(i, spent, reserved)
            rid = new_reservation_id()
            self._reservations[rid] = (amount, scopes, now + ttl)
            return rid

    def _live_reservations(self, now: float) -> list[tuple[Decimal, tuple[str, ...], float]]:
        expired = [k for k, v in self._reservations.items() if v[2] <= now]
        for k in expired:  # a reservation whose caller vanished stops counting after its ttl
            del self._reservations[k]
        return list(self._reservations.values())

    def settle(self, record: UsageRecord, reservation_id: str | None) -> None:
        with self._lock:
            self._add(record)
            if reservation_id is not None:
                self._reservations.pop(reservation_id, None)

    def settle_many(self, items: Sequence[tuple[UsageRecord, str | None]]) -> None:
        """:meth:`settle` for each ``(record, reservation id)`` in order (spool replays)."""
        with self._lock:
            for record, reservation_id in items:
                self._add(record)
                if reservation_id is not None:
                    self._reservations.pop(reservation_id, None)

    def release_reservation(self, reservation_id: str) -> None:
        with self._lock:
            self._reservations.pop(reservation_id, None)

    def renew_reservations(self, reservation_ids: Sequence[str], *, expires: float) -> int:
        """Move the expiry of the live reservations among ``reservation_ids`` to ``expires``; how many."""
        with self._lock:
            return renew_in(self._reservations, reservation_ids, expires)

    def mark_alert(self, key: str, *, expires: float) -> bool:
        with self._lock:
            if key in self._alerts:
                return False
            self._alerts[key] = expires
            return True


__all__ = ["MemoryLedger"]
