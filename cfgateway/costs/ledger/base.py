"""The ledger interfaces.

:class:`Ledger` is the public protocol (what a user may implement). :class:`BudgetStore` is the
extra, atomic part every shipped backend implements so budgets hold across threads, processes and
hosts: a reservation is checked against the spend aggregates and the other live reservations
and inserted in one atomic step; a record and the release of its reservation land together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from cfgateway.costs.ledger.record import UsageRecord, new_id


@runtime_checkable
class Ledger(Protocol):
    def add(self, record: UsageRecord) -> None: ...

    def records(self, *, since: float | None = None) -> list[UsageRecord]: ...

    def spent(self, *, since: float, user: str | None = None, provider: str | None = None) -> Decimal: ...

    def neurons(self, *, since: float) -> float: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SpendCheck:
    """One hard limit to hold: aggregate ``scope`` (see ``scope_key``) from UTC day ``since_day`` on."""

    scope: str
    since_day: int
    limit: Decimal


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a reservation was refused: ``checks[index]`` would be crossed."""

    index: int
    spent: Decimal
    reserved: Decimal


@runtime_checkable
class BudgetStore(Protocol):
    def try_reserve(
        self, checks: Sequence[SpendCheck], amount: Decimal, scopes: tuple[str, ...], *, now: float, ttl: float
    ) -> str | Rejection:
        """Atomically: if for every check spent + live reservations + ``amount`` <= limit, store a
        reservation (counted under ``scopes``, expiring at ``now + ttl``) and return its id."""
        ...

    def settle(self, record: UsageRecord, reservation_id: str | None) -> None:
        """Add ``record`` and drop the reservation in one atomic step."""
        ...

    def release_reservation(self, reservation_id: str) -> None: ...

    def mark_alert(self, key: str, *, expires: float) -> bool:
        """True the first time ``key`` is marked (across every process sharing the store)."""
        ...


@runtime_checkable
class LeaseStore(Protocol):
    """Optional: reservations whose lease can be extended while their call runs (every shipped backend)."""

    def renew_reservations(self, reservation_ids: Sequence[str], *, expires: float) -> int:
        """Set the expiry of those of ``reservation_ids`` still held to ``expires``; return how many."""
        ...


@runtime_checkable
class BatchStore(Protocol):
    """Optional: many settles in one round trip / transaction, in order (spool replays)."""

    def settle_many(self, items: Sequence[tuple[UsageRecord, str | None]]) -> None: ...


Held = dict[str, tuple[Decimal, tuple[str, ...], float]]  # reservation id -> (amount, scopes, expires)


def renew_in(reservations: Held, ids: Sequence[str], expires: float) -> int:
    """Renew in an in-process reservation table ``{id: (amount, scopes, expires)}``."""
    n = 0
    for rid in ids:
        held = reservations.get(rid)
        if held is not None:
            reservations[rid] = (held[0], held[1], expires)
            n += 1
    return n


def new_reservation_id() -> str:
    """Unique across processes and hosts, cheap: a per-process random prefix + a counter."""
    return "r" + new_id()


__all__ = [
    "BatchStore",
    "BudgetStore",
    "LeaseStore",
    "Ledger",
    "Rejection",
    "SpendCheck",
    "new_reservation_id",
    "renew_in",
]
