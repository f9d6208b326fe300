"""The per-call fast paths keep behaviour: call ids, JSON loading, URL cache, cookie handling."""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import threading

import httpx
import pytest

from cfgateway import errors
from cfgateway import types as calls_ids
from cfgateway.calls.outcome import load_json
from cfgateway.http._pools import URL_CACHE_MAX as _URL_CACHE_MAX
from cfgateway.http.transport import Transport
from cfgateway.types import CallContext, new_call_id


def test_call_ids_are_unique_32_hex_across_threads() -> None:
    out: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        ids = [CallContext().call_id for _ in range(2000)]
        with lock:
            out.extend(ids)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 8000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in out)


def test_call_ids_differ_after_fork_reseed() -> None:
    before = new_call_id()
    prefix = calls_ids._id_prefix
    calls_ids._reseed_ids()  # what a forked child runs
    try:
        after = new_call_id()
        assert calls_ids._id_prefix != prefix
        assert after[:16] != before[:16]
    finally:
        calls_ids._id_prefix = prefix


def test_forked_child_gets_a_new_prefix() -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(w, new_call_id().encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 64).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child[:16] != new_call_id()[:16]


def test_load_json_matches_json_loads_on_odd_encodings() -> None:
    assert load_json(b' {"a": [1, 2]} ', "m") == {"a": [1, 2]}
    assert load_json(codecs.BOM_UTF8 + b'{"a": 1}', "m") == {"a": 1}
    assert load_json('{"a": "\u00e9"}'.encode("utf-16"), "m") == {"a": "\u00e9"}
    assert load_json('{"a": "\u00e9"}'.encode("utf-16-le"), "m") == {"a": "\u00e9"}
    for bad in (b"not json", b'{"a": 1} trailing', b"\xff\xfe\xfd", b""):
        with pytest.raises(errors.MalformedResponseError):
            load_json(bad, "m")


def _echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"url": str(request.url), "cookie": request.headers.get("cookie")})


def test_url_cache_is_bounded_and_sends_the_same_url() -> None:
    tp = Transport(transport=httpx.MockTransport(_echo), max_retries=0)
    for i in range(_URL_CACHE_MAX + 10):
        url = f"http://127.0.0.1:9/a/{i}?q=%20x"
        r = tp.post(url, {}, b"{}")
        assert load_json(r.content, "m")["url"] == url
        assert len(tp._urls) <= _URL_CACHE_MAX


def test_cookies_set_by_a_response_are_still_sent_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/set":
            return httpx.Response(200, headers={"set-cookie": "sid=abc; Path=/"}, json={})
        return _echo(request)

    tp = Transport(transport=httpx.MockTransport(handler), async_transport=httpx.MockTransport(handler))
    assert load_json(tp.post("http://127.0.0.1:9/x", {}, b"{}").content, "m")["cookie"] is None
    tp.post("http://127.0.0.1:9/set", {}, b"{}")
    assert load_json(tp.post("http://127.0.0.1:9/x", {}, b"{}").content, "m")["cookie"] == "sid=abc"

    async def run() -> tuple[object, object]:
        first = load_json((await tp.apost("http://127.0.0.1:9/x", {}, b"{}")).content, "m")["cookie"]
        await tp.apost("http://127.0.0.1:9/set", {}, b"{}")
        second = load_json((await tp.apost("http://127.0.0.1:9/x", {}, b"{}")).content, "m")["cookie"]
        await tp.aclose()
        return first, second

    assert asyncio.run(run()) == (None, "sid=abc")


def test_one_verifying_ssl_context_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Transports and per-loop async clients share one context instead of reloading CA certificates."""
    from cfgateway.http import _pools as tr

    made: list[object] = []
    real = httpx.create_ssl_context

    def counting(*a: object, **k: object) -> object:
        ctx = real()
        made.append(ctx)
        return ctx

    monkeypatch.setattr(tr, "_SSL_CONTEXT", [])
    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    transports = [Transport() for _ in range(3)]
    for t in transports:
        assert t.sync_client is t.sync_client

    async def open_client(t: Transport) -> httpx.AsyncClient:
        client = t.async_client
        await t.aclose()
        return client

    for t in transports:
        asyncio.run(open_client(t))
        asyncio.run(open_client(t))
        t.close()
    assert len(made) == 1
    ctx = tr.ssl_context()
    assert ctx is made[0]
    assert ctx.verify_mode.name == "CERT_REQUIRED" and ctx.check_hostname  # still verifies servers
