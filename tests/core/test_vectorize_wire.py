"""The Vectorize wire module: requests as the contract describes them, answers parsed strictly (a 2xx body that
does not match raises MalformedResponseError, nothing is dropped silently)."""

from __future__ import annotations

import json

import pytest

from cfgateway.errors import MalformedResponseError
from cfgateway.vectorize import Vector, wire


def test_paths_methods_and_content_types() -> None:
    assert (wire.list_indexes().method, wire.list_indexes().path) == ("GET", "")
    c = wire.create_index("docs", {"dimensions": 3, "metric": "cosine"}, "d")
    assert (c.method, c.path, c.content_type) == ("POST", "", "application/json")
    assert json.loads(c.body or b"") == {"name": "docs", "config": {"dimensions": 3, "metric": "cosine"},
                                         "description": "d"}
    assert (wire.delete_index("docs").method, wire.delete_index("docs").path) == ("DELETE", "/docs")
    assert wire.info("docs").path == "/docs/info"
    assert wire.list_vectors("docs", 10, "a b&c").path == "/docs/list?count=10&cursor=a+b%26c"
    assert wire.delete_by_ids("docs", ["1"]).path == "/docs/delete_by_ids"
    assert json.loads(wire.create_metadata_index("docs", "k", "number").body or b"") == {
        "propertyName": "k", "indexType": "number"}


def test_writes_are_ndjson_with_an_explicit_unparsable_behaviour() -> None:
    vs = [Vector("a", [1.0, 2.0], {"t": "x"}, "ns"), Vector("b", [3.0, 4.0])]
    c = wire.write("docs", "upsert", vs)
    assert c.path == "/docs/upsert?unparsable-behavior=error" and c.content_type == "application/x-ndjson"
    lines = (c.body or b"").decode().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"id": "a", "values": [1.0, 2.0], "namespace": "ns", "metadata": {"t": "x"}}, {"id": "b", "values": [3.0, 4.0]}]
    assert c.billing is not None and (c.billing.queried, c.billing.stored, c.billing.vectors) == (4, 4, 2)


def test_split_lines_respects_count_and_bytes() -> None:
    lines = [b"x" * 10] * 12
    assert wire.split_lines(lines, max_count=5) == [(0, 5), (5, 10), (10, 12)]
    assert wire.split_lines(lines, max_count=100, max_bytes=33) == [(0, 3), (3, 6), (6, 9), (9, 12)]
    assert wire.split_lines([]) == []


def test_parse_answers() -> None:
    env = json.dumps({"result": {"count": 1, "matches": [{"id": "a", "score": 0.5, "values": [1, 2],
                                                          "metadata": {"k": 1}, "namespace": "n"}]},
                      "success": True, "errors": [], "messages": []}).encode()
    (m,) = wire.parse_matches(wire.parse_envelope(env))
    assert (m.id, m.score, m.values, m.metadata, m.namespace) == ("a", 0.5, [1.0, 2.0], {"k": 1}, "n")
    info = wire.parse_info({"dimensions": 3, "vectorCount": 2})
    assert info.processed_up_to_mutation is None and info.vector_count == 2
    assert wire.parse_vectors([{"id": "a", "values": [1], "metadata": {}}])[0].metadata == {}


@pytest.mark.parametrize("body", [b"<html>", b'{"success": false, "result": null}', b"[]"])
def test_bad_envelopes_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        wire.parse_envelope(body)


@pytest.mark.parametrize(("parse", "result"), [
    (wire.parse_matches, {"matches": [{"id": "a"}]}),
    (wire.parse_matches, {"matches": [{"id": "a", "score": True}]}),
    (wire.parse_info, {"vectorCount": 1}),
    (wire.parse_vectors, [{"id": "a"}]),
    (wire.parse_vectors, {"id": "a"}),
    (wire.parse_mutation_id, {}),
    (wire.parse_index, {"name": "x", "config": {"dimensions": 3}}),
    (wire.parse_list, {"vectors": ["a"]}),
    (wire.parse_metadata_indexes, {"metadataIndexes": [{"propertyName": "x"}]}),
])
def test_unexpected_results_raise(parse: object, result: object) -> None:
    with pytest.raises(MalformedResponseError, match="unexpected"):
        parse(result)  # type: ignore[operator]
