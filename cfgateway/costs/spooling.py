"""Between a :class:`~cfgateway.costs.budget.CostTracker` and its ledger: settle, or spool and catch up later.

:class:`LedgerLink` writes usage records; when the ledger cannot be reached (``LedgerUnavailableError``, or an
``OSError`` from a user's ledger) the record goes to the :class:`~cfgateway.costs.ledger.spool.Spool` instead,
and for ``retry_interval`` seconds the link does not try the ledger at all (callers do not each wait for a
dead server). The first ledger operation after that replays the spool, oldest first, before anything new.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cfgateway.costs.ledger.base import BatchStore, BudgetStore, Ledger
from cfgateway.costs.ledger.record import UsageRecord
from cfgateway.costs.ledger.spool import DEFAULT_MAX_BYTES, Item, Spool
from cfgateway.errors import LedgerUnavailableError

logger = logging.getLogger("cfgateway.cost")

#: What "the ledger cannot be reached" looks like: our backends raise the first; a user's ledger may raise OSError
#: (which holds the builtin ConnectionError and TimeoutError).
UNAVAILABLE: tuple[type[BaseException], ...] = (LedgerUnavailableError, OSError)
DEFAULT_RETRY_INTERVAL_S = 1.0


def root_cause(exc: BaseException) -> str:
    """``Type: message`` of what the driver said (a LedgerUnavailableError's cause), for one-line logs."""
    inner = exc.__cause__ if isinstance(exc, LedgerUnavailableError) and exc.__cause__ is not None else exc
    return f"{type(inner).__name__}: {inner}"


class LedgerLink:
    """Thread-safe. ``on_replayed`` sees the records a replay brought in (for budget alerts)."""

    def __init__(
        self,
        ledger: Ledger,
        store: BudgetStore,
        spool_dir: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retry_interval: float = DEFAULT_RETRY_INTERVAL_S,
        on_replayed: Callable[[list[UsageRecord]], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        stable = getattr(ledger, "spool_key", None)
        key = stable if isinstance(stable, str) else f"local-{type(ledger).__name__}-{id(ledger):x}"
        self.spool = Spool(Path(spool_dir), key, max_bytes=max_bytes, adopt=isinstance(stable, str))
        self.retry_interval = retry_interval
        self.on_replayed = on_replayed
        self._down_until = 0.0  # monotonic
        self._down_lock = threading.Lock()
        self._warned = False
        self.last_error: BaseException | None = None  # why the ledger was last found down
        self.spooled = 0  # records spooled since start (each is replayed later)

    # -- state ---------------------------------------------------------------------------------
    def is_down(self) -> bool:
        """The ledger failed less than ``retry_interval`` seconds ago: do not try it now."""
        return time.monotonic() < self._down_until

    def failed(self, exc: BaseException, what: str) -> None:
        with self._down_lock:
            first = not self._warned
            self._warned = True
            self._down_until = time.monotonic() + self.retry_interval
            self.last_error = exc
        if first:
            logger.warning(
                "the ledger %r cannot be reached (%s) while %s; usage records are spooled to %s and replayed "
                "when it answers", self.ledger, root_cause(exc), what, self.spool.directory,
            )  # fmt: skip

    def _recovered(self) -> None:
        if self._warned:
            with self._down_lock:
                was, self._warned = self._warned, False
            if was:
                logger.warning("the ledger %r answers again", self.ledger)

    # -- writing -------------------------------------------------------------------------------
    def settle(self, record: UsageRecord, reservation_id: str | None) -> bool:
        """Add ``record`` (and drop its reservation); spool it when the ledger is down. True when it is in the
        ledger. Never raises: a record the ledger refuses for another reason is logged (and lost)."""
        if self.is_down() or not self.catch_up():
            return self._spool(record, reservation_id)
        try:
            self.store.settle(record, reservation_id)
        except UNAVAILABLE as exc:
            self.failed(exc, "adding a usage record")
            return self._spool(record, reservation_id)
        except Exception:
            logger.exception("could not add a usage record to %r; the call itself succeeded", self.ledger)
            return False
        self._recovered()
        return True

    def _spool(self, record: UsageRecord, reservation_id: str | None) -> bool:
        if self.spool.append(record, reservation_id):
            self.spooled += 1
        else:
            logger.error("could not add a usage record to %r, nor spool it: it is lost (%s)", self.ledger,
                         record.to_dict())  # fmt: skip
        return False

    # -- catching up ---------------------------------------------------------------------------
    def catch_up(self) -> bool:
        """Replay the spool if it holds anything. False when the ledger failed (now or a moment ago)."""
        if not self.spool.pending:
            return True
        if self.is_down():
            return False
        replayed: list[UsageRecord] = []

        def settle_many(items: Sequence[Item]) -> None:
            if isinstance(self.store, BatchStore):
                self.store.settle_many(items)
            else:
                for record, reservation_id in items:
                    self.store.settle(record, reservation_id)
            replayed.extend(record for record, _ in items)

        try:
            done = self.spool.replay(settle_many)
        except UNAVAILABLE as exc:
            self.failed(exc, "replaying spooled usage records")
            return False
        except Exception:
            logger.exception("replaying the usage spool %r into %r failed", self.spool, self.ledger)
            return False
        finally:
            if replayed and self.on_replayed is not None:
                self.on_replayed(replayed)
        if done:
            logger.warning("replayed %d spooled usage record(s) into %r", done, self.ledger)
        return True

    def flush(self, timeout: float = 10.0) -> int:
        """Replay until the spool is empty or ``timeout`` passes; the number of records still waiting."""
        deadline = time.monotonic() + timeout
        while True:
            if self.catch_up() and not self.spool.pending:
                return 0
            if time.monotonic() >= deadline:
                return self.spool.count()
            time.sleep(min(0.05, max(0.0, self._down_until - time.monotonic())) or 0.05)


__all__ = ["UNAVAILABLE", "LedgerLink", "root_cause"]
