"""Vectorize prices come from the catalog's dated "vectorize" row (source cited); a record's cost is a Decimal,
or None when a price is missing — never a silent 0. Vectorize error codes map to typed errors naming the fix."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cfgateway import CostTracker, load_catalog, open_ledger
from cfgateway.costs.catalog import default_catalog
from cfgateway.error_codes import CODES, error_class
from cfgateway.errors import BadRequestError, NotFoundError, RateLimitError
from cfgateway.http.retry import api_error, retryable
from cfgateway.vectorize import cost_of, monthly_cost
from cfgateway.vectorize.costs import usage_record
from cfgateway.vectorize.wire import Billing


def test_the_catalog_row_has_the_published_prices_and_its_source() -> None:
    p = default_catalog().vectorize
    assert p.queried_per_million == Decimal("0.01") and p.stored_per_million_month == Decimal("0.0005")
    assert "developers.cloudflare.com/vectorize/platform/pricing" in p.source and p.as_of == "2026-04-21"
    assert (p.included_queried_month, p.included_stored) == (50_000_000, 10_000_000)


def test_the_docs_worked_example() -> None:
    # pricing page: 10,000 vectors of 768 dims queried 30,000 times a month -> $0.31 (before allowances)
    p = default_catalog().vectorize
    queries = cost_of(Billing("query", queried=30_000 * 768), p)
    storage = monthly_cost(10_000, 768, p)
    assert queries is not None and storage is not None
    assert round(queries + storage, 2) == Decimal("0.31")


def test_a_missing_price_is_none_and_the_tracker_keeps_it_none(tmp_path: object) -> None:
    cat = load_catalog().extended({"vectorize": {"usd_per_million_queried_dimensions": None}})
    assert cat.vectorize.queried_per_million is None and cost_of(Billing("query", queried=768), cat.vectorize) is None
    rec = usage_record("docs", Billing("query", queried=768), cat.vectorize, started=0.0, latency=0.01)
    assert rec.cost is None and rec.operation == "vectorize" and rec.provider == "vectorize"
    tracker = CostTracker(open_ledger("memory://"), catalog=cat)
    assert tracker.record(rec).cost is None
    failed = usage_record("docs", Billing("query", queried=768), default_catalog().vectorize, started=0.0,
                          latency=0.01, error=RuntimeError("x"))
    assert failed.cost is None and failed.outcome == "RuntimeError"


@pytest.mark.parametrize(("code", "cls", "status", "hint"), [
    (3000, NotFoundError, 404, "create_index"), (3005, NotFoundError, 410, "was deleted"),
    (3002, BadRequestError, 409, "exist_ok=True"), (40006, BadRequestError, 400, "query vector"),
    (40012, BadRequestError, 400, "dimensions"), (40025, BadRequestError, 400, "at most 50"),
    (40026, BadRequestError, 400, "application/json"), (971, RateLimitError, 429, "fewer, larger batches"),
])
def test_vectorize_codes_are_typed_and_name_the_fix(code: int, cls: type, status: int, hint: str) -> None:
    assert CODES[code].cls is cls and CODES[code].status == status and error_class(400, code, "x") is cls
    body = f'{{"result":null,"success":false,"errors":[{{"code":{code},"message":"m"}}],"messages":[]}}'.encode()
    exc = api_error(400, {}, body, "vectorize/docs")
    assert isinstance(exc, cls) and hint in str(exc) and retryable(exc) is (code == 971)
