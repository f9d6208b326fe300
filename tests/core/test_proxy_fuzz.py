"""Issue 10's acceptance against a real proxy process: a bounded run of >= 2,000 requests over chat, embeddings,
responses and models gets no 5xx, no request hangs, the process stays up, and its RSS ends within 10 % of
where it started.

Two generators: schemathesis from the proxy's own ``/openapi.json`` (valid and invalid cases of every
operation; generating deep chat bodies costs ~0.1-0.2 s each, so it runs a few hundred), and a hypothesis
mutation fuzzer (valid bodies with one field replaced by arbitrary JSON, deleted, or an unknown field
added; cheap, so it supplies the volume). Half of the bodies name a model the emulator serves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import _proxy_proc
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

KEY = "sk-proxy-fuzz-key"
SERVED = [None, "fast", "@cf/meta/llama-3.1-8b-instruct", "emb", "@cf/baai/bge-small-en-v1.5"]
# (path, examples per generation mode)
BUDGET = {"/v1/chat/completions": 50, "/v1/embeddings": 100, "/v1/responses": 40, "/v1/models": 40,
          "/v1/models/{model}": 100}
VALID = {
    "/v1/chat/completions": {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16,
                             "temperature": 0.5, "stream": False, "tools": [
                                 {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                             "stop": ["x"], "n": 1, "metadata": {"k": "v"}, "user": "u"},
    "/v1/embeddings": {"model": "emb", "input": ["a", "b"], "encoding_format": "float", "dimensions": 384},
    "/v1/responses": {"model": "fast", "input": [{"role": "user", "content": "hi"}], "instructions": "be brief",
                      "max_output_tokens": 16, "tools": [{"type": "function", "name": "f"}], "text": {
                          "format": {"type": "text"}}},
}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@pytest.fixture(scope="module")
def proxy(cf_emulator_server: Any) -> Iterator[_proxy_proc.ProxyProc]:
    args = ["--api-key", f"fuzz:{KEY}", "--alias", "fast=@cf/meta/llama-3.1-8b-instruct,@cf/meta/llama-3.2-1b-instruct",
            "--alias", "emb=@cf/baai/bge-small-en-v1.5", "--read-timeout-s", "5"]
    with _proxy_proc.running(args, _proxy_proc.emulator_env(cf_emulator_server)) as pp:
        yield pp


def _with_model(case: Any, model: str | None) -> Any:
    if model is not None and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = model
    return case


def run_operation(op: Any, mode: GenerationMode, examples: int, base: str, session: requests.Session,
                  statuses: Counter[int], failures: list[str]) -> None:
    strategy = st.tuples(op.as_strategy(generation_mode=mode), st.sampled_from(SERVED))

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(pair: tuple[Any, str | None]) -> None:
        case = _with_model(*pair)
        r = case.call(base_url=base, session=session, headers={"Authorization": f"Bearer {KEY}"}, timeout=15)
        statuses[r.status_code] += 1
        if r.status_code >= 500:
            failures.append(f"{r.status_code} {case.method} {case.path} {str(case.body)[:300]} -> {r.text[:300]}")

    run()


def mutate(pp: _proxy_proc.ProxyProc, examples: int, session: requests.Session, statuses: Counter[int],
           failures: list[str]) -> None:
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(sorted(VALID)), st.data())
    def run(path: str, data: st.DataObject) -> None:
        body = dict(VALID[path])
        field = data.draw(st.sampled_from([*sorted(body), "unknown_field"]))
        action = data.draw(st.sampled_from(["replace", "delete", "nest"]))
        if action == "delete":
            body.pop(field, None)
        elif action == "nest" and isinstance(body.get(field), list) and body[field]:
            body[field] = [data.draw(JSON), *body[field][1:]]
        else:
            body[field] = data.draw(JSON)
        r = session.post(f"{pp.url}{path}", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=15)
        statuses[r.status_code] += 1
        if r.status_code >= 500:
            failures.append(f"{r.status_code} {path} {str(body)[:300]} -> {r.text[:300]}")

    run()


def fuzz(pp: _proxy_proc.ProxyProc, scale: float) -> tuple[Counter[int], list[str]]:
    schema = schemathesis.openapi.from_url(f"{pp.url}/openapi.json")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    with requests.Session() as session:
        mutate(pp, max(1, int(1400 * scale)), session, statuses, failures)
        for result in schema.get_all_operations():
            op = result.ok()
            if op.path not in BUDGET:
                continue
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run_operation(op, mode, max(1, int(BUDGET[op.path] * scale)), pp.url, session, statuses, failures)
    return statuses, failures


@pytest.mark.timeout(400)
def test_fuzz_no_server_errors_and_memory_returns(proxy: _proxy_proc.ProxyProc, cf_emulator: Any) -> None:
    fuzz(proxy, 0.1)  # warm-up: imports, caches and pools in place before the baseline
    start = proxy.rss_kb()
    statuses, failures = fuzz(proxy, 1.0)
    end = proxy.rss_kb()
    print(f"fuzz: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}, RSS {start} -> {end} kB")
    assert sum(statuses.values()) >= 2000, statuses
    assert failures == [], "\n".join(failures[:10])
    assert proxy.proc.poll() is None, "the proxy died"
    assert statuses[200] > 100 and sum(n for s, n in statuses.items() if 400 <= s < 500) > 1000, statuses
    assert end <= start * 1.10, f"RSS grew from {start} kB to {end} kB"
