"""CloudflareEmbeddings against the emulator: batching at each model's limit, concurrency and order,
progress bar, empty and bad inputs, secrets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cfgateway import ConfigError, InvalidInputError
from cfgateway.emulator.config import Fault
from cfgateway.emulator.server import EmulatorServer
from langchain_cfgateway import CloudflareEmbeddings

BGE = "@cf/baai/bge-base-en-v1.5"
QWEN = "@cf/qwen/qwen3-embedding-0.6b"
OPENAI = "openai/text-embedding-3-small"


# OpenAI allows 2048 inputs per request; cfgateway's core caps its default batch at 512 (request size).


def embed_requests(emu: EmulatorServer) -> list[Any]:
    return [r for r in emu.state.requests if isinstance(r.json, dict) and ("text" in r.json or "input" in r.json)]


def batch_sizes(emu: EmulatorServer) -> list[int]:
    return sorted((len(r.json.get("text") or r.json.get("input")) for r in embed_requests(emu)), reverse=True)


@pytest.mark.parametrize(
    ("model", "gw", "n", "sizes"),
    [(BGE, False, 250, [100, 100, 50]), (QWEN, False, 70, [32, 32, 6]), (OPENAI, True, 1100, [512, 512, 76])],
)
def test_batches_at_the_model_limit(emu: EmulatorServer, conn: Any, model: str, gw: bool, n: int,
                                    sizes: list[int]) -> None:
    emb = CloudflareEmbeddings(model=model, **conn(gateway=gw))
    texts = [f"text number {i}" for i in range(n)]
    vectors = emb.embed_documents(texts)
    assert len(vectors) == n and batch_sizes(emu) == sizes
    emu.state.clear_requests()
    assert len(asyncio.run(emb.aembed_documents(texts))) == n and batch_sizes(emu) == sizes


def test_explicit_batch_size_and_one_above_the_limit(emu: EmulatorServer, conn: Any) -> None:
    emb = CloudflareEmbeddings(model=BGE, batch_size=10, **conn())
    emb.embed_documents([f"t{i}" for i in range(35)])
    assert batch_sizes(emu) == [10, 10, 10, 5]
    with pytest.raises(ConfigError, match="limit of 100"):
        CloudflareEmbeddings(model=BGE, batch_size=101, **conn()).embed_documents(["a"])


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_concurrent_batches_keep_the_input_order(conn: Any, mode: str) -> None:
    emb = CloudflareEmbeddings(model=BGE, batch_size=7, max_concurrency=8, **conn())
    texts = [f"document {i} about topic {i % 5}" for i in range(60)]
    got = emb.embed_documents(texts) if mode == "sync" else asyncio.run(emb.aembed_documents(texts))
    singles = [emb.embed_query(t) for t in texts]
    assert got == singles
    assert len({tuple(v) for v in got}) == 60


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_batches_run_concurrently_under_the_limit(emu: EmulatorServer, conn: Any, mode: str) -> None:
    emu.state.add_fault(Fault(path="*/ai/run/*", kind="delay", delay_s=0.3, times=None))
    emb = CloudflareEmbeddings(model=BGE, batch_size=10, max_concurrency=4, **conn())
    texts = [f"t{i}" for i in range(40)]
    assert len(emb.embed_documents(texts) if mode == "sync" else asyncio.run(emb.aembed_documents(texts))) == 40
    times = sorted(r.time for r in embed_requests(emu))
    assert len(times) == 4
    assert times[-1] - times[0] < 0.25, "the 4 batches should be in flight together, not one after another"


def test_progress_bar(conn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    CloudflareEmbeddings(model=BGE, show_progress_bar=True, **conn()).embed_documents([f"t{i}" for i in range(250)])
    err = capsys.readouterr().err
    assert "250/250" in err and "Embedding" in err
    CloudflareEmbeddings(model=BGE, **conn()).embed_documents(["quiet"])
    assert "Embedding" not in capsys.readouterr().err


def test_empty_list_sends_nothing(emu: EmulatorServer, conn: Any) -> None:
    emb = CloudflareEmbeddings(model=BGE, **conn())
    assert emb.embed_documents([]) == [] and asyncio.run(emb.aembed_documents([])) == []
    assert emu.state.requests == []


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["fine", "also fine", "", "x"], "input 2 is empty"),
        (["ok", "ok", "ok", 42], "input 3 is a int"),
        (["ok", "word " * 2000], "input 1 is 10000 characters"),
    ],
)
def test_bad_inputs_name_the_index_and_send_nothing(emu: EmulatorServer, conn: Any, texts: list[Any],
                                                    message: str) -> None:
    emb = CloudflareEmbeddings(model=BGE, **conn())
    with pytest.raises(InvalidInputError, match=message):
        emb.embed_documents(texts)
    with pytest.raises(InvalidInputError, match=message):
        asyncio.run(emb.aembed_documents(texts))
    with pytest.raises(InvalidInputError, match="input 0 is empty"):
        emb.embed_query("   ")
    assert emu.state.requests == []


def test_pooling_is_sent_for_bge(emu: EmulatorServer, conn: Any) -> None:
    CloudflareEmbeddings(model=BGE, pooling="cls", **conn()).embed_documents(["a"])
    [req] = embed_requests(emu)
    assert req.json == {"text": ["a"], "pooling": "cls"}


def test_secrets_and_unknown_arguments() -> None:
    emb = CloudflareEmbeddings(api_token="sk-embed-secret", account_id="a")
    for text in (repr(emb), str(emb), repr(emb.model_dump()), emb.model_dump_json(), json.dumps(emb.model_dump(
            mode="json"))):
        assert "sk-embed-secret" not in text
    with pytest.raises(TypeError, match=r"unknown argument\(s\) chunk_size; it takes: .*batch_size"):
        CloudflareEmbeddings(chunk_size=10)
