"""What Vectorize calls cost, from the catalog's ``"vectorize"`` row, as usage records (operation ``vectorize``).

Billed (https://developers.cloudflare.com/vectorize/platform/pricing/): *queried* vector dimensions — each query's
dimensions, plus every stored vector's dimensions once a month — and *stored* vector dimensions, per month.

* a query books its vector's dimensions as queried dimensions;
* an insert/upsert books ``vectors x dimensions`` as stored dimensions and the same again as queried dimensions,
  priced for one month. # guess: storage is billed monthly for as long as vectors stay stored; the ledger records
  calls, so a write books its first month and later months are not recorded (estimate them with
  :func:`monthly_cost`). Upserts that replace a vector are booked like new ones.
* get_by_ids, list, info, deletes and index management are not billed (none appears in the pricing).

Costs are list prices: the plans' included dimensions are not subtracted (as with Workers AI's free neurons).
A price missing from the catalog gives ``cost=None``, never a silent 0.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from cfgateway.costs.catalog import VectorizePrices
from cfgateway.costs.ledger.record import UsageRecord
from cfgateway.vectorize.wire import Billing

_MILLION = Decimal(1_000_000)
PROVIDER = "vectorize"
OPERATION = "vectorize"


def cost_of(billing: Billing, prices: VectorizePrices) -> Decimal | None:
    """USD for one call's queried and stored dimensions; ``None`` when a needed price is unknown."""
    total = Decimal(0)
    if billing.queried:
        if prices.queried_per_million is None:
            return None
        total += billing.queried * prices.queried_per_million
    if billing.stored:
        if prices.stored_per_million_month is None:
            return None
        total += billing.stored * prices.stored_per_million_month
    return total / _MILLION


def monthly_cost(vector_count: int, dimensions: int, prices: VectorizePrices) -> Decimal | None:
    """List price of keeping ``vector_count`` vectors for a month (before queries and included allowances)."""
    dims = vector_count * dimensions
    return cost_of(Billing("storage", queried=dims, stored=dims), prices)


def usage_record(index: str, billing: Billing, prices: VectorizePrices, *, started: float, latency: float,
                 error: BaseException | None = None, user: str | None = None) -> UsageRecord:
    """The ledger record of one billed call; a failed call has the error's class as outcome and no cost."""
    return UsageRecord(
        ts=started,
        model=f"{PROVIDER}/{index}",
        provider=PROVIDER,
        operation=OPERATION,
        cost=None if error is not None else cost_of(billing, prices),
        latency_s=latency,
        outcome="ok" if error is None else type(error).__name__,
        user=user,
        tags={"op": billing.op, "index": index, "queried_dimensions": billing.queried,
              "stored_dimensions": billing.stored, "vectors": billing.vectors},
        call_id=uuid.uuid4().hex,
    )


__all__ = ["OPERATION", "PROVIDER", "cost_of", "monthly_cost", "usage_record"]
