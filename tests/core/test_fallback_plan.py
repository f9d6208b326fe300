"""The sans-IO parts of fallback: classification, eligibility, the call plan, the gateway step books."""

from __future__ import annotations

import json

import pytest

from cfgateway import errors
from cfgateway.config import load_settings
from cfgateway.costs.catalog import default_catalog
from cfgateway.errors import CircuitOpenError, RouteSkipped
from cfgateway.fallback import AllRoutesFailed, FallbackPolicy, GatewayStepFailed
from cfgateway.fallback._attempts import CallPlan, Limits
from cfgateway.fallback._gateway_plan import (
    GatewayCall,
    answering_step,
    build_steps,
    step_config,
    universal_headers,
)
from cfgateway.fallback.policy import credentials
from cfgateway.http.transport import RetryPolicy
from cfgateway.routing.breaker import CircuitBreaker
from cfgateway.routing.routes import GatewayOptions, Route, resolve_route
from cfgateway.types import AttemptInfo, CallContext, ChatResponse

SETTINGS = load_settings(account_id="acct", api_token="cf-secret", gateway_id="gw", gateway_token="gw-secret",
                         env={}, config_path=None)
A, B, C = "@cf/meta/llama-3.1-8b-instruct", "openai/gpt-4o-mini", "@cf/meta/llama-3.1-8b-instruct-fp8"
CATALOG = default_catalog()


def route(model: str) -> Route:
    return resolve_route(model, SETTINGS)


def api(cls: type[errors.APIError], status: int, code: int | None = None, retry_after: float | None = None,
        model: str = A) -> errors.APIError:
    return cls("boom", status=status, code=code, retry_after=retry_after, model=model)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def plan(models: list[str], *, retries: int = 2, max_attempts: int | None = None, wait: float = 1.0,
         breaker: CircuitBreaker | None = None, deadline: float | None = None, clock: Clock | None = None) -> CallPlan:
    retry = RetryPolicy(max_retries=retries, backoff_base=0.01, backoff_max=0.01)
    return CallPlan(models, route, CallContext(user="u", deadline=deadline), policy=FallbackPolicy(),
                    limits=Limits(retry, max_attempts, wait), catalog=CATALOG, breaker=breaker,
                    clock=clock or Clock())


@pytest.mark.parametrize(
    ("exc", "falls_back"),
    [
        (errors.ConnectionError("reset"), True),
        (errors.TimeoutError("slow"), True),
        (api(errors.RateLimitError, 429), True),
        (api(errors.CapacityError, 429, 3040), True),
        (api(errors.QuotaExceededError, 429, 3036), True),
        (api(errors.ServerError, 502), True),
        (api(errors.ServerError, 504, 2005), True),
        (errors.MalformedResponseError("html"), True),
        (api(errors.ContextLengthExceededError, 400), True),
        (api(errors.AuthenticationError, 401, 10000), True),
        (api(errors.BadRequestError, 400, 5006), False),
        (api(errors.NotFoundError, 400, 5007), False),
        (errors.InvalidInputError("empty"), False),
        (errors.ConfigError("no token"), False),
        (errors.BudgetExceededError("over"), False),
    ],
)
def test_default_classification(exc: Exception, falls_back: bool) -> None:
    assert FallbackPolicy().should_fall_back(exc) is falls_back


def test_fallback_on_override_classes_predicate_and_validation() -> None:
    only_5xx = FallbackPolicy((errors.ServerError,))
    assert only_5xx.should_fall_back(api(errors.ServerError, 500))
    assert not only_5xx.should_fall_back(api(errors.RateLimitError, 429))
    pred = FallbackPolicy(lambda e: isinstance(e, errors.APIError) and e.status == 400)
    assert pred.should_fall_back(api(errors.BadRequestError, 400)) and not pred.should_fall_back(errors.TimeoutError("t"))
    assert FallbackPolicy(errors.BadRequestError).should_fall_back(api(errors.BadRequestError, 400))
    with pytest.raises(errors.ConfigError):
        FallbackPolicy(("not a class",))  # type: ignore[arg-type]


