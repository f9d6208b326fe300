"""``cfgateway chat`` takes the options its own errors name: the model from configuration, --no-byok, --gateway-id,
--fallback, --profile/--config."""

from __future__ import annotations

from typing import Any

import pytest

from cfgateway.cli import main
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer

pytestmark = pytest.mark.usefixtures("cf_clean_env")


@pytest.fixture(scope="module")
def emu() -> Any:
    config = EmulatorConfig(gateways={"gw": GatewayConfig("gw-token"), "open": GatewayConfig()},
                            auto_create_gateways=False)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture
def env(emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    emu.state.clear()
    for name, value in {"CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": "t",
                        "CLOUDFLARE_API_BASE_URL": emu.base_url,
                        "CLOUDFLARE_AI_GATEWAY_BASE_URL": emu.gateway_base_url}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_model_from_the_environment(env: Any, emu: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("CFGATEWAY_CHAT_MODEL", "@cf/meta/llama-3.1-8b-instruct")
    assert main(["chat", "hello"]) == 0
    assert capsys.readouterr().out.strip() == "You said: hello"
    assert emu.state.requests[0].path == "/client/v4/accounts/acct/ai/run/@cf/meta/llama-3.1-8b-instruct"


def test_the_options_the_byok_error_names(env: Any, emu: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "openai/gpt-4o-mini", "hi", "--gateway-id", "open"]) == 1
    err = capsys.readouterr().err
    assert "CLOUDFLARE_AI_GATEWAY_TOKEN" in err and "byok=False (CFGATEWAY_BYOK=0" in err
    env.setenv("OPENAI_API_KEY", "sk-test")
    assert main(["chat", "openai/gpt-4o-mini", "hi", "--gateway-id", "open", "--no-byok"]) == 0
    assert capsys.readouterr().out.strip() == "You said: hi"
    assert emu.state.requests[-1].headers["authorization"] == "Bearer sk-test"


def test_fallback_and_profile_options(env: Any, emu: EmulatorServer, tmp_path: Any,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[profiles.p]\ngateway_id = "gw"\ngateway_token_env = "GW"\n'
                   'chat_model = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"\nchat_defaults = {max_tokens = 12}\n')
    env.setenv("GW", "gw-token")
    emu.state.add_fault(Fault(path="*/workers-ai/*", kind="error", status=429, code=3040))
    assert main(["chat", "hi", "--config", str(cfg), "--profile", "p", "--fallback", "groq/llama-3.1-8b-instant"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "You said: hi" and "groq/llama-3.1-8b-instant" in captured.err
    assert emu.state.requests[-1].json["max_tokens"] == 12
