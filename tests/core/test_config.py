from __future__ import annotations

from pathlib import Path

import pytest

from cfgateway.config import load_settings
from cfgateway.errors import ConfigError
from cfgateway.types import Secret


def test_args_beat_env_beat_file(tmp_path: Path) -> None:
    cfg = tmp_path / "cfgateway.toml"
    cfg.write_text('account_id = "file-acct"\ntimeout = 5\n[profiles.prod]\ngateway_id = "prod-gw"\n')
    env = {"CFGATEWAY_CONFIG": str(cfg), "CLOUDFLARE_ACCOUNT_ID": "env-acct"}
    s = load_settings(env=env, profile="prod")
    assert s.account_id == "env-acct" and s.gateway_id == "prod-gw" and s.timeout == 5.0
    s2 = load_settings(env=env, profile="prod", account_id="arg-acct", gateway_id=None)
    assert s2.account_id == "arg-acct" and s2.gateway_id == "prod-gw"


def test_profile_from_env_and_unknown_profile(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[profiles.a]\ngateway_id = "ga"\n')
    assert load_settings(env={"CFGATEWAY_CONFIG": str(cfg), "CFGATEWAY_PROFILE": "a"}).gateway_id == "ga"
    with pytest.raises(ConfigError, match="profile 'b' is not in .*profiles there: a"):
        load_settings(env={"CFGATEWAY_CONFIG": str(cfg)}, profile="b")


def test_unknown_setting_in_file_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('acount_id = "typo"\n')
    with pytest.raises(ConfigError, match="unknown setting.*acount_id"):
        load_settings(env={"CFGATEWAY_CONFIG": str(cfg)})


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"CFGATEWAY_CONFIG": str(tmp_path / "nope.toml")})


def test_gateway_token_aliases_and_secret_wrapping() -> None:
    for var in ("CLOUDFLARE_AI_GATEWAY_TOKEN", "CF_AIG_TOKEN", "CF_GATEWAY_TOKEN"):
        s = load_settings(env={var: "tok-123", "CLOUDFLARE_API_TOKEN": "api-456"})
        assert isinstance(s.gateway_token, Secret) and s.gateway_token.get_secret_value() == "tok-123"
        assert "tok-123" not in repr(s) and "api-456" not in repr(s) and "api-456" not in str(s)


def test_unprefixed_base_url_is_ignored() -> None:
    s = load_settings(env={"BASE_URL": "https://evil.example", "OPENAI_API_KEY": "sk-x"})
    assert s.base_url == "https://api.cloudflare.com/client/v4"
    assert s.gateway_base_url == "https://gateway.ai.cloudflare.com/v1"
    assert dict(s.provider_keys) == {}  # BYOK by default: provider keys are not read


def test_provider_keys_read_only_without_byok() -> None:
    s = load_settings(env={"OPENAI_API_KEY": "sk-x"}, byok=False)
    assert s.provider_key("openai") == Secret("sk-x")
    assert "sk-x" not in repr(s)


def test_bad_numbers_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="timeout must be a number"):
        load_settings(env={"CFGATEWAY_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="max_retries must be a whole number"):
        load_settings(env={}, max_retries="many")


def test_secret_never_formats_its_value() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in f"{s} {s!r} {s!s} {[s]}"
    assert s.get_secret_value() == "hunter2"


def test_credentials_in_urls_are_never_printed() -> None:
    from cfgateway.config import Settings, redact_url
    from cfgateway.costs.ledger import RedisLedger

    url = "redis://:s3cretpw@127.0.0.1:6390/0"
    assert redact_url(url) == "redis://***@127.0.0.1:6390/0"
    assert redact_url("redis://user:pw@h/0") == "redis://***@h/0"
    assert redact_url("sqlite:///costs.db") == "sqlite:///costs.db"
    s = Settings(ledger=url)
    assert "s3cretpw" not in repr(s) and "redis://***@127.0.0.1:6390/0" in repr(s)
    assert s.ledger == url  # the value itself is intact
    ledger = RedisLedger(url)  # connects lazily: the repr needs no server
    assert "s3cretpw" not in repr(ledger)
    from cfgateway import Client

    assert "s3cretpw" not in repr(Client(settings=s))
