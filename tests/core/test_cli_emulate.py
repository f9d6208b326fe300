"""``cfgateway emulate`` as the user's stand-in: an authenticated gateway with stored provider keys from flags or
from the user's own profile, and the env lines that point an app at it (no secret printed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cfgateway import AuthenticationError, Client
from cfgateway.cli import build_parser
from cfgateway.cli._emulate import emulator_config, env_lines
from cfgateway.types import ChatRequest, Message

pytestmark = pytest.mark.usefixtures("cf_clean_env")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def emulate(*flags: str, env: dict[str, str] | None = None) -> Iterator[tuple[dict[str, str], str]]:
    """Run ``cfgateway emulate`` in a subprocess; yield (the exported variables, everything it printed)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cfgateway", "emulate", "--port", str(port), *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"PATH": "/usr/bin:/bin", **(env or {})})
    try:
        deadline, printed = time.monotonic() + 30, ""
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/__emulator/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise AssertionError("the emulator did not start")
        os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
        printed = proc.stdout.read() or ""  # type: ignore[union-attr]
        exported = dict(line.strip()[len("export "):].split("   #")[0].split("=", 1)
                        for line in printed.splitlines() if line.strip().startswith("export "))
        yield exported, printed
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _settings(exported: dict[str, str], **extra: str) -> dict[str, str]:
    names = {"CLOUDFLARE_API_BASE_URL": "base_url", "CLOUDFLARE_AI_GATEWAY_BASE_URL": "gateway_base_url",
             "CLOUDFLARE_ACCOUNT_ID": "account_id", "CLOUDFLARE_API_TOKEN": "api_token",
             "CLOUDFLARE_AI_GATEWAY_ID": "gateway_id"}
    return {**{names[k]: v for k, v in exported.items()}, **extra}


def test_stored_keys_gateway_answers_provider_calls_with_only_the_gateway_token() -> None:
    with emulate("--gateway", "gw", "--gateway-token", "gw-s3cret", "--stored-keys") as (exported, printed):
        assert "gw-s3cret" not in printed and exported["CLOUDFLARE_AI_GATEWAY_ID"] == "gw"
        assert "CLOUDFLARE_AI_GATEWAY_TOKEN: the gateway token you configured" in printed
        kw = _settings(exported, gateway_token="gw-s3cret")
        answer = Client("openai/gpt-4o-mini", **kw).chat(ChatRequest([Message("user", "hi")], max_tokens=4))
        assert answer.text == "You said: hi"
        with pytest.raises(AuthenticationError, match="AI Gateway rejected the gateway token"):
            Client("openai/gpt-4o-mini", **{**kw, "gateway_token": "wrong"}).chat(
                ChatRequest([Message("user", "hi")], max_tokens=4))
        with pytest.raises(Exception, match="2001|does not exist"):  # only the named gateway exists
            Client("openai/gpt-4o-mini", **{**kw, "gateway_id": "other"}).chat(
                ChatRequest([Message("user", "hi")], max_tokens=4))


def test_plain_emulate_is_a_gateway_without_stored_keys_and_says_so() -> None:
    with emulate() as (exported, printed):
        assert "no stored provider keys" in printed and exported["CLOUDFLARE_API_TOKEN"] == "emulator-token"
        kw = _settings(exported, gateway_id="gw", gateway_token="t")
        with pytest.raises(AuthenticationError, match="provider rejected its key.*stored in the gateway"):
            Client("openai/gpt-4o-mini", **kw).chat(ChatRequest([Message("user", "hi")], max_tokens=4))


