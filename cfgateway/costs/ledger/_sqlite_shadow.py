"""The shadow-comparison columns of the SQLite ``records`` table (added to older files on open)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from cfgateway.costs.ledger.record import UsageRecord

# (column, SQL type) in the order they follow ``call_id``
SHADOW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("similarity", "REAL"),
    ("baseline", "TEXT"),
    ("baseline_latency_s", "REAL"),
    ("baseline_cost", "TEXT"),
    ("error", "TEXT"),
)


def add_shadow_columns(conn: Any) -> None:
    """``ALTER TABLE`` a ledger file written before these columns existed (inside the caller's transaction)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(records)")}
    for name, kind in SHADOW_COLUMNS:
        if name not in have:
            conn.execute(f"ALTER TABLE records ADD COLUMN {name} {kind}")


def shadow_values(r: UsageRecord) -> tuple[Any, ...]:
    cost = r.baseline_cost
    return (r.similarity, r.baseline, r.baseline_latency_s, None if cost is None else str(cost), r.error)


def with_shadow(values: tuple[Any, ...], r: UsageRecord) -> UsageRecord:
    similarity, baseline, latency, cost, error = values
    if similarity is None and baseline is None and latency is None and cost is None and error is None:
        return r
    return replace(r, similarity=similarity, baseline=baseline, baseline_latency_s=latency,
                   baseline_cost=None if cost is None else Decimal(cost), error=error)


__all__ = ["SHADOW_COLUMNS", "add_shadow_columns", "shadow_values", "with_shadow"]
