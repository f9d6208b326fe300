"""``cfgateway check`` and ``cfgateway config show`` against the emulator: every pass and fail line, the exit
code, and no secret in the output."""

from __future__ import annotations

from typing import Any

import pytest

from cfgateway.cli import main
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer

pytestmark = pytest.mark.usefixtures("cf_clean_env")

API_TOKEN, GW_TOKEN = "api-s3cret-value", "gw-s3cret-value"


@pytest.fixture(scope="module")
def emu() -> Any:
    config = EmulatorConfig(api_token=API_TOKEN, account_id="acct", auto_create_gateways=False,
                            gateways={"gw": GatewayConfig(GW_TOKEN), "open": GatewayConfig()})
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture
def env(emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    emu.state.clear()
    for name, value in {
        "CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": API_TOKEN, "CLOUDFLARE_AI_GATEWAY_ID": "gw",
        "CLOUDFLARE_AI_GATEWAY_TOKEN": GW_TOKEN, "CLOUDFLARE_API_BASE_URL": emu.base_url,
        "CLOUDFLARE_AI_GATEWAY_BASE_URL": emu.gateway_base_url,
        "CFGATEWAY_CHAT_MODEL": "@cf/meta/llama-3.3-70b-instruct-fp8-fast", "CFGATEWAY_FALLBACKS": "openai/gpt-4o-mini",
        "CFGATEWAY_EMBED_MODEL": "@cf/baai/bge-m3", "CFGATEWAY_EMBED_FALLBACKS": "openai/text-embedding-3-small",
        "CFGATEWAY_EMBED_DIMENSIONS": "1024",
    }.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, tuple[str, str]]]:
    code = main(["check", *args])
    out = capsys.readouterr().out
    assert API_TOKEN not in out and GW_TOKEN not in out
    lines = {}
    for line in out.splitlines():
        name, _, detail = line[6:].partition(": ")
        lines[name] = (line[:4].strip(), detail)
    return code, lines


