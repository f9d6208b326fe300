from __future__ import annotations

import pytest

from cfgateway import error_codes as codes
from cfgateway import errors as e
from cfgateway.http.transport import api_error


@pytest.mark.parametrize(
    ("status", "code", "message", "cls"),
    [
        (401, 10000, "Authentication error", e.AuthenticationError),
        (403, 10000, "Authentication error", e.AuthenticationError),
        (401, 2009, "Unauthorized", e.AuthenticationError),
        (429, 3040, "Capacity temporarily exceeded, please try again.", e.CapacityError),
        (429, 3036, "You have used up your daily free allocation of 10,000 neurons.", e.QuotaExceededError),
        (429, 2003, "Rate limited", e.RateLimitError),
        (400, 5006, "AiError: Bad input: oneOf at '/' not met", e.BadRequestError),
        (400, 5007, "No such model @cf/x or task", e.NotFoundError),
        (404, 7003, "Could not route to /client/v4/accounts/x/ai/v1/chat/completions", e.NotFoundError),
        (413, 3006, "Request is too large", e.RequestTooLargeError),
        (502, None, "Bad gateway", e.ServerError),
        (500, 2005, "Failed to get response from provider", e.ServerError),
        (403, 5016, "User has not agreed to Llama3.2 model terms", e.PermissionDeniedError),
        (400, None, "context_length_exceeded: This model's maximum context length is 8192 tokens",
         e.ContextLengthExceededError),
        (400, 5006, "AiError: Bad input: input is too long: exceeds the model's context window", e.ContextLengthExceededError),
    ],
)
def test_error_classes(status: int, code: int | None, message: str, cls: type) -> None:
    assert codes.error_class(status, code, message) is cls


def test_api_error_carries_everything_but_secrets() -> None:
    body = b'{"errors":[{"message":"Capacity temporarily exceeded, please try again.","code":3040}],"success":false}'
    err = api_error(429, {"retry-after": "2", "cf-aig-log-id": "log-1"}, body, "@cf/meta/llama-3.1-8b-instruct")
    assert isinstance(err, e.CapacityError) and isinstance(err, e.RateLimitError)
    assert (err.status, err.code, err.retry_after, err.log_id) == (429, 3040, 2.0, "log-1")
    assert "code 3040" in str(err) and "@cf/meta/llama-3.1-8b-instruct" in str(err) and "log-1" in str(err)


def test_gateway_error_body_and_html() -> None:
    gw = b'{"success":false,"result":[],"messages":[],"error":[{"code":2009,"message":"Unauthorized"}],"name":"AiGatewayError"}'
    err = api_error(401, {}, gw, "openai/gpt-4o-mini")
    assert isinstance(err, e.AuthenticationError) and err.code == 2009
    assert "CLOUDFLARE_AI_GATEWAY_TOKEN" in str(err)  # the hint names the fix
    html = api_error(502, {}, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "m")
    assert isinstance(html, e.ServerError) and "<html>" not in str(html)


def test_every_error_is_a_cloudflare_error() -> None:
    classes = [getattr(e, n) for n in e.__all__ if isinstance(getattr(e, n), type)]
    exceptions = [c for c in classes if issubclass(c, BaseException)]
    assert len(exceptions) >= 24
    for cls in exceptions:
        assert issubclass(cls, e.CloudflareError), cls


def test_transport_errors_are_also_the_builtins() -> None:
    assert issubclass(e.TimeoutError, TimeoutError) and issubclass(e.ConnectionError, ConnectionError)
    err = e.ConnectionError("refused", model="@cf/x")
    assert str(err) == "refused" and err.model == "@cf/x" and isinstance(err, OSError)
    try:
        raise e.TimeoutError("slow")
    except TimeoutError as caught:  # the builtin name catches ours
        assert isinstance(caught, e.CloudflareError)


def test_one_code_table_drives_class_retry_and_fallback() -> None:
    from cfgateway.fallback.policy import FallbackPolicy
    from cfgateway.http.retry import retryable

    policy = FallbackPolicy()
    for code, info in codes.CODES.items():
        exc = info.cls("x", status=info.status, code=code)
        assert codes.error_class(info.status, code, "x") is info.cls
        assert retryable(exc) is info.retry, code
        assert policy.should_fall_back(exc) is info.fallback, code
    assert codes.CODES[2009].credential == "gateway_token" and codes.CODES[10000].credential == "api_token"
