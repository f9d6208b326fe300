"""The core Vectorize client against the emulated Vectorize: index management and its errors, read-after-write
under the emulator's delay (each unknown of the contract switched both ways), queries, filters, namespaces,
limits, batching, retries and usage records. Sync and async."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest
from _emu import emulator_fixtures

from cfgateway import CostTracker, open_ledger
from cfgateway.emulator import EmulatorServer, Fault
from cfgateway.errors import BadRequestError, ConfigError, InvalidInputError, NotFoundError, RateLimitError
from cfgateway.errors import TimeoutError as CFTimeoutError
from cfgateway.vectorize import Vector, VectorizeClient, VectorizeIndex, WaitPolicy

FAST = WaitPolicy(timeout=5.0, poll_initial=0.01, poll_max=0.05)


server, emu = emulator_fixtures()


def client(emu: EmulatorServer, **kw: Any) -> VectorizeClient:
    kw.setdefault("wait_policy", FAST)
    return VectorizeClient(account_id="acct", api_token="tok", base_url=emu.base_url, **kw)


@pytest.fixture()
def idx(emu: EmulatorServer) -> VectorizeIndex:
    index = client(emu).index("docs")
    index.create(3, metric="cosine")
    return index


def paths(emu: EmulatorServer, tail: str) -> list[Any]:
    return [r for r in emu.state.requests if r.path.endswith(tail)]


# -- indexes and their errors -------------------------------------------------------------------------------
def test_create_describe_list_delete_and_reuse_a_name(emu: EmulatorServer) -> None:
    vz = client(emu)
    made = vz.create_index("docs", dimensions=4, metric="euclidean", description="mine")
    assert (made.name, made.config.dimensions, made.config.metric, made.description) == ("docs", 4, "euclidean", "mine")
    assert [i.name for i in vz.list_indexes()] == ["docs"]
    vz.delete_index("docs")
    with pytest.raises(NotFoundError, match="was deleted: create it again") as e:
        vz.index("docs").info()
    assert e.value.code == 3005
    assert vz.create_index("docs", dimensions=2).config.metric == "cosine"  # a deleted name can be reused


@pytest.mark.parametrize("status", [404, 400])
def test_missing_index_is_not_found_whatever_the_status(emu: EmulatorServer, status: int) -> None:
    emu.state.vectorize.settings.not_found_status = status
    with pytest.raises(NotFoundError, match=r"create it with create_index\(dimensions=") as e:
        client(emu).index("nope").query([1.0, 2.0])
    assert (e.value.code, e.value.status) == (3000, status)


@pytest.mark.parametrize("status", [409, 400])
def test_duplicate_name_and_exist_ok(emu: EmulatorServer, status: int) -> None:
    emu.state.vectorize.settings.duplicate_status = status
    vz = client(emu)
    vz.create_index("docs", dimensions=3)
    with pytest.raises(BadRequestError, match="already has this name") as e:
        vz.create_index("docs", dimensions=3)
    assert e.value.code == 3002
    assert vz.create_index("docs", dimensions=3, metric="cosine", exist_ok=True).config.dimensions == 3
    with pytest.raises(ConfigError, match="already exists with 3 dimensions"):
        vz.create_index("docs", dimensions=5, exist_ok=True)


@pytest.mark.parametrize("metric", ["cosine", "dot-product"])
def test_a_preset_index_answers_201_and_its_metric_is_read_back(emu: EmulatorServer, metric: str) -> None:
    emu.state.vectorize.settings.create_status = 201
    emu.state.vectorize.settings.preset_metric = metric
    index = client(emu).index("bge")
    made = index.create(preset="@cf/baai/bge-small-en-v1.5")
    assert (made.config.dimensions, index.config().metric) == (384, metric)


def test_bad_names_and_settings_are_refused_before_anything_is_sent(emu: EmulatorServer) -> None:
    with pytest.raises(InvalidInputError, match="lowercase"):
        client(emu).index("../ai/run")
    with pytest.raises(ConfigError, match="CLOUDFLARE_API_TOKEN"):
        VectorizeClient(account_id="acct", api_token="", base_url=emu.base_url)
    assert emu.state.requests == []


# -- read-after-write under the delay ------------------------------------------------------------------------
def test_upsert_waits_until_readable_and_wait_false_does_not(emu: EmulatorServer, idx: VectorizeIndex) -> None:
    emu.state.vectorize.settings.delay_s = 0.3
    t0 = time.monotonic()
    (m,) = idx.upsert([Vector("a", [1, 0, 0], {"t": "A"})])
    assert time.monotonic() - t0 >= 0.3 and [v.id for v in idx.get_by_ids(["a"])] == ["a"]
    (m2,) = idx.upsert([Vector("b", [0, 1, 0])], wait=False)
    assert idx.get_by_ids(["b"]) == [] and idx.query([0, 1, 0], top_k=2)[0].id == "a"
    idx.wait_for([m2])
    assert idx.query([0, 1, 0], top_k=1)[0].id == "b" and m.kind == "upsert"


def test_insert_keeps_existing_ids_and_an_identical_reupsert_still_waits(emu: EmulatorServer,
                                                                          idx: VectorizeIndex) -> None:
    emu.state.vectorize.settings.delay_s = 0.2
    idx.upsert([Vector("a", [1, 0, 0], {"t": "first"})])
    idx.insert([Vector("a", [0, 1, 0], {"t": "second"}), Vector("b", [0, 0, 1])])
    assert {v.id: v.metadata for v in idx.get_by_ids(["a", "b"])} == {"a": {"t": "first"}, "b": None}
    idx.create_metadata_index("t", "string")
    assert idx.query([1, 0, 0], filter={"t": "first"}) == []  # written before the metadata index
    idx.upsert([Vector("a", [1, 0, 0], {"t": "first"})])  # same content: only processing makes it filterable
    assert [m.id for m in idx.query([1, 0, 0], filter={"t": "first"})] == ["a"]


@pytest.mark.parametrize("report", ["mutation", "batch_id"])
def test_a_mutation_never_reported_by_id_ends_the_wait_once_readable(emu: EmulatorServer, idx: VectorizeIndex,
                                                                      report: str) -> None:
    s = emu.state.vectorize.settings
    s.delay_s, s.report = 0.2, report
    (first,) = idx.upsert([Vector("a", [1, 0, 0])], wait=False)
    (second,) = idx.upsert([Vector("b", [0, 1, 0])], wait=False)  # both fall due in one batch
    time.sleep(0.3)
    t0 = time.monotonic()
    idx.wait_for([first], timeout=3.0)
    assert time.monotonic() - t0 < 1.0
    assert idx.info().processed_up_to_mutation != first.id
    if report == "batch_id":
        assert idx.info().processed_up_to_mutation not in (first.id, second.id)


def test_reads_lagging_the_info_still_give_read_after_write(emu: EmulatorServer, idx: VectorizeIndex) -> None:
    s = emu.state.vectorize.settings
    s.delay_s, s.read_lag_s = 0.05, 0.4
    idx.upsert([Vector("a", [1, 0, 0], {"k": 1})])
    assert [m.id for m in idx.query([1, 0, 0], top_k=1)] == ["a"]
    idx.delete_by_ids(["a"])
    assert idx.query([1, 0, 0]) == [] and idx.get_by_ids(["a"]) == []


def test_a_write_that_never_shows_times_out_naming_the_mutation(emu: EmulatorServer, idx: VectorizeIndex) -> None:
    emu.state.vectorize.settings.delay_s = 30
    with pytest.raises(CFTimeoutError, match=r"Vectorize mutation [0-9a-f-]{36} \(upsert of 1 vector") as e:
        idx.upsert([Vector("a", [1, 0, 0])], timeout=0.3)
    assert isinstance(e.value, TimeoutError)


# -- queries --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("metric", "order", "closest"), [
    ("cosine", ["a", "b", "c"], 1.0), ("euclidean", ["a", "b", "c"], 0.0), ("dot-product", ["c", "b", "a"], -10.0)])
def test_the_three_metrics_and_their_order(emu: EmulatorServer, metric: str, order: list[str], closest: float) -> None:
    index = client(emu).index("metric-test")
    index.create(2, metric=metric)
    index.upsert([Vector("a", [1, 0]), Vector("b", [2, 1]), Vector("c", [10, 10])])
    got = index.query([1, 0], top_k=3)
    assert [m.id for m in got] == order and got[0].score == pytest.approx(closest, abs=1e-6)


def test_top_k_over_50_with_data_is_answered_through_a_second_read(emu: EmulatorServer, idx: VectorizeIndex) -> None:
    idx.upsert([Vector(f"v{i}", [1, i / 100, 0], {"i": i}) for i in range(80)])
    emu.state.clear_requests()
    got = idx.query([1, 0, 0], top_k=70, return_values=True, return_metadata="all")
    assert len(got) == 70 and all(m.values and m.metadata is not None for m in got)
    (q,) = paths(emu, "/query")
    assert q.json["returnValues"] is False and q.json["returnMetadata"] == "none"
    assert len(paths(emu, "/get_by_ids")) == 1
    with pytest.raises(InvalidInputError, match="limit of 100"):
        idx.query([1, 0, 0], top_k=101)


@pytest.mark.parametrize("mode", ["empty", "error"])
def test_a_filter_on_a_property_without_metadata_index_is_an_error_either_way(emu: EmulatorServer,
                                                                              idx: VectorizeIndex, mode: str) -> None:
    emu.state.vectorize.settings.unindexed_filter = mode
    idx.upsert([Vector("a", [1, 0, 0], {"lang": "en"})])
    expected = InvalidInputError if mode == "empty" else BadRequestError
    with pytest.raises(expected, match="metadata index"):
        idx.query([1, 0, 0], filter={"lang": "en"})


def test_filters_in_both_syntaxes_and_namespaces(emu: EmulatorServer, idx: VectorizeIndex) -> None:
    idx.create_metadata_index("year", "number")
    idx.create_metadata_index("lang", "string")
    idx.upsert([Vector("a", [1, 0, 0], {"year": 2001, "lang": "en"}, "n1"),
                Vector("b", [1, 0.1, 0], {"year": 2015, "lang": "fr"}, "n2"),
                Vector("c", [1, 0.2, 0], {"year": 2005, "lang": "fr"})])
    assert [m.id for m in idx.query([1, 0, 0], top_k=5, filter={"year": {"$gte": 2000, "$lt": 2010}})] == ["a", "c"]
    lc = {"$and": [{"lang": {"$in": ["fr"]}}, {"year": {"$gt": 2010}}]}
    assert [m.id for m in idx.query([1, 0, 0], top_k=5, filter=lc)] == ["b"]
    assert [m.id for m in idx.query([1, 0, 0], top_k=5, namespace="n2")] == ["b"]
    assert [m.namespace for m in idx.query([1, 0, 0], top_k=5)] == ["n1", "n2", None]
    emu.state.vectorize.settings.query_all_namespaces = False
    assert [m.id for m in idx.query([1, 0, 0], top_k=5)] == ["c"]
    scoped = client(emu).index("docs", namespace="n1")
    assert [m.id for m in scoped.query([1, 0, 0], top_k=5)] == ["a"]
    assert [v.id for v in scoped.get_by_ids(["a", "b"])] == ["a"]


@pytest.mark.parametrize("order", ["request", "reverse", "stored"])
def test_get_by_ids_answers_in_the_order_asked(emu: EmulatorServer, idx: VectorizeIndex, order: str) -> None:
    emu.state.vectorize.settings.get_by_ids_order = order
    idx.upsert([Vector(i, [1, 0, 0]) for i in "abcd"])
    assert [v.id for v in idx.get_by_ids(["c", "zz", "a", "d"])] == ["c", "a", "d"]


# -- batching, limits, retries ---------------------------------------------------------------------------------
def test_big_writes_go_in_concurrent_requests_of_at_most_5000(emu: EmulatorServer) -> None:
    index = client(emu).index("big")
    index.create(2)
    mutations = index.upsert([Vector(f"v{i}", [1.0, i]) for i in range(12_001)])
    sizes = sorted(len(r.json) for r in paths(emu, "/upsert"))
    assert sizes == [2001, 5000, 5000] and len(mutations) == 3 and index.info().vector_count == 12_001
    assert all(r.query == {"unparsable-behavior": "error"} for r in emu.state.requests if r.path.endswith("upsert"))


def test_many_ids_are_sent_in_chunks(emu: EmulatorServer, idx: VectorizeIndex) -> None:
    emu.state.vectorize.settings.max_ids = 1000
    idx.upsert([Vector(f"v{i}", [1, 0, 0]) for i in range(2500)])
    assert len(idx.get_by_ids([f"v{i}" for i in range(2500)])) == 2500
    idx.delete_by_ids([f"v{i}" for i in range(2500)])
    assert len(paths(emu, "/delete_by_ids")) == 3 and idx.info().vector_count == 0
    assert list(idx.iter_ids()) == []


def test_listing_every_id_page_by_page(emu: EmulatorServer, idx: VectorizeIndex) -> None:
    idx.upsert([Vector(f"v{i:04d}", [1, 0, 0]) for i in range(2300)])
    assert list(idx.iter_ids()) == [f"v{i:04d}" for i in range(2300)]
    assert len(paths(emu, "/list")) == 3
    first = idx.list_ids(1000)
    assert first.truncated and first.total_count == 2300 and first.next_cursor


def test_rate_limit_971_is_retried_and_other_errors_are_typed(emu: EmulatorServer, idx: VectorizeIndex) -> None:
    emu.state.add_fault(Fault("*/vectorize/v2/indexes/docs/query", "error", status=429, retry_after=0, times=1))
    assert idx.query([1, 0, 0]) == []
    assert [r.status for r in paths(emu, "/query")] == [429, 200]
    emu.state.add_fault(Fault("*/vectorize/v2/indexes/docs/info", "error", status=429, retry_after=0))
    with pytest.raises(RateLimitError, match="code 971.*send fewer, larger batches"):
        client(emu, wait_policy=FAST, max_retries=0).index("docs").info()


def test_dimension_mismatch_is_refused_before_sending(emu: EmulatorServer, idx: VectorizeIndex) -> None:
    with pytest.raises(InvalidInputError, match="has 2 dimensions but the index has 3"):
        idx.upsert([Vector("a", [1.0, 2.0])])
    assert paths(emu, "/upsert") == []


# -- costs ----------------------------------------------------------------------------------------------------
def test_queries_and_writes_are_booked_with_their_dimensions(emu: EmulatorServer) -> None:
    tracker = CostTracker(open_ledger("memory://"))
    index = client(emu, tracker=tracker).index("docs")
    index.create(768)
    index.upsert([Vector("a", [0.1] * 768), Vector("b", [0.2] * 768)])
    index.query([0.1] * 768)
    recs = [r for r in tracker.ledger.records() if r.operation == "vectorize"]
    assert [(r.tags["op"], r.tags["stored_dimensions"], r.tags["queried_dimensions"]) for r in recs] == [
        ("upsert", 1536, 1536), ("query", 0, 768)]
    assert recs[0].cost == Decimal("1536") * (Decimal("0.01") + Decimal("0.0005")) / 1_000_000
    assert recs[1].cost == Decimal("0.00000768") and recs[1].model == "vectorize/docs"
    assert index.monthly_cost() == recs[0].cost


# -- async ----------------------------------------------------------------------------------------------------
async def test_async_twins(emu: EmulatorServer) -> None:
    emu.state.vectorize.settings.delay_s = 0.1
    index = client(emu).index("asy")
    await index.acreate(2, metric="euclidean")
    await index.aupsert([Vector("a", [0, 0]), Vector("b", [3, 4])])
    got = await index.aquery([0, 0], top_k=2, return_values=True)
    assert [(m.id, m.score) for m in got] == [("a", 0.0), ("b", 5.0)]
    await index.acreate_metadata_index("k", "number")
    assert [m.property_name for m in await index.alist_metadata_indexes()] == ["k"]
    await index.adelete_by_ids(["a"])
    assert [v.id for v in await index.aget_by_ids(["a", "b"])] == ["b"]
    assert [i async for i in index.aiter_ids()] == ["b"]
    await index.adelete()
    with pytest.raises(NotFoundError):
        await index.ainfo()


async def test_async_write_batches_from_an_async_generator(emu: EmulatorServer) -> None:
    index = client(emu, max_concurrency=2).index("gen")
    await index.acreate(1)

    async def batches() -> Any:
        for n in range(3):
            await asyncio.sleep(0)
            yield [Vector(f"{n}-{i}", [1.0]) for i in range(4000)]

    mutations = await index.awrite_batches("upsert", batches())
    assert len(mutations) == 3 and (await index.ainfo()).vector_count == 12_000


def test_a_failed_batch_stops_the_write_and_carries_the_mutations_already_accepted(emu: EmulatorServer) -> None:
    index = client(emu, max_concurrency=1, max_retries=0).index("part")
    index.create(1)

    def batches() -> Any:
        yield [Vector(f"a{i}", [1.0]) for i in range(10)]
        while not [r for r in paths(emu, "/upsert") if r.status == 200]:  # the first batch has been accepted
            time.sleep(0.01)
        emu.state.add_fault(Fault("*/part/upsert", "error", status=400, code=40012, message="bad vector"))
        yield [Vector(f"b{i}", [1.0]) for i in range(10)]
        yield [Vector(f"c{i}", [1.0]) for i in range(10)]

    with pytest.raises(BadRequestError, match="40012") as e:
        index.write_batches("upsert", batches())
    (accepted,) = e.value.mutations  # type: ignore[attr-defined]
    assert accepted.ids[0] == "a0" and len(paths(emu, "/upsert")) == 2  # the third batch was never sent
