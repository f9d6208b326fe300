"""The proxy's ``/dashboard``: the monitoring page over the proxy's own ledger, opened by the right keys only
(through the ASGI app), and in a real headless browser against a real ``cfgateway proxy`` process."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import _proxy_proc
import httpx
import openai
import pytest
from test_dashboard_browser import FLAGS, chromium

from cfgateway.config import load_settings
from cfgateway.proxy import ProxyConfig, create_proxy_app, key_from_spec
from cfgateway.proxy.auth import key_from_table
from cfgateway.proxy.serve import dump_config, load_config
from cfgateway.routing.shadow import Shadow

MODEL = "@cf/meta/llama-3.1-8b-instruct"
MSG = [{"role": "user", "content": "Tell me about Paris"}]
ALICE, BOB, DASH = "alice-key-0001", "bob-key-00002", "dash-key-0003"


def app_for(cf_emulator: Any, tmp_path: Path | None, keys: list[Any]) -> Any:
    ledger = f"sqlite:///{tmp_path / 'costs.db'}" if tmp_path is not None else None
    s = load_settings(env={}, account_id="acct", api_token="t", base_url=cf_emulator.base_url, max_retries=0,
                      ledger=ledger)
    return create_proxy_app(s, config=ProxyConfig(keys=keys))


def get(app: Any, path: str, key: str | None = None, basic: bool = False, body: Any = None) -> httpx.Response:
    headers = {}
    if key is not None:
        headers["authorization"] = ("Basic " + base64.b64encode(f"me:{key}".encode()).decode()) if basic \
            else f"Bearer {key}"

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080") as c:
            if body is not None:
                return await c.post(path, json=body, headers=headers)
            return await c.get(path, headers=headers)
    return asyncio.run(go())


def test_a_single_key_proxy_opens_the_dashboard_with_its_key(cf_emulator: Any, tmp_path: Path) -> None:
    app = app_for(cf_emulator, tmp_path, [key_from_spec(f"ops:{ALICE}")])
    assert get(app, "/v1/chat/completions", ALICE, body={"model": MODEL, "messages": MSG}).status_code == 200
    no_key = get(app, "/dashboard/")
    assert no_key.status_code == 401 and "Basic" in no_key.headers["www-authenticate"]
    assert get(app, "/dashboard/", "wrong-key-000").status_code == 401
    page = get(app, "/dashboard/", ALICE, basic=True)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    data = get(app, "/dashboard/data.json", ALICE).json()
    assert json.dumps(data).count('"ops"') >= 1  # the call above, booked under the key's user
    assert get(app, "/dashboard", ALICE).status_code in (200, 307)  # without the slash: served or redirected


def test_tenants_need_a_dashboard_key(cf_emulator: Any, tmp_path: Path) -> None:
    tenants = [key_from_spec(f"alice:{ALICE}"), key_from_spec(f"bob:{BOB}")]
    r = get(app_for(cf_emulator, tmp_path, tenants), "/dashboard/", ALICE)
    assert r.status_code == 403 and "--dashboard-key" in r.text and "dashboard = true" in r.text
    app = app_for(cf_emulator, tmp_path, [*tenants, key_from_spec(f"ops:{DASH}", dashboard_only=True)])
    assert get(app, "/dashboard/", ALICE).status_code == 401  # a tenant never sees the others' spend
    assert get(app, "/dashboard/", DASH).status_code == 200
    call = get(app, "/v1/chat/completions", DASH, body={"model": MODEL, "messages": MSG})
    assert call.status_code == 403 and call.json()["error"]["code"] == "model_not_allowed"  # it calls no model


def test_a_key_table_marked_dashboard_opens_it(cf_emulator: Any, tmp_path: Path) -> None:
    keys = [key_from_table({"user": "alice", "key": ALICE, "dashboard": True}), key_from_spec(f"bob:{BOB}")]
    app = app_for(cf_emulator, tmp_path, keys)
    assert get(app, "/dashboard/", ALICE).status_code == 200 and get(app, "/dashboard/", BOB).status_code == 401
    with pytest.raises(ValueError, match="dashboard must be true or false"):
        key_from_table({"user": "x", "key": ALICE, "dashboard": "yes"})


def test_without_a_ledger_the_dashboard_says_how_to_get_one(cf_emulator: Any) -> None:
    r = get(app_for(cf_emulator, None, []), "/dashboard/")
    assert r.status_code == 404 and "CFGATEWAY_LEDGER" in r.text


def test_worker_processes_get_the_dashboard_flag_and_the_shadows() -> None:
    config = ProxyConfig(aliases={"fast": [MODEL]}, keys=[key_from_spec(f"ops:{DASH}", dashboard_only=True)],
                         shadows={"fast": Shadow(candidate="@cf/meta/llama-3.3-70b-instruct-fp8-fast", sample=0.25)})
    text = dump_config(config)
    assert DASH not in text
    back = load_config(text)
    assert back.keys[0].dashboard and back.keys[0].models == frozenset()
    assert back.shadows["fast"].candidate == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    assert back.shadows["fast"].sample == 0.25


def test_the_proxy_dashboard_in_a_browser(cf_emulator_server: Any, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    env = _proxy_proc.emulator_env(cf_emulator_server, CFGATEWAY_LEDGER=f"sqlite:///{tmp_path / 'costs.db'}")
    args = ["--api-key", f"alice:{ALICE}", "--api-key", f"bob:{BOB}", "--dashboard-key", f"ops:{DASH}"]
    with _proxy_proc.running(args, env) as pp:
        for key in (ALICE, ALICE, BOB):
            openai.OpenAI(base_url=pp.base_url, api_key=key, max_retries=0).chat.completions.create(
                model=MODEL, messages=MSG)  # type: ignore[arg-type]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium(), headless=True, args=FLAGS)
            try:
                # (a browser would prompt for Basic credentials; headless chromium refuses the page)
                assert browser.new_context().request.get(f"{pp.url}/dashboard/").status == 401
                ctx = browser.new_context(http_credentials={"username": "ops", "password": DASH})
                page = ctx.new_page()
                resp = page.goto(f"{pp.url}/dashboard/")
                assert resp is not None and resp.status == 200
                assert page.inner_text("#total-calls") == "3"
                assert page.locator('tr[data-user="alice"] .calls').inner_text() == "2"
                assert page.locator('tr[data-user="bob"] .calls').inner_text() == "1"
            finally:
                browser.close()
        assert DASH not in pp.stderr() and ALICE not in pp.stderr()
