"""Scale-out: two `cfgateway proxy` processes on one real redis-server ledger share a key's budget."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import _proxy_proc
import _redis
import httpx

from cfgateway.costs.ledger import open_ledger

KEY = "sk-team-a-key-123"


def chat(pp: _proxy_proc.ProxyProc) -> httpx.Response:
    return httpx.post(f"{pp.base_url}/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, timeout=30,
                      json={"model": "@cf/meta/llama-3.1-8b-instruct", "max_tokens": 16,
                            "messages": [{"role": "user", "content": "Tell me about Paris"}]})


def test_a_budget_holds_across_two_proxy_processes(cf_emulator_server: Any, tmp_path: Path) -> None:
    config = tmp_path / "proxy.toml"
    config.write_text(f'[[keys]]\nuser = "team-a"\nkey = "{KEY}"\ndaily_usd = "0.00006"\n')
    with _redis.redis_server() as url:
        env = _proxy_proc.emulator_env(cf_emulator_server, CFGATEWAY_LEDGER=url)
        with _proxy_proc.running(["--config", str(config)], env) as a, \
                _proxy_proc.running(["--config", str(config)], env) as b:
            first_b = chat(b).status_code  # B serves the key
            answers = []
            for _ in range(40):  # then A alone spends until the budget runs out
                r = chat(a)
                answers.append((r.status_code, r.json()))
                if r.status_code != 200:
                    break
            then_b = chat(b)  # B has spent one call's worth itself; only the shared ledger tells it about A's calls
        spent = open_ledger(url).spent(since=0, user="team-a")
    ok_a = sum(1 for s, _ in answers if s == 200)
    assert first_b == 200 and ok_a >= 2, answers
    assert answers[-1][0] == 429 and answers[-1][1]["error"]["code"] == "budget_exceeded"
    assert then_b.status_code == 429 and then_b.json()["error"]["code"] == "budget_exceeded"
    assert 0 < spent <= Decimal("0.00006")