def test_context_length_skips_routes_whose_window_is_not_larger() -> None:
    p = FallbackPolicy()
    exc = api(errors.ContextLengthExceededError, 400)
    small, big = route("@cf/mistral/mistral-7b-instruct-v0.1"), route(C)  # 2824 / 32000 vs 8000
    assert isinstance(p.eligible(exc, route(A), small, CATALOG), RouteSkipped)
    assert p.eligible(exc, route(A), big, CATALOG) is None
    assert p.eligible(exc, route(A), route("custom-x/unknown"), CATALOG) is None  # unknown window: tried


def test_auth_failure_skips_routes_with_the_same_credentials() -> None:
    p = FallbackPolicy()
    workers_401 = api(errors.AuthenticationError, 401, 10000)
    assert p.eligible(workers_401, route(A), route(C), CATALOG) is not None  # same Workers AI token
    assert p.eligible(workers_401, route(A), route(B), CATALOG) is None  # gateway-stored OpenAI key
    gateway_401 = api(errors.AuthenticationError, 401, 2009)
    skip = p.eligible(gateway_401, route(A), route(B), CATALOG)  # same gateway token
    assert skip is not None and skip.reason == "same_credentials"
    assert "secret" not in credentials(route(A)) + credentials(route(A), gateway=True)


def test_retries_and_fallbacks_share_one_budget() -> None:
    pl = plan([A, B], retries=2, max_attempts=3)
    sent = []
    for _ in range(3):
        step = pl.next()
        sent.append(step.model)
        assert pl.failed(api(errors.ServerError, 500, model=step.model)) is False
    assert sent == [A, A, B]  # the second retry of A would have left nothing for B
    with pytest.raises(AllRoutesFailed) as info:
        pl.next()
    eg = info.value
    assert [type(e) for e in eg.exceptions] == [errors.ServerError] * 3
    assert [a.model for a in eg.attempts] == [A, A, B] and str(eg).count("ServerError: HTTP 500") == 3
    assert isinstance(eg, errors.CloudflareError) and isinstance(eg, ExceptionGroup)
    try:
        raise eg
    except* errors.ServerError as group:
        assert len(group.exceptions) == 3


def test_budget_leaves_later_routes_untried_with_a_note() -> None:
    pl = plan([A, B, C], retries=0, max_attempts=2)
    for _ in range(2):
        pl.next()
        pl.failed(errors.ConnectionError("refused"))
    with pytest.raises(AllRoutesFailed, match="attempt budget of 2 used up") as info:
        pl.next()
    assert len(info.value.exceptions) == 2


def test_attempt_contexts_are_numbered_and_marked_fallback() -> None:
    pl = plan([A, B], retries=0)
    s1 = pl.next()
    pl.failed(errors.TimeoutError("slow", model=A))
    s2 = pl.next()
    assert (s1.ctx.attempt, s1.ctx.fallback, s2.ctx.attempt, s2.ctx.fallback) == (0, False, 1, True)
    assert s1.ctx.call_id == s2.ctx.call_id and s2.ctx.user == "u"


def test_long_retry_after_falls_back_unless_last_route() -> None:
    pl = plan([A, B], wait=0.5)
    pl.next()
    pl.failed(api(errors.RateLimitError, 429, retry_after=2))
    assert pl.next().model == B  # no 2 s wait while B can answer
    pl.failed(api(errors.RateLimitError, 429, retry_after=0.2, model=B))
    step = pl.next()
    assert step.model == B and step.delay == pytest.approx(0.2)  # the last route waits out a short Retry-After


def test_timeouts_are_not_retried_on_the_same_route() -> None:
    pl = plan([A, B])
    pl.next()
    pl.failed(errors.TimeoutError("slow", model=A))
    assert pl.next().model == B


