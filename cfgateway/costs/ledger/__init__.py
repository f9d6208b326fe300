"""Usage records and where they are kept.

>>> ledger = open_ledger("sqlite:///costs.db")        # doctest: +SKIP

``open_ledger(None)`` / ``"memory://"`` -> :class:`MemoryLedger` (default, this process only);
``"sqlite:///relative.db"`` or ``"sqlite:////absolute/path.db"`` -> :class:`SQLiteLedger` (one machine,
many processes); ``"redis://host:port/db"`` (``rediss://``, ``unix://``) -> :class:`RedisLedger`
(many hosts). ``sqlite3`` and ``redis`` are imported only when such a ledger is opened.
Each also keeps a small key-value state (:class:`StateStore`: a rollout's stage, recent alerts).
"""

from __future__ import annotations

from cfgateway.costs.ledger.base import BudgetStore, Ledger, Rejection, SpendCheck
from cfgateway.costs.ledger.memory import MemoryLedger
from cfgateway.costs.ledger.record import UsageRecord
from cfgateway.costs.ledger.redis_ledger import RedisLedger
from cfgateway.costs.ledger.sqlite_ledger import SQLiteLedger
from cfgateway.costs.ledger.state import StateStore
from cfgateway.errors import ConfigError

_SQLITE = "sqlite://"


def open_ledger(url: str | None) -> MemoryLedger | SQLiteLedger | RedisLedger:
    """The ledger a URL names (see the module docstring)."""
    if url is None or url.strip() in ("", "memory", "memory://"):
        return MemoryLedger()
    url = url.strip()
    if url.startswith(_SQLITE):
        path = url[len(_SQLITE) :]
        # sqlite:///rel.db -> "rel.db"; sqlite:////abs.db -> "/abs.db" (SQLAlchemy's convention)
        path = path[1:] if path.startswith("/") else path
        if not path or path == ":memory:":
            raise ConfigError(
                f"ledger URL {url!r} has no file path: use sqlite:///costs.db (relative) or sqlite:////abs/costs.db"
            )
        return SQLiteLedger(path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisLedger(url)
    raise ConfigError(
        f"unknown ledger URL {url!r}: use memory://, sqlite:///path.db or redis://host:port/db "
        "(CFGATEWAY_LEDGER / ledger= setting)"
    )


__all__ = [
    "BudgetStore",
    "Ledger",
    "MemoryLedger",
    "RedisLedger",
    "Rejection",
    "SQLiteLedger",
    "SpendCheck",
    "StateStore",
    "UsageRecord",
    "open_ledger",
]
