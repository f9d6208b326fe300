"""The ledger interfaces.

:class:`Ledger` is the public protocol (what a user may implement). :class:`BudgetStore` is the
extra, atomic part every shipped backend implements so budgets hold across threads, processes and
hosts: a reservation is checked against the spend aggregates and the other live reservations
and inserted in one atomic step; a record and the release of its reservation land together.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from cfgateway.costs.ledger.record import UsageRecord


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


_counter = itertools.count()
_prefix: tuple[int, str] = (0, "")


def new_reservation_id() -> str:
    """Unique across processes and hosts, cheap: a per-process random prefix + a counter."""
    global _prefix
    pid = os.getpid()
    if _prefix[0] != pid:  # new process (including after fork)
        _prefix = (pid, os.urandom(8).hex())
    return f"{_prefix[1]}-{next(_counter)}"


__all__ = ["BudgetStore", "Ledger", "Rejection", "SpendCheck", "new_reservation_id"]
