"""Shadows in the OpenAI-compatible proxy (its ASGI app, upstream = the emulator): configured for an alias
or a model name, in the proxy's config file or with ``--shadow``; the client's answers are the same."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cfgateway import Shadow, flush_shadows
from cfgateway.config import Settings, load_settings
from cfgateway.costs.ledger import SQLiteLedger, UsageRecord
from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.errors import ConfigError
from cfgateway.proxy import ProxyConfig, create_proxy_app, load_proxy_config

BASE = "openai/gpt-4o-mini"
CAND = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
MSG = [{"role": "user", "content": "Tell me about Paris"}]


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(gateways={"gw": GatewayConfig(auth_token="gw-token")})) as s:
        yield s


def settings(server: EmulatorServer, tmp_path: Path, ledger: bool = True) -> Settings:
    kw = server.client_kwargs(gateway=True)
    return load_settings(env={}, max_retries=0, ledger=f"sqlite:///{tmp_path / 'l.db'}" if ledger else None, **kw)


def post(app: Any, body: dict[str, Any]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080") as c:
            return await c.post("/v1/chat/completions", json=body)
    return asyncio.run(go())


def content(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    if r.headers["content-type"].startswith("text/event-stream"):
        events = [json.loads(line[6:]) for line in r.text.split("\n") if line.startswith("data: {")]
        return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    return str(r.json()["choices"][0]["message"]["content"])


def pairs(tmp_path: Path) -> list[UsageRecord]:
    assert flush_shadows(30) == 0
    return [r for r in SQLiteLedger(tmp_path / "l.db").records() if r.shadow_pair]


def test_an_aliased_route_is_shadowed_and_answers_as_without(server: EmulatorServer, tmp_path: Path) -> None:
    config = ProxyConfig(aliases={"smart": [BASE]}, shadows={"smart": Shadow(CAND, sample=1.0)})
    shadowed = create_proxy_app(settings(server, tmp_path), config=config)
    (tmp_path / "plain").mkdir()
    plain = create_proxy_app(settings(server, tmp_path / "plain"), config=ProxyConfig(aliases={"smart": [BASE]}))
    for stream in (False, True):
        body = {"model": "smart", "messages": MSG, "max_tokens": 30, "stream": stream}
        a, b = post(shadowed, body), post(plain, body)
        assert content(a) == content(b) and "Paris" in content(a)
        assert a.headers["x-cfgateway-model"] == b.headers["x-cfgateway-model"] == BASE
    found = pairs(tmp_path)
    assert len(found) == 2 and all(r.model == CAND and r.baseline == BASE and r.similarity == 1.0 for r in found)
    assert pairs(tmp_path / "plain") == []


@pytest.mark.parametrize("key", [BASE, "gpt-4o-mini"])
def test_a_model_name_is_shadowed_bare_or_in_full(server: EmulatorServer, tmp_path: Path, key: str) -> None:
    config = ProxyConfig(default_provider="openai", shadows={key: Shadow(CAND, sample=1.0)})
    assert list(config.shadows) == [BASE]
    app = create_proxy_app(settings(server, tmp_path), config=config)
    for name in ("gpt-4o-mini", BASE, "@cf/meta/llama-3.1-8b-instruct"):
        assert content(post(app, {"model": name, "messages": MSG, "max_tokens": 20}))
    assert len(pairs(tmp_path)) == 2  # the two names of the shadowed model, not the other model


def test_the_config_file_and_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text(f'[aliases]\nsmart = ["{BASE}"]\n\n[shadows.smart]\ncandidate = "{CAND}"\nsample = 0.2\n'
                    'max_cost = "3"\n')
    config = load_proxy_config(config_path=str(path), env={}, shadows=[f"{BASE}={CAND}:0.5", f"fast={CAND}"],
                               aliases=["fast=@cf/meta/llama-3.1-8b-instruct"])
    assert config.shadows == {"smart": Shadow(CAND, sample=0.2, max_cost="3"), BASE: Shadow(CAND, sample=0.5),
                              "fast": Shadow(CAND, sample=0.1)}
    with pytest.raises(ConfigError, match="NAME=CANDIDATE"):
        load_proxy_config(env={}, shadows=["just-a-name"])
    with pytest.raises(ConfigError, match="neither an alias of this proxy nor a model string"):
        load_proxy_config(env={}, shadows=[f"nosuchalias={CAND}"])
    path.write_text('[shadows.smart]\ncolour = "red"\n')
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        load_proxy_config(config_path=str(path), env={})


def test_shadows_need_a_ledger(server: EmulatorServer, tmp_path: Path) -> None:
    config = ProxyConfig(aliases={"smart": [BASE]}, shadows={"smart": Shadow(CAND)})
    with pytest.raises(ConfigError, match="shadows book their comparisons in the ledger.*CFGATEWAY_LEDGER"):
        create_proxy_app(settings(server, tmp_path, ledger=False), config=config)
