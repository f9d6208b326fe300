"""CloudflareEmbedding against the emulator: batches at the model's limit (request log), order kept,
async concurrency bounded, gateway models, progress bar, input checks, records for the cost handler."""

from __future__ import annotations

import asyncio
import math
import time
from decimal import Decimal
from typing import Any

import pytest
from llama_index.core.callbacks import CallbackManager

from cfgateway import BadRequestError, InvalidInputError
from cfgateway.costs.catalog import default_catalog
from cfgateway.emulator.config import Fault
from llama_index_cfgateway import CloudflareCostHandler, CloudflareEmbedding

TEXTS = [f"document {i} talks about topic{i} and word{i * 7}" for i in range(250)]


def _sizes(emu: Any) -> list[int]:
    sizes = []
    for r in emu.state.requests:
        body = r.json
        items = body.get("text") if "text" in body else body.get("input")
        sizes.append(len(items) if isinstance(items, list) else 1)
    return sizes


@pytest.mark.parametrize(
    ("model", "limit", "dims"),
    [("@cf/baai/bge-base-en-v1.5", 100, 768), ("@cf/baai/bge-m3", 100, 1024), ("@cf/qwen/qwen3-embedding-0.6b", 32, 1024)],
)
@pytest.mark.parametrize("run_async", [False, True])
def test_batches_at_the_model_limit_in_order(
    model: str, limit: int, dims: int, run_async: bool, conn: Any, emu: Any
) -> None:
    emb = CloudflareEmbedding(model_name=model, **conn())
    assert emb.embed_batch_size == limit and emb.model_name == model
    if run_async:
        vectors = asyncio.run(emb.aget_text_embedding_batch(TEXTS))
    else:
        vectors = emb.get_text_embedding_batch(TEXTS)
    n = math.ceil(len(TEXTS) / limit)
    expected = [limit] * (n - 1) + [len(TEXTS) - limit * (n - 1)]
    assert sorted(_sizes(emu)) == sorted(expected)  # async batches may arrive in any order
    assert len(vectors) == len(TEXTS) and len(vectors[0]) == dims
    emu.state.clear()
    for i in (0, limit - 1, limit, len(TEXTS) - 1):  # the vector of text i is text i's, not a neighbour's
        assert vectors[i] == emb.get_text_embedding(TEXTS[i])
    assert emb.get_query_embedding(TEXTS[3]) == vectors[3]


@pytest.mark.parametrize(
    ("model", "requests", "dims", "path"),
    [("openai/text-embedding-3-small", 1, 1536, "/gw/openai/embeddings"),
     ("custom-deepinfra/Qwen/Qwen3-Embedding-8B", 1, 4096, "/gw/custom-deepinfra/v1/openai/embeddings")],
)
def test_gateway_embedding_models(model: str, requests: int, dims: int, path: str, conn: Any, emu: Any) -> None:
    emb = CloudflareEmbedding(model_name=model, **conn(gateway=True))
    info = default_catalog().get(model)
    assert info is not None and emb.embed_batch_size == min(info.max_batch or 0, 2048)
    vectors = asyncio.run(emb.aget_text_embedding_batch(TEXTS[:200]))
    assert len(vectors) == 200 and len(vectors[0]) == dims
    assert len(emu.state.requests) == requests and emu.state.requests[0].path.endswith(path)


def test_a_smaller_batch_size_is_honoured(conn: Any, emu: Any) -> None:
    emb = CloudflareEmbedding(embed_batch_size=40, **conn())
    emb.get_text_embedding_batch(TEXTS)
    assert sorted(_sizes(emu)) == [10] + [40] * 6  # sync batches run concurrently too: any arrival order


def test_async_batches_run_concurrently_under_the_limit(conn: Any, emu: Any) -> None:
    emu.state.add_fault(Fault(path="*bge*", kind="delay", delay_s=0.05))

    def peak_for(max_concurrency: int) -> int:
        emb = CloudflareEmbedding(embed_batch_size=10, max_concurrency=max_concurrency, **conn())
        client = emb._client()
        original = client.aembed
        state = {"now": 0, "peak": 0}

        async def counted(*a: Any, **k: Any) -> Any:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            try:
                return await original(*a, **k)
            finally:
                state["now"] -= 1

        client.aembed = counted  # type: ignore[method-assign]
        vectors = asyncio.run(emb.aget_text_embedding_batch(TEXTS[:60]))
        assert len(vectors) == 60
        return state["peak"]

    assert peak_for(2) == 2
    assert peak_for(8) == 6  # every one of the 6 batches in flight at once


def test_pooling_is_sent_for_bge(conn: Any, emu: Any) -> None:
    CloudflareEmbedding(pooling="cls", **conn()).get_text_embedding("hello")
    assert emu.state.requests[0].json["pooling"] == "cls"


