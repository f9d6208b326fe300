"""Acceptance matrix of issue 5 at the core level: fault × mode × sync/async × invoke/stream.

The primary (Workers AI through the gateway) gets the fault on every request; the fallback is
``openai/gpt-4o-mini`` behind the same gateway. Each case ends in the expected answer from the
expected route, or the expected typed error, within the call deadline, and the emulator's request
log shows exactly the attempts expected.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from _emu import emulator_fixtures

from cfgateway import ChatRequest, Message, errors
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.fallback import FallbackChain, build_client
from cfgateway.http.transport import RetryPolicy

API_TOKEN = "test-token"
GW_TOKEN = "gw-token"
P = "@cf/meta/llama-3.1-8b-instruct"
F = "openai/gpt-4o-mini"
P_PATH = "*/workers-ai/*"
DEADLINE = 1.5
PROMPT = ChatRequest([Message("user", "Tell me about Paris")], max_tokens=40)

# fault id -> Fault (on the primary unless said otherwise)
FAULTS: dict[str, Fault] = {
    "429-retry-after": Fault(P_PATH, "error", status=429, code=2003, retry_after=1),
    "3040": Fault(P_PATH, "error", status=429, code=3040),
    "500": Fault(P_PATH, "error", status=500),
    "502-html": Fault(P_PATH, "html"),
    "slow-first-byte": Fault(P_PATH, "delay", delay_s=1.0),
    "drop-mid-body": Fault(P_PATH, "drop_body"),
    "drop-mid-stream": Fault(P_PATH, "drop_stream", after_chunks=1),
    "malformed-json": Fault(P_PATH, "malformed"),
    "bad-input-400": Fault("*", "error", status=400),  # every route rejects it
}

# (fault, mode, kind) -> (request log, answering route or error class)
# P / F: provider-native requests to the primary / fallback; U: one Universal Endpoint request.
# Client mode retries a retryable error once (retry budget 1) unless its Retry-After is longer than
# max_retry_wait; timeouts and malformed bodies are not retried.
EXPECT: dict[tuple[str, str, str], tuple[str, Any]] = {}
for _kind in ("invoke", "stream"):
    for _f, _log in (("429-retry-after", "PF"), ("3040", "PPF"), ("500", "PPF"), ("502-html", "PPF"),
                     ("slow-first-byte", "PF"), ("malformed-json", "PF")):
        EXPECT[(_f, "client", _kind)] = (_log, F)
    # the emulated gateway sees a cut or malformed upstream body itself and moves on to the next step
    for _f in ("429-retry-after", "3040", "500", "502-html", "slow-first-byte", "malformed-json"):
        EXPECT[(_f, "gateway", _kind)] = ("U", F)
    EXPECT[("bad-input-400", "client", _kind)] = ("P", errors.BadRequestError)
    EXPECT[("bad-input-400", "gateway", _kind)] = ("U", errors.BadRequestError)
# a 2xx body that broke off may have been billed: not re-sent to the same route, the fallback answers
EXPECT[("drop-mid-body", "client", "invoke")] = ("PF", F)
EXPECT[("drop-mid-body", "gateway", "invoke")] = ("U", F)
EXPECT[("drop-mid-body", "client", "stream")] = ("P", P)  # the fault only applies to non-stream answers
EXPECT[("drop-mid-body", "gateway", "stream")] = ("U", P)
EXPECT[("drop-mid-stream", "client", "invoke")] = ("P", P)  # the fault only applies to streams
EXPECT[("drop-mid-stream", "gateway", "invoke")] = ("U", P)
EXPECT[("drop-mid-stream", "client", "stream")] = ("P", errors.StreamInterrupted)  # after the first chunk
EXPECT[("drop-mid-stream", "gateway", "stream")] = ("U", errors.StreamInterrupted)


server, emu = emulator_fixtures(EmulatorConfig(api_token=API_TOKEN, gateways={"gw": GatewayConfig(auth_token=GW_TOKEN)}))


def chain(emu: EmulatorServer, mode: str) -> FallbackChain:
    c = build_client(
        P, [F], fallback_mode=mode, account_id="acct", api_token=API_TOKEN, gateway_id="gw", gateway_token=GW_TOKEN,
        base_url=emu.base_url, gateway_base_url=emu.gateway_base_url, timeout=0.4,
        retry_policy=RetryPolicy(max_retries=1, backoff_base=0.01, backoff_max=0.02), max_retry_wait=0.5,
        call_timeout=DEADLINE, step_config={"requestTimeout": 200} if mode == "gateway" else None,
    )
    assert isinstance(c, FallbackChain)
    return c


def request_log(emu: EmulatorServer) -> str:
    out = ""
    for r in emu.state.requests:
        out += "U" if r.path.endswith("/gw") else "P" if "/workers-ai/" in r.path else "F" if "/openai/" in r.path else "?"
    return out


def run(c: FallbackChain, sync: bool, kind: str) -> tuple[str, str, Any]:
    """(text, answering model, response or final chunk)."""
    if kind == "invoke":
        r = c.chat(PROMPT) if sync else asyncio.run(c.achat(PROMPT))
        return r.text, r.model, r
    if sync:
        chunks = list(c.stream(PROMPT))
    else:
        async def collect() -> list[Any]:
            return [ch async for ch in c.astream(PROMPT)]
        chunks = asyncio.run(collect())
    assert chunks[0].model == chunks[-1].model  # the first and the last chunk name the answering route
    return "".join(ch.text for ch in chunks), chunks[-1].model, chunks[-1]


@pytest.mark.parametrize("kind", ["invoke", "stream"])
@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("mode", ["client", "gateway"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_matrix(emu: EmulatorServer, fault: str, mode: str, sync: bool, kind: str) -> None:
    expected_log, outcome = EXPECT[(fault, mode, kind)]
    c = chain(emu, mode)
    emu.state.add_fault(FAULTS[fault])
    started = time.monotonic()
    if isinstance(outcome, type):
        with pytest.raises(outcome) as info:
            run(c, sync, kind)
        err = info.value
        if outcome is errors.StreamInterrupted:
            assert err.text  # what was received before the break
        # the error's attempts tell the story: a 400 through the gateway is the last step's answer
        story = [(a.model, a.outcome) for a in err.attempts]  # type: ignore[attr-defined]
        if outcome is errors.BadRequestError and mode == "gateway":
            assert story == [(P, "gateway_step_failed"), (F, "BadRequestError")]
        else:
            assert story == [(P, outcome.__name__)]
        assert err.records  # type: ignore[attr-defined]  # failed attempts reach the ledger too
    else:
        text, model, res = run(c, sync, kind)
        assert model == outcome and "Paris" in text
        assert res.attempts[-1].model == outcome and res.attempts[-1].outcome == "ok"
        if outcome == F:
            assert res.attempts[0].model == P and res.attempts[0].outcome != "ok"
            if mode == "gateway" and expected_log == "U":
                assert res.attempts[0].outcome == "gateway_step_failed" and res.gateway.step == 1
        # one ledger record per attempt: each request sent, and each step that failed inside the gateway
        assert len(res.records) == len(res.attempts)
        assert [r.outcome for r in res.records[:-1]] == [a.outcome for a in res.attempts[:-1]]
        assert len(res.records) == len(expected_log) + (mode == "gateway" and expected_log == "U" and outcome == F)
        assert [r.attempt for r in res.records][-1] == (len(expected_log) - 1 if mode == "client" else
                                                        (1 if outcome == F else 0))
        assert res.records[-1].fallback is (outcome == F) and res.records[-1].outcome == "ok"
        assert all(not r.ok for r in res.records[:-1])
    assert time.monotonic() - started < DEADLINE + 0.3
    assert request_log(emu) == expected_log
    c.close()
