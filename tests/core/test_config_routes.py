"""Routes in configuration (issue 11): models, fallbacks, rollout, options, budgets from env or a profile;
secrets by env reference; where each value came from; which file is read (issue 14)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cfgateway import ConfigError
from cfgateway.config import describe, load_settings
from cfgateway.connection import Connection, resolve_connection, tracker_for
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.fallback import build_model_client, connect
from cfgateway.types import ChatRequest, Message

pytestmark = pytest.mark.usefixtures("cf_clean_env")

PROFILE = """
account_id = "acct"
api_token_env = "MY_CF_TOKEN"

[profiles.prod]
gateway_id = "gw"
gateway_token_env = "MY_GW_TOKEN"
chat_model = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
embed_model = "@cf/baai/bge-m3"
fallbacks = ["openai/gpt-4o-mini"]
embed_fallbacks = ["openai/text-embedding-3-small"]
embed_dimensions = 1024
fallback_mode = "client"
rollout = [{model = "@cf/google/gemma-4-26b-a4b-it", percent = 10}]
gateway_options = {cache_ttl = 300, metadata = {app = "rag"}}
budgets = [{limit = 500, window = "monthly", alerts = [100, 300]}]
"""


def _file(tmp_path: Path, text: str = PROFILE) -> Path:
    path = tmp_path / "cfgateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_profile_names_what_the_app_runs_on_and_where_each_value_came_from(tmp_path: Path) -> None:
    env = {"CFGATEWAY_CONFIG": str(_file(tmp_path)), "MY_CF_TOKEN": "cf-secret", "MY_GW_TOKEN": "gw-secret",
           "CFGATEWAY_FALLBACKS": "groq/llama-3.1-8b-instant, openai/gpt-4o-mini"}
    s = load_settings(env=env, profile="prod", timeout=9)
    assert s.chat_model == "@cf/meta/llama-3.3-70b-instruct-fp8-fast" and s.embed_model == "@cf/baai/bge-m3"
    assert s.fallbacks == ("groq/llama-3.1-8b-instant", "openai/gpt-4o-mini")  # env beats the file
    assert s.embed_fallbacks == ("openai/text-embedding-3-small",) and s.embed_dimensions == 1024
    assert s.api_token is not None and s.api_token.get_secret_value() == "cf-secret"
    assert s.rollout == ({"model": "@cf/google/gemma-4-26b-a4b-it", "percent": 10.0},)
    assert s.budgets[0]["limit"] == "500" and s.budgets[0]["alerts"] == ["100", "300"]
    src = dict((n, source) for n, _, source in describe(s))
    assert src["fallbacks"] == "env CFGATEWAY_FALLBACKS" and src["timeout"] == "argument"
    assert src["chat_model"].endswith("[profiles.prod]") and src["account_id"] == f"file {tmp_path / 'cfgateway.toml'}"
    assert "via env MY_CF_TOKEN" in src["api_token"] and src["byok"] == "default"
    shown = repr(describe(s)) + repr(s)
    assert "cf-secret" not in shown and "gw-secret" not in shown


def test_env_alone_names_models_fallbacks_byok_and_rollout() -> None:
    env = {"CFGATEWAY_CHAT_MODEL": "openai/gpt-4o-mini", "CFGATEWAY_EMBED_MODEL": "@cf/baai/bge-base-en-v1.5",
           "CFGATEWAY_EMBED_FALLBACKS": "openai/text-embedding-3-small", "CFGATEWAY_BYOK": "0",
           "CFGATEWAY_ROLLOUT": "aws-bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0:50",
           "CFGATEWAY_EMBED_DIMENSIONS": "768", "CFGATEWAY_ENDPOINT": "compat", "CFGATEWAY_FALLBACK_MODE": "gateway"}
    s = load_settings(env=env)
    assert (s.chat_model, s.byok, s.endpoint, s.fallback_mode) == ("openai/gpt-4o-mini", False, "compat", "gateway")
    assert s.rollout[0] == {"model": "aws-bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0", "percent": 50.0}
    assert s.embed_fallbacks == ("openai/text-embedding-3-small",) and s.embed_dimensions == 768


@pytest.mark.parametrize(("env", "match"), [
    ({"CFGATEWAY_BYOK": "maybe"}, "byok must be true or false"),
    ({"CFGATEWAY_ENDPOINT": "sideways"}, "endpoint must be one of"),
    ({"CFGATEWAY_FALLBACK_MODE": "both"}, "fallback_mode must be one of"),
    ({"CFGATEWAY_ROLLOUT": "@cf/meta/x"}, "MODEL:PERCENT"),
    ({"CFGATEWAY_ROLLOUT": "@cf/meta/x:150"}, "from 0 to 100"),
    ({"CFGATEWAY_EMBED_DIMENSIONS": "-3"}, "must be positive"),
])
def test_bad_values_name_the_setting(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_settings(env=env)


@pytest.mark.parametrize(("line", "match"), [
    ('gateway_options = {cache_tl = 5}', "gateway_options: unknown key.*cache_tl.*cache_ttl"),
    ('budgets = [{limit = "lots"}]', "budget limit must be an amount"),
    ('budgets = [{window = "daily"}]', "needs a limit"),
    ('budgets = [{limit = 5, windw = "daily"}]', "budget: unknown key"),
    ('api_token_env = "NOT_SET_ANYWHERE"', "api_token_env names NOT_SET_ANYWHERE, which is not set"),
    ('model = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"', "unknown setting.*model;.*chat_model"),
])
def test_bad_file_values_name_the_key(tmp_path: Path, line: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_settings(env={"CFGATEWAY_CONFIG": str(_file(tmp_path, line + "\n"))})


def test_an_env_token_makes_a_missing_reference_harmless(tmp_path: Path) -> None:
    path = _file(tmp_path, 'api_token_env = "NOT_SET_ANYWHERE"\n')
    s = load_settings(env={"CFGATEWAY_CONFIG": str(path), "CLOUDFLARE_API_TOKEN": "x"})
    assert s.api_token is not None and s.sources["api_token"] == "env CLOUDFLARE_API_TOKEN"


def test_working_directory_file_is_read_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _file(tmp_path, 'account_id = "cwd-acct"\n[profiles.p]\ngateway_id = "cwd-gw"\n')
    assert load_settings(env={}).account_id is None and load_settings(env={}).config_path is None
    s = load_settings(env={"CFGATEWAY_PROFILE": "p"})
    assert (s.account_id, s.gateway_id, s.config_path) == ("cwd-acct", "cwd-gw", "cfgateway.toml")
    assert load_settings(env={"CFGATEWAY_CONFIG": "cfgateway.toml"}).account_id == "cwd-acct"
    assert load_settings(env={}, config="cfgateway.toml").account_id == "cwd-acct"
    (tmp_path / "cfgateway.toml").unlink()
    with pytest.raises(ConfigError, match="no ./cfgateway.toml: set CFGATEWAY_CONFIG"):
        load_settings(env={}, profile="p")


def test_connection_takes_models_fallbacks_and_options_from_the_profile(tmp_path: Path) -> None:
    env = {"CFGATEWAY_CONFIG": str(_file(tmp_path)), "MY_CF_TOKEN": "t", "MY_GW_TOKEN": "g"}
    s = load_settings(env=env, profile="prod")
    chat = resolve_connection("chat", settings=s)
    assert (chat.model, chat.fallbacks, chat.sources["model"]) == (s.chat_model, ("openai/gpt-4o-mini",),
                                                                   f"file {env['CFGATEWAY_CONFIG']} [profiles.prod]")
    assert chat.gateway_options is not None and chat.gateway_options.cache_ttl == 300
    assert chat.rollout[0].new_route == "@cf/google/gemma-4-26b-a4b-it" and chat.rollout[0].percent == 10
    embed = resolve_connection("embed", settings=s)
    assert (embed.model, embed.fallbacks, embed.dimensions) == ("@cf/baai/bge-m3", ("openai/text-embedding-3-small",),
                                                                1024)
    override = resolve_connection("chat", model="groq/llama-3.1-8b-instant", fallbacks=[], settings=s)
    assert (override.model, override.fallbacks, override.sources["model"]) == ("groq/llama-3.1-8b-instant", (),
                                                                               "argument")
    with pytest.raises(ConfigError, match="no chat model: pass model=, set CFGATEWAY_CHAT_MODEL"):
        resolve_connection("chat", account_id="a", api_token="t")


def test_profile_budgets_become_one_shared_tracker(tmp_path: Path) -> None:
    s = load_settings(env={"CFGATEWAY_CONFIG": str(_file(tmp_path)), "MY_CF_TOKEN": "t", "MY_GW_TOKEN": "g"},
                      profile="prod")
    tracker = tracker_for(s)
    assert tracker is not None and tracker is tracker_for(s)
    (budget,) = tracker.budgets
    assert budget.limit == Decimal("500") and budget.window == "monthly" and budget.alerts == [Decimal(100),
                                                                                                Decimal(300)]
    assert tracker_for(load_settings(env={})) is None


def test_a_budget_from_the_profile_stops_calls(cf_emulator: EmulatorServer, tmp_path: Path) -> None:
    path = _file(tmp_path, 'budgets = [{limit = "0.0000001", window = "daily"}]\n')
    client = connect("chat", "@cf/meta/llama-3.3-70b-instruct-fp8-fast", config_path=str(path),
                     **cf_emulator.client_kwargs())
    from cfgateway import BudgetExceededError

    with pytest.raises(BudgetExceededError):
        client.chat(ChatRequest([Message("user", "count to 50")], max_tokens=200))


@pytest.fixture(scope="module")
def stored() -> Any:
    """An authenticated gateway holding provider keys (the package's default assumption)."""
    with EmulatorServer(EmulatorConfig(gateways={"gw": GatewayConfig("gw-token")})) as server:
        yield server


def test_connect_runs_on_the_configured_route_with_its_fallback(stored: EmulatorServer,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cf_emulator = stored
    cf_emulator.state.clear()
    for k, v in cf_emulator.client_kwargs(gateway=True).items():
        monkeypatch.setenv({"account_id": "CLOUDFLARE_ACCOUNT_ID", "api_token": "CLOUDFLARE_API_TOKEN",
                            "base_url": "CLOUDFLARE_API_BASE_URL", "gateway_base_url": "CLOUDFLARE_AI_GATEWAY_BASE_URL",
                            "gateway_id": "CLOUDFLARE_AI_GATEWAY_ID",
                            "gateway_token": "CLOUDFLARE_AI_GATEWAY_TOKEN"}[k], v)
    monkeypatch.setenv("CFGATEWAY_CHAT_MODEL", "@cf/meta/llama-3.3-70b-instruct-fp8-fast")
    monkeypatch.setenv("CFGATEWAY_FALLBACKS", "openai/gpt-4o-mini")
    cf_emulator.state.add_fault(Fault(path="*/workers-ai/*", kind="error", status=429, code=3040))
    answer = connect("chat").chat(ChatRequest([Message("user", "hi")], max_tokens=8))
    assert answer.model == "openai/gpt-4o-mini" and answer.text == "You said: hi"
    assert [r.path for r in cf_emulator.state.requests][-1] == "/v1/acct/gw/openai/chat/completions"


def test_build_model_client_passes_dimensions(stored: EmulatorServer) -> None:
    cf_emulator = stored
    cf_emulator.state.clear()
    s = load_settings(env={}, **cf_emulator.client_kwargs(gateway=True))
    conn = Connection("embed", s, "@cf/baai/bge-m3", ("openai/text-embedding-3-small",), dimensions=1024)
    cf_emulator.state.add_fault(Fault(path="*/workers-ai/*", kind="error", status=429, code=3040))
    vectors = build_model_client(conn).embed(["a", "b"]).vectors
    assert len(vectors) == 2 and len(vectors[0]) == 1024
    assert cf_emulator.state.requests[-1].json["dimensions"] == 1024


