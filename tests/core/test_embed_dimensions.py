"""``dimensions=``: asked of routes that shorten vectors, refused before sending by routes that cannot,
checked on the answer, and compared across a fallback chain."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from _emu import emulator_fixtures

from cfgateway import Client, InvalidInputError, build_client
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer

GW = "gw-token"


server, emu = emulator_fixtures(EmulatorConfig(api_token="tok", gateways={"gw": GatewayConfig(auth_token=GW)}))


def conn(emu: EmulatorServer) -> dict[str, Any]:
    return {"account_id": "acct", "api_token": "tok", "gateway_id": "gw", "gateway_token": GW,
            "base_url": emu.base_url, "gateway_base_url": emu.gateway_base_url, "endpoint": "direct"}


def test_flexible_route_is_asked_for_the_size(emu: EmulatorServer) -> None:
    c = Client("openai/text-embedding-3-small", **conn(emu))
    resp = c.embed(["a", "b"], dimensions=256)
    assert [len(v) for v in resp.vectors] == [256, 256]
    assert emu.state.requests[0].json["dimensions"] == 256
    resp = asyncio.run(c.aembed(["a"], dimensions=512))
    assert len(resp.vectors[0]) == 512


def test_native_size_sends_no_field(emu: EmulatorServer) -> None:
    c = Client("@cf/baai/bge-m3", **conn(emu))
    assert len(c.embed(["a"], dimensions=1024).vectors[0]) == 1024
    assert "dimensions" not in emu.state.requests[0].json


@pytest.mark.parametrize(("model", "dims", "words"), [
    ("@cf/baai/bge-base-en-v1.5", 256, "768-dimensional"),
    ("openai/text-embedding-3-small", 4096, "at most 1536"),
    ("openai/text-embedding-ada-002", 512, "cannot shorten"),
    ("openai/text-embedding-3-small", 0, "positive whole number"),
])
def test_refused_before_sending(emu: EmulatorServer, model: str, dims: int, words: str) -> None:
    c = Client(model, **conn(emu))
    with pytest.raises(InvalidInputError, match=words):
        c.embed(["a"], dimensions=dims)
    assert emu.state.requests == []


def test_chain_of_different_native_sizes_works_at_a_common_size(emu: EmulatorServer) -> None:
    kw = conn(emu)
    with pytest.raises(Exception, match="same size"):  # 1024 vs 1536, no size asked for
        build_client("@cf/baai/bge-m3", ["openai/text-embedding-3-small"], **kw)
    chain = build_client("@cf/baai/bge-m3", ["openai/text-embedding-3-small"], dimensions=1024, **kw)
    assert chain.embed(["a", "b"]).model == "@cf/baai/bge-m3"
    emu.state.add_fault(Fault("*/ai/run/@cf/baai/bge-m3", "error", status=500))
    resp = chain.embed(["a", "b"])
    assert resp.model == "openai/text-embedding-3-small" and [len(v) for v in resp.vectors] == [1024, 1024]
    assert emu.state.requests[-1].json["dimensions"] == 1024
    with pytest.raises(InvalidInputError, match="bge-m3"):
        build_client("@cf/baai/bge-m3", ["openai/text-embedding-3-small"], dimensions=512, **kw)


def test_wrong_size_answer_is_malformed_not_silent() -> None:
    from cfgateway.calls.embed import finish_batch, prepare_batches
    from cfgateway.config import Settings
    from cfgateway.errors import MalformedResponseError
    from cfgateway.routing.routes import resolve_route
    from cfgateway.types import CallContext

    s = Settings(account_id="a", gateway_id="gw", gateway_token=None, provider_keys={}, byok=False)
    s = s.with_overrides(provider_keys={"openai": "k"})
    route = resolve_route("openai/text-embedding-3-small", s)
    ctx = CallContext()
    (batch,) = prepare_batches(route, ["a"], 10, pooling=None, options=None, ctx=ctx, dimensions=8)
    body = json.dumps({"data": [{"embedding": [0.1] * 16, "index": 0}]}).encode()
    with pytest.raises(MalformedResponseError, match="asked for 8-dimensional vectors, got 16"):
        finish_batch(batch, {}, body, ctx, None)
