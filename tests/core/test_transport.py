"""Transport: retries, Retry-After, error mapping, event-loop safety (httpx.MockTransport, no sockets)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from cfgateway import errors as e
from cfgateway.http.transport import RetryPolicy, Transport

OK = json.dumps({"result": {"response": "hi"}, "success": True, "errors": [], "messages": []}).encode()


def cf_error(status: int, code: int, msg: str = "x", headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"errors": [{"code": code, "message": msg}], "success": False, "result": {}, "messages": []}
    return httpx.Response(status, json=body, headers=headers or {})


class Script:
    """Answers a scripted list of responses (or exceptions), then OK forever; counts calls."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.answers:
            a = self.answers.pop(0)
            if isinstance(a, Exception):
                raise a
            assert isinstance(a, httpx.Response)
            return a
        return httpx.Response(200, content=OK)


def make(script: Script, retries: int = 2) -> Transport:
    policy = RetryPolicy(max_retries=retries, backoff_base=0.001, backoff_max=0.002)
    return Transport(policy=policy, transport=httpx.MockTransport(script), async_transport=httpx.MockTransport(script))


@pytest.mark.parametrize(
    "first",
    [
        cf_error(429, 3040, "Capacity temporarily exceeded"),
        cf_error(500, 0, "boom"),
        httpx.Response(502, text="<html>bad gateway</html>"),
        cf_error(429, 2003, "Rate limited"),
    ],
)
def test_retryable_answers_are_retried(first: httpx.Response) -> None:
    s = Script(first)
    r = make(s).post("http://127.0.0.1/x", {}, b"{}")
    assert r.status == 200 and s.calls == 2


def test_connection_errors_are_retried_then_mapped() -> None:
    s = Script(*(httpx.ConnectError("refused") for _ in range(5)))
    with pytest.raises(e.ConnectionError, match="ConnectError"):
        make(s, retries=2).post("http://127.0.0.1/x", {}, b"{}", model="m")
    assert s.calls == 3


@pytest.mark.parametrize(
    ("answer", "cls"),
    [
        (cf_error(400, 5006, "AiError: Bad input"), e.BadRequestError),
        (cf_error(429, 3036, "daily free allocation"), e.QuotaExceededError),
        (cf_error(401, 10000, "Authentication error"), e.AuthenticationError),
        (cf_error(400, 5007, "No such model"), e.NotFoundError),
    ],
)
def test_non_retryable_errors_raise_at_once(answer: httpx.Response, cls: type) -> None:
    s = Script(answer)
    with pytest.raises(cls):
        make(s).post("http://127.0.0.1/x", {}, b"{}")
    assert s.calls == 1


def test_retry_after_is_honoured() -> None:
    s = Script(cf_error(429, 3040, headers={"retry-after": "0.2"}))
    start = time.monotonic()
    make(s).post("http://127.0.0.1/x", {}, b"{}")
    assert time.monotonic() - start >= 0.2 and s.calls == 2


def test_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    s = Script(cf_error(429, 3040, headers={"retry-after": "30"}))
    start = time.monotonic()
    with pytest.raises(e.CapacityError) as info:
        make(s).post("http://127.0.0.1/x", {}, b"{}", deadline=time.monotonic() + 1)
    assert time.monotonic() - start < 0.5 and info.value.retry_after == 30


def test_timeout_maps_to_typed_error() -> None:
    s = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(e.TimeoutError, match="ReadTimeout"):
        make(s, retries=0).post("http://127.0.0.1/x", {}, b"{}", model="m")


def test_policy_backoff_grows_and_caps() -> None:
    p = RetryPolicy(max_retries=5, backoff_base=1, backoff_max=4)
    err = e.ServerError("x", status=500)
    assert all(0 <= p.delay(i, err) <= min(4, 2**i) for i in range(5) for _ in range(20))  # type: ignore[operator]
    assert p.delay(5, err) is None


def test_async_client_survives_new_event_loops() -> None:
    s = Script()
    t = make(s)

    async def call() -> int:
        return (await t.apost("http://127.0.0.1/x", {}, b"{}")).status

    assert asyncio.run(call()) == 200
    assert asyncio.run(call()) == 200  # a second loop: a fresh pooled client, no "Event loop is closed"
    assert s.calls == 2


def test_async_retries_share_the_policy() -> None:
    s = Script(cf_error(503, 0), cf_error(429, 3040))
    t = make(s)
    assert asyncio.run(t.apost("http://127.0.0.1/x", {}, b"{}")).status == 200
    assert s.calls == 3


def test_stream_retries_before_the_first_byte() -> None:
    s = Script(cf_error(429, 3040))
    t = make(s)
    with t.stream("http://127.0.0.1/x", {}, b"{}") as (_headers, it):
        data = b"".join(it)
    assert data == OK and s.calls == 2


def test_each_loops_client_closes_with_its_loop(cf_emulator: Any) -> None:
    """``asyncio.run`` per call must not keep a client, its loop and its sockets per call (an fd leak)."""
    import gc
    import os
    import warnings

    t = Transport()
    url = f"{cf_emulator.base_url}/accounts/acct/ai/run/@cf/meta/llama-3.1-8b-instruct"
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
    seen: list[httpx.AsyncClient] = []

    async def call() -> int:
        seen.append(t.async_client)
        return (await t.apost(url, {"Authorization": "Bearer t"}, body)).status

    assert asyncio.run(call()) == 200  # warm: the emulator's own sockets exist from here on
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(30):
            assert asyncio.run(call()) == 200
        gc.collect()
    assert len(t._async) == 0 and all(c.is_closed for c in seen)
    assert len(os.listdir("/proc/self/fd")) <= fds + 2
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_loop_closed_by_hand_is_forgotten_on_the_next_loop() -> None:
    s = Script()
    t = make(s)

    async def call() -> int:
        return (await t.apost("http://127.0.0.1/x", {}, b"{}")).status

    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(call()) == 200
    loop.close()  # no shutdown_asyncgens: its client could not close itself
    assert len(t._async) == 1
    assert asyncio.run(call()) == 200
    assert len(t._async) == 0 and s.calls == 2


def test_aclose_closes_this_loops_client() -> None:
    t = make(Script())

    async def run() -> tuple[httpx.AsyncClient, int]:
        client = t.async_client
        await t.aclose()
        return client, len(t._async)

    client, left = asyncio.run(run())
    assert client.is_closed and left == 0


def test_request_any_method_with_retries() -> None:
    seen: list[tuple[str, bytes]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append((req.method, req.content))
        if len(seen) == 1:
            return httpx.Response(503, json={"errors": [{"code": 3043, "message": "busy"}]})
        return httpx.Response(200, json={"result": {"ok": True}})

    t = Transport(transport=httpx.MockTransport(handler), policy=RetryPolicy(max_retries=1, backoff_base=0.0))
    r = t.request("GET", "https://api.example/x", {})
    assert r.status == 200 and seen == [("GET", b""), ("GET", b"")]

    async def run() -> int:
        t2 = Transport(async_transport=httpx.MockTransport(lambda req: httpx.Response(204)))
        return (await t2.arequest("DELETE", "https://api.example/x", {})).status

    assert asyncio.run(run()) == 204
