"""Shared wire helpers: error bodies, stop sequences, arguments, content parts."""

from __future__ import annotations

import json

import pytest

from cfgateway.error_codes import error_class
from cfgateway.errors import (
    AuthenticationError,
    BadRequestError,
    CapacityError,
    ContextLengthExceededError,
    MalformedResponseError,
    QuotaExceededError,
    ServerError,
)
from cfgateway.types import ToolSpec
from cfgateway.wire.common import (
    api_error_from,
    apply_stop,
    flatten_content,
    new_tool_call_id,
    normalise_finish,
    parse_arguments,
    parse_error_body,
    parse_tool_call,
    parse_usage,
    select_tools,
)

ENVELOPE_5006 = (
    b'{"errors":[{"message":"AiError: Bad input: Error: oneOf at \'/\' not met, 0 matches: required properties at'
    b" '/' are 'input', required properties at '/' are 'requests'\",\"code\":5006}],"
    b'"success":false,"result":{},"messages":[]}'
)
GATEWAY_2009 = (
    b'{"success":false,"result":[],"messages":[],"error":[{"code":2009,"message":"Unauthorized"}],'
    b'"name":"AiGatewayError","httpCode":401,"internalCode":2009}'
)
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title><style>body{color:red}</style></head>\r\n"
    b"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)


def test_parse_error_body_cloudflare_envelope() -> None:
    code, message = parse_error_body(ENVELOPE_5006)
    assert code == 5006
    assert message.startswith("AiError: Bad input: Error: oneOf at '/' not met")
    assert error_class(400, code, message) is BadRequestError


def test_parse_error_body_gateway_error_array() -> None:
    assert parse_error_body(GATEWAY_2009) == (2009, "Unauthorized")
    assert error_class(401, 2009, "Unauthorized") is AuthenticationError