def test_deadline_stops_the_call() -> None:
    clock = Clock()
    pl = plan([A, B, C], deadline=5.0, clock=clock)
    pl.next()
    clock.now = 6.0
    pl.failed(errors.TimeoutError("slow", model=A))
    with pytest.raises(AllRoutesFailed, match="deadline passed"):
        pl.next()


def test_non_fallback_error_ends_the_call_annotated() -> None:
    pl = plan([A, B])
    pl.next()
    pl.failed(api(errors.ServerError, 500))
    pl.next()
    exc = api(errors.BadRequestError, 400, 5006)
    exc.records = ["rec"]  # type: ignore[attr-defined]
    assert pl.failed(exc) is True
    assert [a.outcome for a in exc.attempts] == ["ServerError", "BadRequestError"]  # type: ignore[attr-defined]
    assert exc.records == ["rec"]  # type: ignore[attr-defined]


def test_open_circuit_is_skipped_and_probe_released_on_close() -> None:
    clock = Clock()
    br = CircuitBreaker(1, 10.0, clock=clock)
    br.failure(A)
    pl = plan([A, B], breaker=br)
    step = pl.next()
    assert step.model == B and pl.attempts[0].outcome == "circuit_open"
    resp = pl.succeeded(ChatResponse("hi", B, "openai", attempts=[AttemptInfo(B, "ok")], records=["r"]))
    assert [a.outcome for a in resp.attempts] == ["circuit_open", "ok"] and resp.records == ["r"]
    clock.now = 11
    pl2 = plan([A, B], breaker=br)
    assert pl2.next().model == A  # the half-open probe
    assert not br.allow(A)
    pl2.close()  # the caller went away: the probe slot is freed
    assert br.allow(A)


def test_all_open_raises_group_of_skips_and_single_route_raises_its_own_error() -> None:
    br = CircuitBreaker(1, 10.0)
    br.failure(A)
    br.failure(B)
    with pytest.raises(AllRoutesFailed) as info:
        plan([A, B], breaker=br).next()
    assert all(isinstance(e, CircuitOpenError) for e in info.value.exceptions)
    single = plan([A], retries=0)
    single.next()
    single.failed(api(errors.ServerError, 500))
    with pytest.raises(errors.ServerError):
        single.next()


def test_context_length_failure_skips_smaller_windows_in_the_plan() -> None:
    pl = plan([A, "@cf/mistral/mistral-7b-instruct-v0.1", C])
    pl.next()
    pl.failed(api(errors.ContextLengthExceededError, 400))
    assert pl.next().model == C
    assert [a.outcome for a in pl.attempts] == ["ContextLengthExceededError", "context_window"]


# -- gateway mode (sans-IO) ----------------------------------------------------------------------
def test_step_config_build_steps_and_headers() -> None:
    opts = GatewayOptions(request_timeout_ms=1500, max_attempts=9, retry_delay_ms=9000, backoff="linear")
    assert step_config(opts) == {"requestTimeout": 1500, "maxAttempts": 5, "retryDelay": 5000, "backoff": "linear"}
    assert step_config(None, {"requestTimeout": 200}) == {"requestTimeout": 200}
    assert step_config(None) is None
    body = build_steps([route(A), route(B)], [{"messages": []}, {"model": "gpt-4o-mini"}],
                       operation="chat", config={"requestTimeout": 200})
    assert [s["provider"] for s in body] == ["workers-ai", "openai"]
    assert body[0]["endpoint"] == A and body[1]["endpoint"] == "chat/completions"
    assert body[0]["headers"]["Authorization"] == "Bearer cf-secret" and "Authorization" not in body[1]["headers"]
    assert body[1]["query"] == {"model": "gpt-4o-mini"} and body[0]["config"] == {"requestTimeout": 200}
    h = universal_headers(SETTINGS, None, {"user": "u1"})
    assert h["cf-aig-authorization"] == "Bearer gw-secret" and json.loads(h["cf-aig-metadata"]) == {"user": "u1"}