def test_from_config_emulates_the_users_own_profile(tmp_path: Path) -> None:
    cfg = tmp_path / "cfgateway.toml"
    cfg.write_text('[profiles.prod]\naccount_id = "my-acct"\ngateway_id = "prod-gw"\napi_token_env = "CF_TOK"\n'
                   'gateway_token_env = "GW_TOK"\nchat_model = "anthropic/claude-sonnet-4-5"\n'
                   'base_url = "https://api.cloudflare.com/client/v4"\n')
    user_env = {"CFGATEWAY_CONFIG": str(cfg), "CFGATEWAY_PROFILE": "prod", "CF_TOK": "real-api-s3cret",
                "GW_TOK": "real-gw-s3cret"}
    with emulate("--from-config", env=user_env) as (exported, printed):
        assert "real-api-s3cret" not in printed and "real-gw-s3cret" not in printed
        assert exported["CLOUDFLARE_ACCOUNT_ID"] == "my-acct" and exported["CLOUDFLARE_AI_GATEWAY_ID"] == "prod-gw"
        # The app runs unchanged: its own profile plus the printed base URLs (env beats the profile).
        app_env = {"PATH": "/usr/bin:/bin", **user_env, **exported}
        code = ("from cfgateway import connect\nfrom cfgateway.types import ChatRequest, Message\n"
                "print(connect('chat').chat(ChatRequest([Message('user', 'hello')], max_tokens=8)).text)")
        out = subprocess.run([sys.executable, "-c", code], env=app_env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "You said: hello", out.stderr
        bad = {**app_env, "CF_TOK": "wrong"}
        code_ai = code.replace("connect('chat')", "connect('chat', '@cf/meta/llama-3.1-8b-instruct')")
        out = subprocess.run([sys.executable, "-c", code_ai], env=bad, capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "Cloudflare rejected the API token" in out.stderr


def test_flags_that_need_a_gateway_say_so() -> None:
    args = build_parser().parse_args(["emulate", "--stored-keys"])
    with pytest.raises(SystemExit, match="add --gateway ID"):
        emulator_config(args)
    args = build_parser().parse_args(["emulate", "--gateway", "gw", "--dynamic-route", "nonsense"])
    with pytest.raises(SystemExit, match="NAME=MODEL"):
        emulator_config(args)
    args = build_parser().parse_args(["emulate", "--gateway", "gw", "--api-token", "tok", "--account-id", "a1",
                                      "--dynamic-route", "support=openai/gpt-4o-mini"])
    config = emulator_config(args)
    assert config.api_token == "tok" and config.gateways["gw"].dynamic_routes == {"support": "openai/gpt-4o-mini"}
    lines = env_lines(config, "http://127.0.0.1:1")
    assert "export CLOUDFLARE_ACCOUNT_ID=a1" in lines and not any("tok" in line.split("#")[0] for line in lines)


def test_the_readme_proxy_alias_example_works_against_emulate_with_stored_keys(tmp_path: Path) -> None:
    """README: `cfgateway proxy --port 8080 --alias fast=@cf/meta/llama-3.1-8b-instruct-fp8-fast,openai/gpt-4o-mini`,
    pointed at `cfgateway emulate --gateway gw --gateway-token T --stored-keys` by the lines it prints."""
    with emulate("--gateway", "gw", "--gateway-token", "gw-s3cret", "--stored-keys") as (exported, _):
        port = _free_port()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **exported, "CLOUDFLARE_AI_GATEWAY_TOKEN": "gw-s3cret"}
        proxy = subprocess.Popen(
            [sys.executable, "-m", "cfgateway", "proxy", "--port", str(port),
             "--alias", "fast=@cf/meta/llama-3.1-8b-instruct-fp8-fast,openai/gpt-4o-mini"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            base = f"http://127.0.0.1:{port}/v1"
            for _ in range(300):
                try:
                    httpx.get(f"{base}/models", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            emu_url = exported["CLOUDFLARE_API_BASE_URL"].removesuffix("/client/v4")
            httpx.post(f"{emu_url}/__emulator/faults",
                       json={"path": "*/workers-ai/*", "kind": "error", "status": 429, "code": 3040})
            body = {"model": "fast", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
            answer = httpx.post(f"{base}/chat/completions", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"] == "You said: hello"
            paths = [r["path"] for r in httpx.get(f"{emu_url}/__emulator/requests").json()]
            assert paths[-1] == "/v1/acct/gw/openai/chat/completions"  # the fallback answered, with stored keys
        finally:
            proxy.send_signal(signal.SIGINT)
            try:
                proxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proxy.kill()
