from __future__ import annotations

import json
import logging
import uuid
from decimal import Decimal
from fractions import Fraction

import pytest

from cfgateway.costs.catalog import default_catalog
from cfgateway.costs.pricing import (
    _reset_warnings,
    cost_of,
    custom_cost_header,
    estimate_tokens,
    max_cost_of,
    neurons_of,
)
from cfgateway.errors import ConfigError
from cfgateway.types import Usage

M = 1_000_000


def test_workers_ai_cost_is_tokens_times_catalog_prices_exactly() -> None:
    cost = cost_of("@cf/meta/llama-3.2-1b-instruct", Usage(1000, 500))
    assert isinstance(cost, Decimal)
    assert cost == Decimal("0.0001275")  # 1000 x 0.027/M + 500 x 0.201/M
    assert str(cost) == "0.0001275"


def test_large_counts_stay_exact() -> None:
    cost = cost_of("@cf/meta/llama-3.3-70b-instruct-fp8-fast", Usage(1_234_567, 7_654_321))
    assert cost is not None
    expected = Fraction(1_234_567 * 293, 1000 * M) + Fraction(7_654_321 * 2253, 1000 * M)
    assert Fraction(cost) == expected


def test_gateway_provider_prices() -> None:
    assert cost_of("anthropic/claude-sonnet-4-5", Usage(2000, 1000)) == Decimal("0.021")
    assert cost_of("custom-deepinfra/Qwen/Qwen3-Embedding-8B", Usage(1_000_000, 0)) == Decimal("0.010")


def test_cached_tokens_use_the_cached_price_when_the_row_has_one() -> None:
    # gpt-4o-mini: 0.15 in, 0.075 cached in, 0.60 out; cached tokens are a subset of input tokens
    cost = cost_of("openai/gpt-4o-mini", Usage(1000, 200, 1200, cached_tokens=400))
    assert cost == Decimal(600 * 15 + 400 * 7.5 + 200 * 60) / 100 / M
    assert cost == Decimal("0.00024")


def test_cached_tokens_fall_back_to_the_input_price() -> None:
    with_cache = cost_of("groq/llama-3.1-8b-instant", Usage(1000, 100, cached_tokens=800))
    without = cost_of("groq/llama-3.1-8b-instant", Usage(1000, 100))
    assert with_cache == without == Decimal("0.000058")


def test_cached_tokens_never_exceed_input_tokens() -> None:
    assert cost_of("openai/gpt-4o-mini", Usage(100, 0, cached_tokens=500)) == Decimal("0.0000075")


def test_cache_hit_costs_exactly_zero_and_warns_about_nothing(caplog: pytest.LogCaptureFixture) -> None:
    _reset_warnings()
    with caplog.at_level(logging.WARNING, logger="cfgateway.cost"):
        assert cost_of("openai/gpt-4o", Usage(5000, 5000), cache_hit=True) == Decimal(0)
        assert cost_of("nobody/unknown-model", Usage(5, 5), cache_hit=True) == Decimal(0)
    assert caplog.records == []


def test_unknown_model_costs_none_with_exactly_one_warning_per_model(caplog: pytest.LogCaptureFixture) -> None:
    _reset_warnings()
    a, b = f"acme/{uuid.uuid4().hex}", f"acme/{uuid.uuid4().hex}"
    with caplog.at_level(logging.WARNING, logger="cfgateway.cost"):
        for _ in range(3):
            assert cost_of(a, Usage(10, 10)) is None
        assert max_cost_of(a, 10, 10) is None
        assert cost_of(b, Usage(1, 1)) is None
        assert cost_of(b, Usage(1, 1)) is None
    warned = [r for r in caplog.records if r.name == "cfgateway.cost" and r.levelno == logging.WARNING]
    assert len(warned) == 2
    assert a in warned[0].getMessage() and b in warned[1].getMessage()
    assert "None" in warned[0].getMessage()


def test_a_catalog_row_without_prices_is_unknown_not_zero() -> None:
    assert default_catalog().get("@cf/meta/llama-3.1-8b-instruct-fast") is not None
    assert cost_of("@cf/meta/llama-3.1-8b-instruct-fast", Usage(100, 100)) is None


def test_user_catalog_rows_price_new_models() -> None:
    cat = default_catalog().extended({"models": {"acme/tiny": {"input": "0.5", "output": "1.25"}}})
    assert cost_of("acme/tiny", Usage(2, 4), catalog=cat) == Decimal("0.000006")
    assert max_cost_of("acme/tiny", 2, 4, catalog=cat) == Decimal("0.000006")


def test_workers_ai_gateway_alias_is_priced_like_the_model() -> None:
    u = Usage(100, 100)
    assert cost_of("workers-ai/@cf/meta/llama-3.2-3b-instruct", u) == cost_of("@cf/meta/llama-3.2-3b-instruct", u)


def test_max_cost_is_the_worst_case() -> None:
    worst = max_cost_of("openai/gpt-4o-mini", 1000, 1000)
    assert worst == Decimal("0.00075")
    for used in (Usage(1000, 1000), Usage(1000, 1000, cached_tokens=1000), Usage(1000, 10)):
        cost = cost_of("openai/gpt-4o-mini", used)
        assert cost is not None and cost <= worst
    assert max_cost_of("openai/gpt-4o-mini", 0, 0) == 0


def test_custom_cost_header_is_json_numbers_per_token() -> None:
    assert custom_cost_header(Decimal("1"), Decimal("2")) == '{"per_token_in":0.000001,"per_token_out":0.000002}'
    value = custom_cost_header(Decimal("0.15"), Decimal("0.60"))
    assert value == '{"per_token_in":0.00000015,"per_token_out":0.0000006}'
    assert "E" not in value
    assert json.loads(value, parse_float=Decimal) == {
        "per_token_in": Decimal("0.00000015"),
        "per_token_out": Decimal("0.0000006"),
    }
    assert custom_cost_header(0, "3") == '{"per_token_in":0,"per_token_out":0.000003}'


@pytest.mark.parametrize("bad", [Decimal(-1), "abc", float("nan")])
def test_custom_cost_header_rejects_bad_prices(bad: object) -> None:
    with pytest.raises(ConfigError):
        custom_cost_header(bad, Decimal(1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "tokens"), [("", 1), ("a", 2), ("abcd", 5), ("x" * 400, 401), ("é", 3), ("日本", 7), ("😀", 5)]
)
def test_estimate_tokens_is_the_utf8_size_plus_one(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens  # an upper bound: every token covers at least one byte


def test_neurons_from_the_catalog_rates() -> None:
    n = neurons_of("@cf/meta/llama-3.2-1b-instruct", Usage(1000, 500))
    assert n == pytest.approx((1000 * 2457 + 500 * 18252) / M)
    assert neurons_of("openai/gpt-4o-mini", Usage(1000, 500)) is None