def test_answering_step() -> None:
    assert answering_step({"cf-aig-step": "1"}, 2) == 1
    assert answering_step({}, 1) == 0
    with pytest.raises(errors.MalformedResponseError):
        answering_step({}, 2)
    with pytest.raises(errors.MalformedResponseError):
        answering_step({"cf-aig-step": "5"}, 2)


def gcall(models: list[str], breaker: CircuitBreaker | None = None) -> GatewayCall:
    return GatewayCall([route(m) for m in models], CallContext(), policy=FallbackPolicy(),
                       limits=Limits(RetryPolicy(max_retries=0)), breaker=breaker)


def test_gateway_call_reports_failed_steps_and_continues_after_a_broken_answer() -> None:
    br = CircuitBreaker(1, 30)
    call = gcall([A, B, C], br)
    seg = call.next()
    assert [r.model for r in seg.routes] == [A, B, C] and [s.ctx.attempt for s in seg.steps] == [0, 1, 2]
    # step 1 answered, but its body was cut: go on with the steps after it
    assert call.failed(errors.ConnectionError("cut", model=B), seg, 1) is False
    seg2 = call.next()
    assert [r.model for r in seg2.routes] == [C]
    resp = call.succeeded(ChatResponse("ok", C, "workers-ai", attempts=[AttemptInfo(C, "ok")]), seg2, 0)
    assert [(a.model, a.outcome) for a in resp.attempts] == [
        (A, "gateway_step_failed"), (B, "ConnectionError"), (C, "ok")]
    assert br.state(A) == "open" and br.state(B) == "open" and br.state(C) == "closed"
    assert [r.model for r in gcall([A, B, C], br).next().routes] == [C]  # open steps are left out


def test_gateway_call_error_answer_is_the_last_steps() -> None:
    call = gcall([A, B])
    seg = call.next()
    assert call.failed(api(errors.ServerError, 500, model=B), seg, None) is False
    with pytest.raises(AllRoutesFailed) as info:
        call.next()
    assert [type(e) for e in info.value.exceptions] == [GatewayStepFailed, errors.ServerError]
    call2 = gcall([A, B])
    seg2 = call2.next()
    bad = api(errors.BadRequestError, 400)
    assert call2.failed(bad, seg2, None) is True
    assert [a.outcome for a in bad.attempts] == ["gateway_step_failed", "BadRequestError"]  # type: ignore[attr-defined]


def test_gateway_call_holds_the_single_half_open_probe() -> None:
    clock = Clock()
    br = CircuitBreaker(1, 10.0, clock=clock)
    br.failure(A)
    clock.now = 11  # cooled down: half-open, one probe allowed
    first, second = gcall([A, B], br), gcall([A, B], br)
    seg1 = first.next()
    assert [r.model for r in seg1.routes] == [A, B] and seg1.probes == [0]
    seg2 = second.next()
    assert [r.model for r in seg2.routes] == [B]  # another request is probing A: skip it, as in client mode
    assert second.attempts[0].outcome == "circuit_open"
    first.succeeded(ChatResponse("ok", A, "workers-ai", attempts=[AttemptInfo(A, "ok")]), seg1, 0)
    assert br.state(A) == "closed"


def test_gateway_call_frees_a_probe_the_gateway_never_tried() -> None:
    clock = Clock()
    br = CircuitBreaker(1, 10.0, clock=clock)
    br.failure(B)
    clock.now = 11
    call = gcall([A, B], br)
    seg = call.next()
    assert seg.probes == [1]
    call.succeeded(ChatResponse("ok", A, "workers-ai", attempts=[AttemptInfo(A, "ok")]), seg, 0)
    assert br.state(B) == "half_open" and br.allow(B)  # B was not tried: its probe is free again
    unknown = gcall([B], br)  # (the allow() above took the probe; give it back, then lose a request)
    br.release(B)
    seg2 = unknown.next()
    assert seg2.probes == [0]
    unknown.failed(errors.ConnectionError("refused", model=B), seg2, None)
    assert br.allow(B)  # nobody knows whether B was tried: the probe is freed, not failed
