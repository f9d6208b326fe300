"""The emulator's cached JSON rows for embeddings: same bytes as encoding the vectors, over HTTP too."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from cfgateway.emulator import EmulatorConfig, EmulatorServer, Fault
from cfgateway.emulator.context import envelope
from cfgateway.emulator.embeddings import (
    VECTORS,
    embed_many,
    json_with_vectors,
    openai_list_json,
    vector_json,
    vectors_json,
)
from cfgateway.emulator.formats import native_embedding, openai_embedding
from cfgateway.emulator.reply import dumps

TEXTS = ["the cat sat on the mat", "?!", "héllo wörld — ünïcode", "the cat sat on the mat", "x" * 300]
TOKEN = "api-token"


def test_vector_json_is_the_json_of_the_vector() -> None:
    for dims in (64, 384, 768):
        for text in TEXTS:
            assert json.loads(vector_json(text, dims, "m")) == list(embed_many([text], dims, "m")[0])
            assert vector_json(text, dims, "m") == dumps(embed_many([text], dims, "m")[0])
    assert vector_json("hello", 64, "a:cls") != vector_json("hello", 64, "a:mean")
    assert vectors_json(TEXTS, 64, "m") == dumps(embed_many(TEXTS, 64, "m"))


def test_native_body_is_byte_identical_to_encoding_the_vectors() -> None:
    usage = {"prompt_tokens": 7, "total_tokens": 7}
    for pooling in (None, "cls"):
        slot_body = envelope(native_embedding(VECTORS, 384, pooling, usage, rows=len(TEXTS)))
        plain = envelope(native_embedding(embed_many(TEXTS, 384, "s"), 384, pooling, usage))
        assert json_with_vectors(slot_body, TEXTS, 384, "s") == dumps(plain).encode()


def test_json_with_vectors_needs_exactly_one_slot() -> None:
    with pytest.raises(ValueError, match="slot"):
        json_with_vectors({"data": []}, TEXTS, 8, "s")
    with pytest.raises(ValueError, match="slot"):
        json_with_vectors({"a": VECTORS, "b": VECTORS}, TEXTS, 8, "s")


def test_openai_list_body_is_byte_identical() -> None:
    usage = {"prompt_tokens": 3, "total_tokens": 3}
    for u in (None, usage):
        want = dumps(openai_embedding(embed_many(TEXTS, 128, "p/m"), "text-embedding-3-small", u)).encode()
        assert openai_list_json(TEXTS, 128, "p/m", "text-embedding-3-small", u) == want


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_token=TOKEN)) as s:
        yield s


def test_native_and_v1_routes_answer_the_cached_rows(server: EmulatorServer) -> None:
    model = "@cf/baai/bge-small-en-v1.5"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as http:
        first = http.post(f"/client/v4/accounts/a/ai/run/{model}", json={"text": TEXTS})
        again = http.post(f"/client/v4/accounts/a/ai/run/{model}", json={"text": TEXTS})
        v1 = http.post("/client/v4/accounts/a/ai/v1/embeddings", json={"model": model, "input": TEXTS})
    assert first.status_code == again.status_code == v1.status_code == 200
    assert first.content == again.content
    result = first.json()["result"]
    assert result["shape"] == [len(TEXTS), 384]
    assert result["data"] == [list(v) for v in embed_many(TEXTS, 384, f"{model}:mean")]
    assert result["pooling"] == "mean" and result["usage"]["prompt_tokens"] > 0
    assert first.json()["success"] is True
    rows = v1.json()["data"]
    assert [r["index"] for r in rows] == list(range(len(TEXTS)))
    assert [r["embedding"] for r in rows] == result["data"]


def test_delayed_embedding_requests_overlap(server: EmulatorServer) -> None:
    """The delay fault sleeps without blocking the loop: 8 concurrent 0.3 s requests take far less than 2.4 s."""
    import asyncio
    import time

    server.state.add_fault(Fault(path="*/ai/run/@cf/baai/*", kind="delay", delay_s=0.3, times=None))

    async def go() -> float:
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            t = time.perf_counter()
            url = "/client/v4/accounts/a/ai/run/@cf/baai/bge-base-en-v1.5"
            replies = await asyncio.gather(*(c.post(url, json={"text": TEXTS}, timeout=10) for _ in range(8)))
            assert all(r.status_code == 200 for r in replies)
            return time.perf_counter() - t

    try:
        assert asyncio.run(go()) < 1.5
    finally:
        server.state.clear_faults()
