"""The emulated Vectorize v2 API over raw HTTP (what any client sees): encodings, the error envelope and the
recorded error texts, filter semantics and their switches, info before/after processing, faults and the
request log on these routes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cfgateway.emulator import EmulatorServer, Fault

BASE = "/client/v4/accounts/acct/vectorize/v2/indexes"
AUTH = {"Authorization": "Bearer tok"}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as s:
        yield s


@pytest.fixture()
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    server.state.clear()
    with httpx.Client(base_url=server.url + BASE, headers=AUTH, timeout=5) as c:
        c.post("", json={"name": "docs", "config": {"dimensions": 3, "metric": "cosine"}}).raise_for_status()
        yield c


def ndjson(*rows: dict[str, Any]) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in rows) + b"\n"


def write(http: httpx.Client, *rows: dict[str, Any], kind: str = "upsert", **params: str) -> httpx.Response:
    return http.post(f"/docs/{kind}", content=ndjson(*rows), params=params,
                     headers={"Content-Type": "application/x-ndjson"})


def error(r: httpx.Response) -> tuple[int, int, str]:
    body = r.json()
    assert body["success"] is False and body["result"] is None
    return r.status_code, body["errors"][0]["code"], body["errors"][0]["message"]


def test_writes_return_a_mutation_and_show_only_after_the_delay(http: httpx.Client, server: EmulatorServer) -> None:
    server.state.vectorize.settings.delay_s = 0.2
    r = write(http, {"id": "a", "values": [1, 0, 0], "metadata": {"t": "x"}})
    mid = r.json()["result"]["mutationId"]
    assert r.json()["result"] == {"mutationId": mid}
    assert http.get("/docs/info").json()["result"] == {"dimensions": 3, "vectorCount": 0}  # fields absent before
    assert http.post("/docs/get_by_ids", json={"ids": ["a"]}).json()["result"] == []
    time.sleep(0.25)
    info = http.get("/docs/info").json()["result"]
    assert info["processedUpToMutation"] == mid and info["vectorCount"] == 1 and info["processedUpToDatetime"]
    assert http.post("/docs/get_by_ids", json={"ids": ["a"]}).json()["result"] == [
        {"id": "a", "values": [1.0, 0.0, 0.0], "metadata": {"t": "x"}}]


def test_multipart_upload_with_a_vectors_part(http: httpx.Client) -> None:
    r = http.post("/docs/insert", files={"vectors": ("v.ndjson", ndjson({"id": "m", "values": [0.1, 0.2, 0.3]}))})
    assert r.status_code == 200
    (got,) = http.post("/docs/get_by_ids", json={"ids": ["m"]}).json()["result"]
    assert got["values"] == pytest.approx([0.1, 0.2, 0.3]) and got["values"][0] != 0.1  # stored as float32


def test_recorded_error_texts(http: httpx.Client) -> None:
    assert error(write(http, {"id": "x", "values": [1, 2]})) == (
        400, 40012, 'invalid vector for id="x", expected 3 dimensions, and got 2 dimensions')
    q = {"vector": [1, 2, 3, 4], "topK": 1}
    assert error(http.post("/docs/query", json=q)) == (
        400, 40006, "invalid query vector, expected 3 dimensions, and got 4 dimensions")
    q = {"vector": [1, 2, 3], "topK": 100, "returnValues": True}
    assert error(http.post("/docs/query", json=q))[1:] == (40025, (
        "with returnValues=true or returnMetadata=all, max top K is 50, but got 100; for a top K up to 100, retry "
        "with returnValues=false and returnMetadata=indexed"))
    assert error(http.post("/docs/query", json={"vector": [1, 2, 3], "returnMetadata": True})) == (
        400, 40026, "Failed to parse the request body as JSON: returnMetadata: expected value")
    r = http.post("/docs/metadata_index/create", content=b'{"propertyName":"a","indexType":"string"}')
    assert error(r) == (400, 40026, "Expected request with `Content-Type: application/json`")
    assert error(http.get("/nope/info"))[1:] == (3000, 'vectorize.index.not_found - Index name "nope"')
    r = http.post("", json={"name": "docs", "config": {"dimensions": 3, "metric": "cosine"}})
    assert error(r)[1:] == (3002, 'vectorize.index.duplicate_name - Index name "docs"')
    assert error(http.put("/docs"))[:2] == (405, 7001)
    assert error(http.get("/docs/elsewhere"))[:2] == (404, 7003)
    assert http.get("/docs/info", headers={"Authorization": ""}).json()["errors"][0]["code"] == 9106


@pytest.mark.parametrize("body", [
    {"name": "Bad Name", "config": {"dimensions": 3, "metric": "cosine"}},
    {"name": "ok-name", "config": {"dimensions": 0, "metric": "cosine"}},
    {"name": "ok-name", "config": {"dimensions": 3, "metric": "manhattan"}},
    {"name": "ok-name", "config": {"preset": "nope"}},
    {"name": "ok-name"},
])
def test_bad_create_bodies_get_a_4xx(http: httpx.Client, body: dict[str, Any]) -> None:
    assert http.post("", json=body).status_code == 400


@pytest.mark.parametrize("rows", [
    [{"id": "", "values": [1, 2, 3]}], [{"id": "x" * 65, "values": [1, 2, 3]}],
    [{"id": "a", "values": [1, "2", 3]}], [{"id": "a", "values": [1, 2, 3], "namespace": ""}],
    [{"id": "a", "values": [1, 2, 3], "metadata": {"$bad": 1}}],
    [{"id": "a", "values": [1, 2, 3], "metadata": {"t": "x" * 11000}}],
])
def test_bad_vectors_are_refused(http: httpx.Client, rows: list[dict[str, Any]]) -> None:
    assert error(write(http, *rows))[:2] == (400, 40012)


def test_unparsable_lines_follow_the_parameter_or_the_switchable_default(http: httpx.Client,
                                                                         server: EmulatorServer) -> None:
    body = b'{"id":"a","values":[1,0,0]}\nnot json\n'
    headers = {"Content-Type": "application/x-ndjson"}
    assert http.post("/docs/upsert", content=body, headers=headers).status_code == 400
    assert http.post("/docs/upsert?unparsable-behavior=discard", content=body, headers=headers).status_code == 200
    server.state.vectorize.settings.unparsable_default = "discard"
    assert http.post("/docs/upsert", content=body, headers=headers).status_code == 200
    assert http.post("/docs/upsert?unparsable-behavior=error", content=body, headers=headers).status_code == 400
    assert error(http.post("/docs/upsert", content=ndjson(*[{"id": f"{i}", "values": [1, 0, 0]} for i in range(5001)]),
                           headers=headers))[0] == 400


def query(http: httpx.Client, **body: Any) -> list[str]:
    r = http.post("/docs/query", json={"vector": [1, 0, 0], "topK": 10, **body})
    assert r.status_code == 200, r.text
    return [m["id"] for m in r.json()["result"]["matches"]]


def test_filters_only_see_vectors_written_after_their_metadata_index(http: httpx.Client) -> None:
    write(http, {"id": "early", "values": [1, 0, 0], "metadata": {"k": "x"}})
    http.post("/docs/metadata_index/create", json={"propertyName": "k", "indexType": "string"})
    write(http, {"id": "late", "values": [1, 0, 0], "metadata": {"k": "x"}})
    assert query(http, filter={"k": "x"}) == ["late"]
    assert http.get("/docs/metadata_index/list").json()["result"] == {
        "metadataIndexes": [{"propertyName": "k", "indexType": "string"}]}


def test_filter_operators_strings_cut_at_64_bytes_and_missing_properties(http: httpx.Client,
                                                                         server: EmulatorServer) -> None:
    for prop, kind in (("n", "number"), ("s", "string"), ("b", "boolean"), ("deep.x", "number")):
        http.post("/docs/metadata_index/create", json={"propertyName": prop, "indexType": kind})
    long = "é" * 40  # 80 bytes: the index keeps 64
    write(http, {"id": "a", "values": [1, 0, 0], "metadata": {"n": 1, "s": long, "b": True, "deep": {"x": 5}}},
          {"id": "b", "values": [1, 0.1, 0], "metadata": {"n": 5, "s": "m"}},
          {"id": "c", "values": [1, 0.2, 0], "metadata": {"n": 9}})
    assert query(http, filter={"n": {"$gt": 1, "$lte": 9}}) == ["b", "c"]
    assert query(http, filter={"s": {"$eq": "é" * 32 + "zzz"}}) == ["a"]  # equal in the first 64 bytes
    assert query(http, filter={"s": {"$lt": "n"}}) == ["b"]
    assert query(http, filter={"b": True}) == ["a"] and query(http, filter={"b": 1}) == []
    assert query(http, filter={"deep.x": {"$in": [5, 6]}}) == ["a"]
    assert query(http, filter={"s": {"$ne": "m"}}) == ["a", "c"]
    server.state.vectorize.settings.negation_matches_missing = False
    assert query(http, filter={"s": {"$nin": ["m"]}}) == ["a"]
    indexed = http.post("/docs/query", json={"vector": [1, 0, 0], "topK": 1, "returnMetadata": "indexed"})
    assert indexed.json()["result"]["matches"][0]["metadata"] == {"b": True, "n": 1, "s": "é" * 32}
    bad = http.post("/docs/query", json={"vector": [1, 0, 0], "filter": {"n": {"$gt": 1, "$ne": 2}}})
    assert error(bad)[0] == 400


def test_list_pages_come_from_a_snapshot(http: httpx.Client) -> None:
    write(http, *[{"id": f"v{i}", "values": [1, 0, 0]} for i in range(5)])
    first = http.get("/docs/list", params={"count": 2}).json()["result"]
    write(http, {"id": "v9", "values": [1, 0, 0]})
    assert (first["count"], first["totalCount"], first["isTruncated"]) == (2, 5, True)
    rest = http.get("/docs/list", params={"count": 10, "cursor": first["nextCursor"]}).json()["result"]
    assert [v["id"] for v in rest["vectors"]] == ["v2", "v3", "v4"] and rest["isTruncated"] is False
    assert http.get("/docs/list", params={"cursor": "forged"}).status_code == 400
    assert http.get("/docs/list", params={"count": "1001"}).status_code == 400


def test_faults_and_the_request_log_cover_vectorize(http: httpx.Client, server: EmulatorServer) -> None:
    server.state.add_fault(Fault(f"{BASE}/docs/query", "error", status=429, times=1))
    assert error(http.post("/docs/query", json={"vector": [1, 0, 0]}))[:2] == (429, 971)
    server.state.add_fault(Fault(f"{BASE}/docs/info", "error", status=503, times=1))
    assert error(http.get("/docs/info"))[0] == 503
    write(http, {"id": "a", "values": [1, 0, 0]})
    logged = [r for r in server.state.requests if r.path.endswith("/upsert")]
    assert logged[0].json == [{"id": "a", "values": [1, 0, 0]}] and logged[0].status == 200
    assert "tok" not in repr(logged[0])


def test_switches_over_the_control_endpoint(server: EmulatorServer) -> None:
    server.state.clear()
    with httpx.Client(base_url=server.url, timeout=5) as c:
        assert c.get("/__emulator/vectorize").json()["delay_s"] == 0.0
        assert c.post("/__emulator/vectorize", json={"delay_s": 2, "report": "batch_id"}).json()["delay_s"] == 2.0
        assert server.state.vectorize.settings.report == "batch_id"
        assert c.post("/__emulator/vectorize", json={"delay": 1}).status_code == 400
        assert c.post("/__emulator/vectorize", json={"delay_s": "1"}).status_code == 400
        c.post("/__emulator/reset")
    assert server.state.vectorize.settings.delay_s == 0.0