def test_show_progress_is_honoured(conn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    CloudflareEmbedding(**conn()).get_text_embedding_batch(TEXTS[:30], show_progress=True)
    assert "Generating embeddings" in capsys.readouterr().err


def test_empty_input_is_refused_naming_the_index(conn: Any, emu: Any) -> None:
    with pytest.raises(InvalidInputError, match="input 1 is empty"):
        CloudflareEmbedding(**conn()).get_text_embedding_batch(["fine", "   "])
    assert emu.state.requests == []


def test_batch_records_reach_the_cost_handler(conn: Any, emu: Any) -> None:
    cost = CloudflareCostHandler()
    emb = CloudflareEmbedding(callback_manager=CallbackManager([cost]), **conn())
    emb.get_text_embedding_batch(TEXTS)
    asyncio.run(emb.aget_query_embedding("a query"))
    assert cost.embedding_requests == 4 and cost.successful_requests == 0
    info = default_catalog().get(emb.model_name)
    assert info is not None and info.input_price is not None
    assert cost.embedding_tokens > len(TEXTS)
    assert cost.embedding_cost == cost.total_cost == cost.embedding_tokens * info.input_price / Decimal(1_000_000)
    assert cost.by_model[emb.model_name].requests == 4


def test_instrument_tags_reach_the_gateway_and_records(conn: Any, emu: Any) -> None:
    import json

    from llama_index.core.instrumentation.dispatcher import instrument_tags

    cost = CloudflareCostHandler()
    seen: list[Any] = []
    cost.on_cfgateway_records = lambda records, operation="embed": seen.extend(records)  # type: ignore[method-assign]
    emb = CloudflareEmbedding(callback_manager=CallbackManager([cost]), **conn(gateway=True))
    with instrument_tags({"user_id": "u-9", "tenant": "acme"}):
        asyncio.run(emb.aget_text_embedding_batch(["one text", "two texts"]))
    assert json.loads(emu.state.requests[0].headers["cf-aig-metadata"]) == {"tenant": "acme", "user": "u-9"}
    assert seen and seen[0].user == "u-9" and seen[0].tags == {"tenant": "acme"}


class _EmbedEvents:
    """Counts LlamaIndex embedding events: callback-manager pairs (and their exceptions) and dispatcher ends."""

    def __init__(self) -> None:
        from llama_index.core.callbacks import CBEventType, EventPayload
        from llama_index.core.callbacks.base_handler import BaseCallbackHandler

        starts: list[str] = []
        ends: list[Any] = []
        self.starts, self.ends = starts, ends

        class Handler(BaseCallbackHandler):
            def __init__(self) -> None:
                super().__init__([], [])

            def on_event_start(self, event_type: Any, payload: Any = None, event_id: str = "", parent_id: str = "",
                               **kw: Any) -> str:
                if event_type == CBEventType.EMBEDDING:
                    starts.append(event_id)
                return event_id

            def on_event_end(self, event_type: Any, payload: Any = None, event_id: str = "", **kw: Any) -> None:
                if event_type == CBEventType.EMBEDDING:
                    p = payload or {}
                    ends.append((event_id, p.get(EventPayload.CHUNKS), p.get(EventPayload.EXCEPTION)))

            def start_trace(self, trace_id: str | None = None) -> None:
                return None

            def end_trace(self, trace_id: str | None = None, trace_map: Any = None) -> None:
                return None

        self.handler = Handler()


def _count_sync_peak(client: Any) -> dict[str, int]:
    import threading

    original = client.embed
    state = {"now": 0, "peak": 0, "calls": 0}
    lock = threading.Lock()

    def counted(*a: Any, **k: Any) -> Any:
        with lock:
            state["now"] += 1
            state["calls"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            return original(*a, **k)
        finally:
            with lock:
                state["now"] -= 1

    client.embed = counted
    return state


def test_sync_batches_run_concurrently_with_one_event_per_batch(conn: Any, emu: Any) -> None:
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events.embedding import EmbeddingEndEvent

    emu.state.add_fault(Fault(path="*bge*", kind="delay", delay_s=0.05))
    events = _EmbedEvents()
    dispatched: list[EmbeddingEndEvent] = []

    class Ends(BaseEventHandler):
        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, EmbeddingEndEvent):
                dispatched.append(event)

    root = get_dispatcher()
    handler = Ends()
    root.add_event_handler(handler)
    try:
        emb = CloudflareEmbedding(embed_batch_size=10, max_concurrency=3,
                                  callback_manager=CallbackManager([events.handler]), **conn())
        state = _count_sync_peak(emb._client())
        vectors = emb.get_text_embedding_batch(TEXTS[:60])
    finally:
        root.event_handlers.remove(handler)
    assert state["peak"] == 3 and state["calls"] == 6  # one request per LlamaIndex batch, 3 at a time
    assert _sizes(emu) == [10] * 6
    assert len(events.starts) == 6 and [e[0] for e in events.ends] == events.starts  # ended in batch order
    assert [e[1] for e in events.ends] == [TEXTS[i : i + 10] for i in range(0, 60, 10)]
    assert [len(e.embeddings) for e in dispatched] == [10] * 6 and dispatched[2].chunks == TEXTS[20:30]
    emu.state.clear()
    assert vectors[0] == emb.get_text_embedding(TEXTS[0]) and vectors[59] == emb.get_text_embedding(TEXTS[59])


def test_sync_batch_failure_stops_unsent_batches_and_ends_every_event(conn: Any, emu: Any) -> None:
    emu.state.add_fault(Fault(path="*bge*", kind="error", status=400, code=5006, message="bad batch", times=1,
                              delay_s=0.05))
    emu.state.add_fault(Fault(path="*bge*", kind="delay", delay_s=0.05))
    events = _EmbedEvents()
    emb = CloudflareEmbedding(embed_batch_size=10, max_concurrency=2, max_retries=0,
                              callback_manager=CallbackManager([events.handler]), **conn())
    with pytest.raises(BadRequestError, match="bad batch"):
        emb.get_text_embedding_batch(TEXTS[:100])
    assert len(emu.state.requests) < 10  # the batches not yet sent were not sent
    assert len(events.ends) == len(events.starts) == 10 and {e[0] for e in events.ends} == set(events.starts)
    failed = [e for e in events.ends if e[2] is not None]  # whichever batch reached the server first failed:
    assert failed and all(e[1] is None for e in failed)  # it and every batch after it end with the error,
    assert all(e[1] is not None for e in events.ends[: 10 - len(failed)])  # the ones before with their texts


def test_sync_batches_show_llama_index_progress_bar(conn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    CloudflareEmbedding(embed_batch_size=10, **conn()).get_text_embedding_batch(TEXTS[:30], show_progress=True)
    err = capsys.readouterr().err
    assert "Generating embeddings" in err and "30/30" in err


def test_async_batches_keep_one_event_per_batch_and_the_progress_bar(conn: Any, emu: Any,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    events = _EmbedEvents()
    emb = CloudflareEmbedding(embed_batch_size=10, callback_manager=CallbackManager([events.handler]), **conn())
    vectors = asyncio.run(emb.aget_text_embedding_batch(TEXTS[:45], show_progress=True))
    assert len(events.starts) == 5 and [e[0] for e in events.ends] == events.starts
    assert [len(e[1]) for e in events.ends] == [10, 10, 10, 10, 5] and all(e[2] is None for e in events.ends)
    assert "Generating embeddings" in capsys.readouterr().err
    assert len(vectors) == 45 and vectors[44] == emb.get_text_embedding(TEXTS[44])


def test_async_batch_failure_ends_every_event_with_the_error(conn: Any, emu: Any) -> None:
    emu.state.add_fault(Fault(path="*bge*", kind="error", status=400, code=5006, message="bad batch", times=1))
    events = _EmbedEvents()
    emb = CloudflareEmbedding(embed_batch_size=10, max_retries=0, callback_manager=CallbackManager([events.handler]),
                              **conn())
    with pytest.raises(BadRequestError, match="bad batch"):
        asyncio.run(emb.aget_text_embedding_batch(TEXTS[:50]))
    assert len(events.ends) == len(events.starts) == 5 and all(e[2] is not None for e in events.ends)
    _settle(emu)  # the batches already on the wire when the first failed land now, not in the next test


def _settle(emu: Any, quiet_s: float = 0.1, limit_s: float = 2.0) -> None:
    """Wait until the emulator's request log has not grown for ``quiet_s`` (at most ``limit_s``)."""
    end, seen, since = time.monotonic() + limit_s, -1, time.monotonic()
    while time.monotonic() < end:
        if len(emu.state.requests) != seen:
            seen, since = len(emu.state.requests), time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.01)


def test_async_empty_input_is_refused_before_sending(conn: Any, emu: Any) -> None:
    mine = [*TEXTS[200:231], " ", *TEXTS[231:241]]
    with pytest.raises(InvalidInputError, match="input 31 is empty"):
        asyncio.run(CloudflareEmbedding(embed_batch_size=10, **conn()).aget_text_embedding_batch(mine))
    # none of this call's texts reached the server (a request the previous test left in flight may
    # still land in the log after the reset, so the check is on this call's own texts)
    sent = [t for r in emu.state.requests for t in (r.json or {}).get("text", [])]
    assert not set(sent) & set(mine)


def test_sync_batches_answered_after_a_failed_one_reach_the_cost_handler(conn: Any, emu: Any) -> None:
    """The first batch to arrive fails slowly; the batches answered (and billed) meanwhile are all booked."""
    emu.state.add_fault(Fault(path="*bge*", kind="error", status=400, code=5006, message="bad batch", delay_s=0.3,
                              times=1))
    cost = CloudflareCostHandler()
    emb = CloudflareEmbedding(embed_batch_size=10, max_concurrency=4, max_retries=0,
                              callback_manager=CallbackManager([cost]), **conn())
    with pytest.raises(BadRequestError, match="bad batch"):
        emb.get_text_embedding_batch(TEXTS[:100])
    _settle(emu)
    answered = [r for r in emu.state.requests if r.status == 200]
    assert answered and cost.embedding_requests == len(answered)
