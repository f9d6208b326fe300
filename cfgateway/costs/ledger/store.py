"""Budget support for a user-supplied :class:`~cfgateway.costs.ledger.base.Ledger` that is not a
:class:`~cfgateway.costs.ledger.base.BudgetStore`: reservations and alert marks kept in this process,
checked under one lock against ``ledger.spent`` (so atomic across threads, not processes)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from decimal import Decimal

from cfgateway.costs.ledger.base import Ledger, Rejection, SpendCheck, new_reservation_id, renew_in
from cfgateway.costs.ledger.record import DAY_S, ZERO, UsageRecord, filters_of


class LocalStore:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._lock = threading.RLock()
        self._reservations: dict[str, tuple[Decimal, tuple[str, ...], float]] = {}
        self._alerts: set[str] = set()

    def try_reserve(
        self, checks: Sequence[SpendCheck], amount: Decimal, scopes: tuple[str, ...], *, now: float, ttl: float
    ) -> str | Rejection:
        with self._lock:
            for k in [k for k, v in self._reservations.items() if v[2] <= now]:
                del self._reservations[k]
            for i, check in enumerate(checks):
                user, provider = filters_of(check.scope)
                spent = self.ledger.spent(since=float(check.since_day * DAY_S), user=user, provider=provider)
                reserved = sum((a for a, sc, _ in self._reservations.values() if check.scope in sc), ZERO)
                if spent + reserved + amount > check.limit:
                    return Rejection(i, spent, reserved)
            rid = new_reservation_id()
            self._reservations[rid] = (amount, scopes, now + ttl)
            return rid

    def settle(self, record: UsageRecord, reservation_id: str | None) -> None:
        with self._lock:
            self.ledger.add(record)
            if reservation_id is not None:
                self._reservations.pop(reservation_id, None)

    def release_reservation(self, reservation_id: str) -> None:
        with self._lock:
            self._reservations.pop(reservation_id, None)

    def renew_reservations(self, reservation_ids: Sequence[str], *, expires: float) -> int:
        with self._lock:
            return renew_in(self._reservations, reservation_ids, expires)

    def mark_alert(self, key: str, *, expires: float) -> bool:
        with self._lock:
            if key in self._alerts:
                return False
            self._alerts.add(key)
            return True


__all__ = ["LocalStore"]