def test_everything_passes_against_a_matching_setup(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _check(capsys)
    assert code == 0, lines
    for name in ("configuration", "api token", "account", "gateway", "gateway token",
                 "chat @cf/meta/llama-3.3-70b-instruct-fp8-fast", "chat openai/gpt-4o-mini", "embed @cf/baai/bge-m3",
                 "embed openai/text-embedding-3-small", "embedding dimensions"):
        assert lines[name][0] == "PASS", (name, lines)
    assert "(1024 dims)" in lines["embed openai/text-embedding-3-small"][1]
    assert "exists (authenticated)" in lines["gateway"][1]


def test_no_calls_skips_the_model_calls(env: Any, emu: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _check(capsys, "--no-calls")
    assert code == 0 and lines["chat openai/gpt-4o-mini"][0] == "SKIP"
    assert not any("/ai/run/" in r.path or "chat/completions" in r.path for r in emu.state.requests)


@pytest.mark.parametrize(("changes", "name", "status", "words"), [
    ({"CLOUDFLARE_API_TOKEN": "wrong"}, "api token", "FAIL", "rejected.*CLOUDFLARE_API_TOKEN"),
    ({"CLOUDFLARE_API_TOKEN": "wrong"}, "account", "SKIP", "token was rejected"),
    ({"CLOUDFLARE_ACCOUNT_ID": "other"}, "account", "FAIL", "other not found.*CLOUDFLARE_ACCOUNT_ID"),
    ({"CLOUDFLARE_AI_GATEWAY_ID": "nope"}, "gateway", "FAIL", "nope does not exist.*CLOUDFLARE_AI_GATEWAY_ID"),
    ({"CLOUDFLARE_AI_GATEWAY_TOKEN": "wrong"}, "gateway token", "FAIL", "rejected.*CLOUDFLARE_AI_GATEWAY_TOKEN"),
    ({"CLOUDFLARE_AI_GATEWAY_ID": "open"}, "gateway auth", "FAIL", "does not require cf-aig-authorization"),
    ({"CFGATEWAY_EMBED_DIMENSIONS": None}, "embedding dimensions", "FAIL", "disagrees.*embed_dimensions"),
    ({"CFGATEWAY_CHAT_MODEL": "@cf/../x"}, "configuration", "FAIL", "refused"),
    ({"CFGATEWAY_BYOK": "perhaps"}, "configuration", "FAIL", "byok must be true or false"),
    ({"CFGATEWAY_CHAT_MODEL": None, "CFGATEWAY_EMBED_MODEL": None, "CFGATEWAY_FALLBACKS": None,
      "CFGATEWAY_EMBED_FALLBACKS": None}, "models", "SKIP", "none configured"),
])
def test_each_failing_setup_gets_its_line(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                          changes: dict[str, str | None], name: str, status: str, words: str) -> None:
    import re

    for var, value in changes.items():
        if value is None:
            env.delenv(var)
        else:
            env.setenv(var, value)
    code, lines = _check(capsys)
    assert lines[name][0] == status and re.search(words, lines[name][1]), lines
    assert code == (1 if any(st == "FAIL" for st, _ in lines.values()) else 0)


def test_gateway_token_missing_for_an_authenticated_gateway(env: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    env.delenv("CLOUDFLARE_AI_GATEWAY_TOKEN")
    env.delenv("CFGATEWAY_FALLBACKS")
    env.delenv("CFGATEWAY_EMBED_FALLBACKS")
    code, lines = _check(capsys)
    assert code == 1 and lines["gateway token"][0] == "FAIL" and "requires cf-aig-authorization" in lines[
        "gateway token"][1]


def test_a_model_that_fails_is_named_with_its_hint(env: Any, emu: EmulatorServer,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    emu.state.add_fault(Fault(path="*/openai/chat/completions", kind="error", status=401, message="bad key"))
    code, lines = _check(capsys)
    assert code == 1 and lines["chat openai/gpt-4o-mini"][0] == "FAIL"
    assert "provider rejected its key" in lines["chat openai/gpt-4o-mini"][1]
    assert lines["chat @cf/meta/llama-3.3-70b-instruct-fp8-fast"][0] == "PASS"


def test_config_show_prints_values_and_sources_with_secrets_masked(env: pytest.MonkeyPatch, tmp_path: Any,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "app.toml"
    cfg.write_text('[profiles.prod]\nledger = "redis://:pw-s3cret@127.0.0.1:6399/0"\nembed_dimensions = 512\n'
                   'gateway_token_env = "MY_GW"\n')
    env.setenv("MY_GW", "other-gw-s3cret")
    env.delenv("CFGATEWAY_EMBED_DIMENSIONS")
    env.delenv("CLOUDFLARE_AI_GATEWAY_TOKEN")
    assert main(["config", "show", "--config", str(cfg), "--profile", "prod"]) == 0
    out = capsys.readouterr().out
    for secret in (API_TOKEN, "other-gw-s3cret", "pw-s3cret"):
        assert secret not in out
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "set (hidden)" in rows["api_token"] and "(env CLOUDFLARE_API_TOKEN)" in rows["api_token"]
    assert "via env MY_GW" in rows["gateway_token"] and "redis://***@127.0.0.1:6399/0" in rows["ledger"]
    assert "512" in rows["embed_dimensions"] and "[profiles.prod]" in rows["embed_dimensions"]
    assert "(default)" in rows["timeout"] and "(env CFGATEWAY_CHAT_MODEL)" in rows["chat_model"]


def test_config_show_says_when_a_working_directory_file_is_ignored(env: Any, tmp_path: Any,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfgateway.toml").write_text('timeout = 5\n')
    assert main(["config", "show", "--json"]) == 0
    import json

    rows = {r["setting"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["timeout"]["source"] == "default"
    assert main(["config", "show"]) == 0
    assert "./cfgateway.toml exists but is not read" in capsys.readouterr().out
