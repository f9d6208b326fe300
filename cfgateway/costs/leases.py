"""Reservation leases: short, renewed while their call runs, released when the process exits.

A reservation holds budget until ``now + lease`` (default: twice the call timeout, between 30 s and 5 min).
One daemon thread per process renews the live reservations of every :class:`~cfgateway.costs.budget.CostTracker`
once a third of their lease has passed, so a long stream keeps its hold; a process killed with ``kill -9``
stops renewing and its holds lapse within one lease. On a normal exit (``atexit``) the live reservations are
released at once and the spool gets a last, short chance to reach the ledger.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import Any, Protocol

logger = logging.getLogger("cfgateway.cost")

MIN_LEASE_S = 30.0
MAX_LEASE_S = 300.0
EXIT_FLUSH_S = 1.0


def default_lease(call_timeout: float) -> float:
    """Twice the call timeout, kept between 30 s and 5 minutes."""
    return min(MAX_LEASE_S, max(MIN_LEASE_S, 2.0 * call_timeout))


class Leased(Protocol):
    """What the keeper needs of a tracker."""

    reservation_ttl: float

    @property
    def spool_dir(self) -> Any: ...

    def renew_due(self) -> None: ...

    def release_all(self) -> None: ...

    def flush_spool(self, timeout: float = ...) -> int: ...


class LeaseKeeper:
    """The per-process renewal thread (started on the first reservation, again after a fork)."""

    def __init__(self) -> None:
        self._trackers: weakref.WeakSet[Leased] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._atexit = False

    def watch(self, tracker: Leased, *, renew: bool = True) -> None:
        """Renew ``tracker``'s reservations (``renew=False``: only release and flush it at exit)."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread and trackers are not ours
                self._trackers = weakref.WeakSet()
                self._thread, self._pid, self._atexit = None, os.getpid(), False
            self._trackers.add(tracker)
            if renew and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name="cfgateway-leases", daemon=True)
                self._thread.start()
            if not self._atexit:
                atexit.register(self.at_exit)
                self._atexit = True
        self._wake.set()  # a shorter lease may need an earlier tick

    def _interval(self) -> float:
        with self._lock:
            leases = [t.reservation_ttl for t in list(self._trackers)]
        return min(30.0, max(0.02, min(leases, default=MAX_LEASE_S) / 6))

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval())
            self._wake.clear()
            with self._lock:
                trackers = list(self._trackers)
            for tracker in trackers:
                try:
                    tracker.renew_due()
                except Exception:  # the next tick tries again; the hold lapses only after a whole lease
                    logger.debug("renewing reservations failed", exc_info=True)

    def at_exit(self) -> None:
        """Release every live reservation of this process; give spooled records a last try."""
        if self._pid != os.getpid():
            return
        with self._lock:
            trackers = list(self._trackers)
        deadline = time.monotonic() + EXIT_FLUSH_S  # for every tracker together: an exit never hangs long
        for tracker in trackers:
            try:
                tracker.release_all()
                left = tracker.flush_spool(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            except Exception:
                logger.debug("releasing reservations at exit failed", exc_info=True)
                continue
            if left:
                logger.error("%d usage record(s) could not reach the ledger of %r before exit; they stay in %s "
                             "(a SQLite or Redis ledger's next process replays them)", left, tracker,
                             tracker.spool_dir)  # fmt: skip


KEEPER = LeaseKeeper()

__all__ = ["KEEPER", "MAX_LEASE_S", "MIN_LEASE_S", "LeaseKeeper", "default_lease"]
