"""Issue 10 finding 14: the circuit breaker opens on a failure *rate* over a window with a minimum number of
calls (or N consecutive failures), half-opens with one probe, cools down longer after each failed probe, tells
``on_change`` about every transition, and takes per-route settings from config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cfgateway import ChatRequest, Message
from cfgateway.config import load_settings
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.errors import ConfigError
from cfgateway.fallback import FallbackChain, build_client
from cfgateway.http.transport import RetryPolicy
from cfgateway.routing.breaker import BreakerSettings, CircuitBreaker, reset_shared_breakers, shared_breaker

P = "@cf/meta/llama-3.1-8b-instruct"
F = "openai/gpt-4o-mini"
PROMPT = ChatRequest([Message("user", "Tell me about Paris")], max_tokens=20)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_token="t", gateways={"gw": GatewayConfig(auth_token="g")})) as s:
        yield s


def test_one_failed_request_with_its_retries_does_not_send_traffic_to_the_fallback(server: EmulatorServer) -> None:
    server.state.clear()
    chain = build_client(P, [F], account_id="acct", api_token="t", gateway_id="gw", gateway_token="g",
                         base_url=server.base_url, gateway_base_url=server.gateway_base_url,
                         retry_policy=RetryPolicy(max_retries=2, backoff_base=0.001))  # fmt: skip
    assert isinstance(chain, FallbackChain)  # the chain's own default breaker
    server.state.add_fault(Fault("*/workers-ai/*", "error", status=500, times=3))  # one call: 1 try + 2 retries fail
    answered = [chain.chat(PROMPT).model for _ in range(54)]
    fallback_rate = answered.count(F) / len(answered)
    assert answered[0] == F and fallback_rate < 0.05, f"fallback rate {fallback_rate:.0%}"
    assert chain.breaker is not None and chain.breaker.state(P) == "closed"


def test_the_rate_rule_needs_min_calls_and_the_rate() -> None:
    clock = Clock()
    b = CircuitBreaker(settings=BreakerSettings(consecutive_failures=None, min_calls=10, failure_rate=0.5), clock=clock)
    for _ in range(9):
        b.failure("a")  # 100 % failed, but fewer than min_calls
    assert b.state("a") == "closed"
    b.failure("a")
    assert b.state("a") == "open"
    b.reset()
    for i in range(40):  # 40 % failed over 40 calls: stays closed
        (b.failure if i % 5 in (0, 1) else b.success)("a")
    assert b.state("a") == "closed"


def test_the_window_forgets_old_calls() -> None:
    clock = Clock()
    b = CircuitBreaker(settings=BreakerSettings(consecutive_failures=None, min_calls=6, failure_rate=0.5, window=60),
                       clock=clock)  # fmt: skip
    for _ in range(5):
        b.failure("a")
    clock.now += 61  # those five are out of the window now
    for _ in range(5):
        b.success("a")
    b.failure("a")
    assert b.state("a") == "closed"  # 1 of 6 in the window
    for _ in range(5):
        b.failure("a")
    assert b.state("a") == "open"  # 6 of 11


def test_consecutive_failures_open_before_the_rate_rule_has_enough_calls() -> None:
    b = CircuitBreaker(4, 30.0, clock=Clock())
    for _ in range(3):
        b.failure("a")
    b.success("a")
    for _ in range(3):
        b.failure("a")
    assert b.state("a") == "closed"
    b.failure("a")
    assert b.state("a") == "open"


def test_the_cooldown_grows_with_each_failed_probe_and_resets_after_a_success() -> None:
    clock = Clock()
    changes: list[tuple[str, str, str]] = []
    b = CircuitBreaker(1, 10.0, settings=BreakerSettings(cooldown_growth=3.0, max_cooldown=50.0), clock=clock,
                       on_change=lambda m, old, new: changes.append((m, old, new)))  # fmt: skip
    b.failure("a")
    expected = [10.0, 30.0, 50.0, 50.0]
    for cooldown in expected:
        assert b.state("a") == "open" and b.retry_in("a") == pytest.approx(cooldown)
        clock.now += cooldown + 0.1
        assert b.allow("a") and not b.allow("a")  # one probe
        b.failure("a")  # it failed
    clock.now += 50.1
    assert b.allow("a")
    b.success("a")
    assert b.state("a") == "closed"
    b.failure("a")
    assert b.retry_in("a") == pytest.approx(10.0)  # back to the first cooldown
    assert changes[:4] == [("a", "closed", "open"), ("a", "open", "half_open"), ("a", "half_open", "open"),
                           ("a", "open", "half_open")]  # fmt: skip
    assert ("a", "half_open", "closed") in changes and changes[-1] == ("a", "closed", "open")
    assert sum(1 for c in changes if c[2] == "open") == 6  # first opening, 4 failed probes, the new opening


def test_a_failing_on_change_hook_does_not_break_the_breaker(caplog: pytest.LogCaptureFixture) -> None:
    def boom(*_: Any) -> None:
        raise RuntimeError("hook")

    b = CircuitBreaker(1, 10.0, clock=Clock(), on_change=boom)
    b.failure("a")
    assert b.state("a") == "open" and any("on_change" in r.getMessage() for r in caplog.records)


def test_per_route_settings_exact_and_glob() -> None:
    b = CircuitBreaker(
        2, 10.0, clock=Clock(),
        routes={"@cf/*": {"consecutive_failures": 5}, "openai/gpt-4o": BreakerSettings(consecutive_failures=1)},
    )  # fmt: skip
    assert b.settings_for("@cf/meta/x").consecutive_failures == 5
    assert b.settings_for("openai/gpt-4o").consecutive_failures == 1
    assert b.settings_for("openai/gpt-4o-mini").consecutive_failures == 2  # the breaker's own
    for _ in range(4):
        b.failure("@cf/meta/x")
    b.failure("openai/gpt-4o")
    assert b.snapshot() == {"@cf/meta/x": "closed", "openai/gpt-4o": "open"}


def test_settings_from_config(tmp_path: Any) -> None:
    path = tmp_path / "cfgateway.toml"
    path.write_text(
        '[breaker]\nmin_calls = 5\nfailure_rate = 0.2\ncooldown = 7\ncooldown_growth = 1.5\n'
        '[breaker.routes."@cf/meta/llama-3.1-8b-instruct"]\nconsecutive_failures = 2\n', encoding="utf-8"
    )  # fmt: skip
    settings = load_settings(config_path=path, env={})
    b = CircuitBreaker.from_settings(settings)
    base = b.settings_for("openai/gpt-4o-mini")
    assert (base.min_calls, base.failure_rate, base.cooldown, base.cooldown_growth) == (5, 0.2, 7.0, 1.5)
    assert b.settings_for(P).consecutive_failures == 2 and b.settings_for(P).min_calls == 5
    assert CircuitBreaker.from_settings(settings, failure_threshold=9).settings_for("x").consecutive_failures == 9
    reset_shared_breakers()
    named = shared_breaker("cfg", config=settings)
    assert named is shared_breaker("cfg") and named.settings_for(P).consecutive_failures == 2
    reset_shared_breakers()


@pytest.mark.parametrize(
    "bad",
    [{"min_calls": 0}, {"failure_rate": 1.5}, {"window": -1}, {"cooldown_growth": 0.5}, {"nope": 1},
     {"consecutive_failures": 0}, {"routes": {"@cf/x": {"cooldown": "soon"}}}, {"routes": []}],
)  # fmt: skip
def test_bad_settings_name_the_key(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="breaker"):
        CircuitBreaker.from_config(bad)
