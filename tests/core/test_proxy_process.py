"""Issue-10 findings and operations against a real `cfgateway proxy` process (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import _proxy_proc
import _redis
import httpx
import pytest

from cfgateway.emulator.config import EmulatorConfig
from cfgateway.emulator.server import EmulatorServer

KEY = "sk-proxy-ops-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MSG = [{"role": "user", "content": "Tell me about Paris"}]


@pytest.fixture(scope="module")
def proxy(cf_emulator_server: Any) -> Iterator[_proxy_proc.ProxyProc]:
    args = ["--api-key", f"ops:{KEY}", "--read-timeout-s", "1", "--max-cached-clients", "32", "--access-log"]
    with _proxy_proc.running(args, _proxy_proc.emulator_env(cf_emulator_server)) as pp:
        yield pp


def raw_http(url: str, request: bytes, wait: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(request)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def test_dns_rebinding_host_is_refused(proxy: _proxy_proc.ProxyProc) -> None:
    r = httpx.get(f"{proxy.base_url}/models", headers={**AUTH, "Host": "attacker.example"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "host_not_allowed"
    assert httpx.get(f"{proxy.base_url}/models", headers={**AUTH, "Host": "localhost:1234"}).status_code == 200


def test_a_body_shorter_than_its_content_length_does_not_hold_the_connection(proxy: _proxy_proc.ProxyProc) -> None:
    port = proxy.url.rsplit(":", 1)[1]
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {KEY}\r\n"
           "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":").encode()
    started = time.monotonic()
    out = raw_http(proxy.url, req)
    assert out.startswith(b"HTTP/1.1 408") and b"request_timeout" in out and time.monotonic() - started < 4


def test_distinct_model_names_do_not_exhaust_file_descriptors(proxy: _proxy_proc.ProxyProc, cf_emulator: Any) -> None:
    with httpx.Client(base_url=proxy.base_url, headers=AUTH) as c:
        c.post("/chat/completions", json={"model": "@cf/meta/warm-up", "messages": MSG})
        before = proxy.fds()
        for i in range(1500):
            r = c.post("/chat/completions", json={"model": f"@cf/meta/no-such-model-{i}", "messages": MSG})
            assert r.status_code == 404
    assert proxy.fds() - before < 10  # one pool: a connection or two to the emulator, not one per name


def test_refuses_a_non_loopback_bind_without_a_key(cf_emulator_server: Any) -> None:
    env = _proxy_proc.emulator_env(cf_emulator_server)
    out = subprocess.run([sys.executable, "-m", "cfgateway", "proxy", "--host", "0.0.0.0", "--port", "1"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "without an API key" in out.stderr


def test_ledger_password_never_reaches_the_log(cf_emulator_server: Any) -> None:
    with _redis.redis_server() as url:
        secret_url = url.replace("redis://", "redis://:hunter2-secret@")
        env = _proxy_proc.emulator_env(cf_emulator_server, CFGATEWAY_LEDGER=secret_url)
        with _proxy_proc.running(["--log-level", "info", "--access-log"], env) as pp:
            httpx.post(f"{pp.base_url}/chat/completions", json={"model": "@cf/meta/llama-3.1-8b-instruct",
                                                                "messages": MSG})
            time.sleep(0.2)
            log = pp.stderr()
    assert "***@127.0.0.1" in log and "hunter2-secret" not in log


def test_health_ready_metrics_and_access_log(proxy: _proxy_proc.ProxyProc, cf_emulator: Any) -> None:
    assert httpx.get(f"{proxy.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{proxy.url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    r = httpx.post(f"{proxy.base_url}/chat/completions", headers=AUTH,
                   json={"model": "@cf/meta/llama-3.1-8b-instruct", "messages": MSG, "user": "u-7"})
    assert r.status_code == 200
    assert httpx.get(f"{proxy.url}/metrics").status_code == 401
    text = httpx.get(f"{proxy.url}/metrics", headers=AUTH).text
    assert 'cfgateway_proxy_requests_total{endpoint="/v1/chat/completions",method="POST",status="200"}' in text
    assert 'cfgateway_proxy_tokens_total{kind="output",model="@cf/meta/llama-3.1-8b-instruct"}' in text
    assert "cfgateway_proxy_request_seconds_bucket" in text and "cfgateway_proxy_cost_usd_total" in text
    lines = [json.loads(x) for x in proxy.stderr().splitlines() if x.startswith("{")]
    chat = [x for x in lines if x["path"] == "/v1/chat/completions" and x["status"] == 200]
    assert chat and chat[-1]["user"] == "ops" and chat[-1]["model"] == "@cf/meta/llama-3.1-8b-instruct"
    assert KEY not in proxy.stderr() and "Paris" not in proxy.stderr()


def test_readyz_reports_an_unreachable_upstream(cf_emulator_server: Any) -> None:
    env = _proxy_proc.emulator_env(cf_emulator_server, CLOUDFLARE_API_BASE_URL=f"http://127.0.0.1:{_redis.free_port()}")
    with _proxy_proc.running([], env) as pp:
        r = httpx.get(f"{pp.url}/readyz")
    assert r.status_code == 503 and r.json()["status"] == "unready"


def test_graceful_shutdown_finishes_in_flight_streams_and_workers() -> None:
    with EmulatorServer(EmulatorConfig(stream_delay_s=0.05)) as slow:
        pp = _proxy_proc.start(["--workers", "2"], _proxy_proc.emulator_env(slow))
        got: dict[str, Any] = {}

        def read() -> None:
            body = {"model": "@cf/meta/llama-3.1-8b-instruct", "messages": [{"role": "user", "content": "count to 40"}],
                    "stream": True}
            with httpx.stream("POST", f"{pp.base_url}/chat/completions", json=body, timeout=30) as r:
                got["text"] = "".join(r.iter_text())

        t = threading.Thread(target=read)
        t.start()
        time.sleep(0.5)  # the stream is under way (about 40 events, 50 ms apart)
        code = _proxy_proc.stop(pp, signal.SIGTERM)
        t.join(30)
    assert code == 0 and got["text"].rstrip().endswith("data: [DONE]") and "40" in got["text"]