def test_parse_error_body_openai_string_code_kept_in_message() -> None:
    body = json.dumps(
        {
            "error": {
                "message": "This model's maximum context length is 8192 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
    ).encode()
    code, message = parse_error_body(body)
    assert code is None
    assert message == "context_length_exceeded: This model's maximum context length is 8192 tokens."
    assert error_class(400, code, message) is ContextLengthExceededError


def test_parse_error_body_openai_int_code_and_type_only() -> None:
    assert parse_error_body(b'{"error":{"message":"busy","code":3040}}') == (3040, "busy")
    assert parse_error_body(b'{"error":{"message":"nope","type":"invalid_request_error","code":null}}') == (
        None,
        "invalid_request_error: nope",
    )


def test_parse_error_body_anthropic() -> None:
    body = b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens"}}'
    code, message = parse_error_body(body)
    assert code is None
    assert message == "invalid_request_error: prompt is too long: 210000 tokens"
    assert error_class(400, code, message) is ContextLengthExceededError


def test_parse_error_body_html_and_text() -> None:
    assert parse_error_body(HTML_502) == (None, "502 Bad Gateway")
    code, message = parse_error_body(b"<html><body><p>Upstream <b>exploded</b></p><script>x()</script></body></html>")
    assert (code, message) == (None, "Upstream exploded")
    assert parse_error_body(b"<html><body></body></html>") == (None, "HTTP error with an HTML body")
    assert parse_error_body(b"upstream connect error " * 30)[1] == ("upstream connect error " * 30).strip()[:200]
    assert parse_error_body(b"") == (None, "HTTP error with an empty body")


def test_parse_error_body_never_raises() -> None:
    for body in (b"\xff\xfe\x00garbage", b"[]", b"null", b"42", b'{"errors":[]}', b'{"error":[1]}', b'"text"'):
        code, message = parse_error_body(body)
        assert code is None or isinstance(code, int)
        assert isinstance(message, str) and message


def test_api_error_from_statuses() -> None:
    err = api_error_from({"errors": [{"message": "Capacity temporarily exceeded, please try again.", "code": 3040}]})
    assert isinstance(err, CapacityError) and err.status == 429 and err.code == 3040
    err = api_error_from({"errors": [{"message": "daily free allocation", "code": 3036}]})
    assert isinstance(err, QuotaExceededError) and err.status == 429
    err = api_error_from({"errors": [{"message": "Request timeout", "code": 3007}]}, model="@cf/x")
    assert isinstance(err, ServerError) and err.status == 408 and err.model == "@cf/x"
    err = api_error_from({"errors": [{"message": "bad", "code": 5006}]})
    assert isinstance(err, BadRequestError) and err.status == 400
    err = api_error_from({"error": {"message": "boom", "type": "server_error"}})
    assert isinstance(err, ServerError) and err.status == 500
    err = api_error_from({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert isinstance(err, ServerError) and err.status == 529
    err = api_error_from({"error": [{"code": 2009, "message": "Unauthorized"}], "httpCode": 401})
    assert isinstance(err, AuthenticationError) and err.status == 401
    assert api_error_from({"result": {}, "errors": [], "success": True}) is None
    assert api_error_from({"choices": [], "error": None}) is None


def test_apply_stop() -> None:
    assert apply_stop("hello world. bye", ["."]) == ("hello world", True)
    assert apply_stop("a END b STOP c", ["STOP", "END"]) == ("a ", True)  # earliest occurrence wins
    assert apply_stop("nothing here", ["zzz"]) == ("nothing here", False)
    assert apply_stop("text", None) == ("text", False)
    assert apply_stop("text", ["", "q"]) == ("text", False)


def test_parse_arguments() -> None:
    assert parse_arguments({"a": 1}) == {"a": 1}
    assert parse_arguments('{"a": [1, 2]}') == {"a": [1, 2]}
    assert parse_arguments("") == {} and parse_arguments(None) == {}
    with pytest.raises(MalformedResponseError, match="not JSON"):
        parse_arguments('{"a": ', name="f")
    with pytest.raises(MalformedResponseError, match="not a JSON object"):
        parse_arguments("[1, 2]")


def test_parse_tool_call_both_shapes_and_generated_id() -> None:
    flat = parse_tool_call({"name": "getWeather", "arguments": {"latitude": "51.5"}})
    assert flat.name == "getWeather" and flat.arguments == {"latitude": "51.5"}
    assert flat.id.startswith("call_") and len(flat.id) == 29
    assert new_tool_call_id() != new_tool_call_id()
    oa = parse_tool_call({"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}})
    assert (oa.id, oa.name, oa.arguments) == ("c1", "f", {"x": 1})
    with pytest.raises(MalformedResponseError):
        parse_tool_call({"arguments": {}})


def test_flatten_content() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert flatten_content(parts) == "ab"
    assert flatten_content(None) == ""
    mixed = flatten_content([{"type": "text", "text": "look"}, {"type": "image_url", "image_url": "https://x/i.png"}])
    assert mixed == [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "https://x/i.png"}}]


def test_parse_usage_and_finish() -> None:
    u = parse_usage(
        {
            "prompt_tokens": 147,
            "completion_tokens": 16,
            "total_tokens": 163,
            "prompt_tokens_details": {"cached_tokens": 5},
            "neurons": 1.77,
        }
    )
    assert u is not None
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.cached_tokens, u.neurons) == (147, 16, 163, 5, 1.77)
    assert parse_usage(None) is None
    no_total = parse_usage({"prompt_tokens": 3, "completion_tokens": 4})
    assert no_total is not None and no_total.total_tokens == 7 and no_total.neurons is None
    assert normalise_finish("end_turn") == "stop" and normalise_finish("content_filter") == "content_filter"
    assert normalise_finish(None) is None


def test_select_tools() -> None:
    tools = [ToolSpec("a"), ToolSpec("b")]
    assert [t.name for t in select_tools(tools, "b")] == ["b"]
    with pytest.raises(ValueError, match="'c'"):
        select_tools(tools, "c")
