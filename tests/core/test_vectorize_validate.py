"""Every caller string is checked before it reaches a Vectorize URL or body (vectorize-api.md §3-§9), and filters
in Vectorize or LangChain-style syntax become one validated Vectorize filter."""

from __future__ import annotations

import pytest

from cfgateway.errors import InvalidInputError
from cfgateway.vectorize import Vector
from cfgateway.vectorize import validate as v
from cfgateway.vectorize.filters import filter_properties, to_filter
from cfgateway.vectorize.plans import create_config, prepare_vectors, query_body


@pytest.mark.parametrize("name", ["docs", "my-docs_2", "a1", "ab"])
def test_index_names_that_pass(name: str) -> None:
    assert v.check_index_name(name) == name


@pytest.mark.parametrize("name", ["", "a", "Docs", "1docs", "docs-", "docs/../x", "do cs", "d%2f", "x" * 65, 7, None])
def test_index_names_that_are_refused_before_any_url(name: object) -> None:
    with pytest.raises(InvalidInputError, match="lowercase letters"):
        v.check_index_name(name)


def test_ids_namespaces_and_accounts() -> None:
    assert v.check_id("é" * 32) == "é" * 32  # 64 bytes
    for bad in ["", "é" * 33, 5]:
        with pytest.raises(InvalidInputError, match="id"):
            v.check_id(bad)
    with pytest.raises(InvalidInputError, match="not one string"):
        v.check_ids("abc")
    assert v.check_namespace(None) is None
    for bad in ["", "n" * 65]:
        with pytest.raises(InvalidInputError, match="namespace"):
            v.check_namespace(bad)
    with pytest.raises(InvalidInputError, match="CLOUDFLARE_ACCOUNT_ID"):
        v.check_account_id(None)
    with pytest.raises(InvalidInputError, match="account id"):
        v.check_account_id("acct/../../x")


@pytest.mark.parametrize("key", ["", "a.b", 'a"b', "$a"])
def test_metadata_keys_vectorize_refuses(key: str) -> None:
    with pytest.raises(InvalidInputError, match="not allowed"):
        v.check_metadata({key: 1}, "x")
    with pytest.raises(InvalidInputError, match="not allowed"):
        v.check_metadata({"outer": {key: 1}}, "x")


def test_metadata_size_limit_names_the_fix() -> None:
    assert v.check_metadata({"text": "x" * 10_000}, "ok") is not None
    with pytest.raises(InvalidInputError, match="10 KiB.*split long texts"):
        v.check_metadata({"text": "x" * 10_300}, "big")
    with pytest.raises(InvalidInputError, match="not JSON"):
        v.check_metadata({"when": object()}, "x")
    with pytest.raises(InvalidInputError, match="not JSON"):
        v.check_metadata({"nan": float("nan")}, "x")


def test_values_and_dimensions() -> None:
    assert v.check_values([1, 2.5], 2) == [1.0, 2.5]
    with pytest.raises(InvalidInputError, match="has 3 dimensions but the index has 2"):
        v.check_values([1, 2, 3], 2, "x")
    for bad in [[float("inf")], [float("nan"), 1.0], ["1"], [None], "12", []]:
        with pytest.raises(InvalidInputError):
            v.check_values(bad)
    with pytest.raises(InvalidInputError, match="1 to 1536"):
        v.check_dimensions(1537)


def test_top_k_limits() -> None:
    assert v.check_top_k(100, with_data=False) == 100
    with pytest.raises(InvalidInputError, match="limit of 100"):
        v.check_top_k(101, with_data=False)
    with pytest.raises(InvalidInputError, match="limit of 50 with values"):
        v.check_top_k(51, with_data=True)


def test_query_over_50_with_data_is_a_query_without_data_then_a_read() -> None:
    body, fetch = query_body(vector=[1.0, 0.0], vector_id=None, top_k=80, return_values=True, return_metadata="all",
                             filter=None, namespace="ns", dimensions=2)
    assert fetch and body == {"topK": 80, "vector": [1.0, 0.0], "returnValues": False, "returnMetadata": "none",
                              "namespace": "ns"}
    body, fetch = query_body(vector=None, vector_id="a", top_k=50, return_values=True, return_metadata="all",
                             filter={"k": 1}, namespace=None, dimensions=2)
    assert not fetch and body["returnValues"] is True and body["filter"] == {"k": {"$eq": 1}}
    with pytest.raises(InvalidInputError, match="not both or neither"):
        query_body(vector=[1.0], vector_id="a", top_k=1, return_values=False, return_metadata="none", filter=None,
                   namespace=None, dimensions=None)


def test_create_config() -> None:
    assert create_config(768, None, None) == {"dimensions": 768, "metric": "cosine"}
    assert create_config(None, None, "@cf/baai/bge-small-en-v1.5") == {"preset": "@cf/baai/bge-small-en-v1.5"}
    with pytest.raises(InvalidInputError, match="either preset"):
        create_config(768, "cosine", "@cf/baai/bge-small-en-v1.5")
    with pytest.raises(InvalidInputError, match="dimensions="):
        create_config(None, "cosine", None)
    with pytest.raises(InvalidInputError, match="metric must be one of"):
        create_config(3, "manhattan", None)


def test_prepare_vectors_fills_namespace_and_refuses_duplicates() -> None:
    out = prepare_vectors([Vector("a", [1, 2]), Vector("b", [3, 4], namespace="own")], "default", 2)
    assert [(x.id, x.namespace) for x in out] == [("a", "default"), ("b", "own")]
    with pytest.raises(InvalidInputError, match="duplicate"):
        prepare_vectors([Vector("a", [1.0]), Vector("a", [2.0])], None, None)


# -- filters ----------------------------------------------------------------------------------------------
def test_vectorize_syntax_gets_explicit_operators() -> None:
    assert to_filter({"genre": "drama", "year": {"$gte": 2000, "$lt": 2010}, "ok": True, "none": None}) == {
        "genre": {"$eq": "drama"}, "year": {"$gte": 2000, "$lt": 2010}, "ok": {"$eq": True}, "none": {"$eq": None}}
    assert to_filter({"pandas.nice": {"$in": [1, 2]}}) == {"pandas.nice": {"$in": [1, 2]}}
    assert to_filter(None) is None and to_filter({}) is None


def test_langchain_and_is_merged_into_one_filter() -> None:
    spec = {"$and": [{"genre": {"$nin": ["a"]}}, {"year": {"$gte": 2000}}, {"$and": [{"year": {"$lt": 2010}}]}]}
    assert to_filter(spec) == {"genre": {"$nin": ["a"]}, "year": {"$gte": 2000, "$lt": 2010}}
    assert filter_properties(spec) == ["genre", "year"]


@pytest.mark.parametrize(("spec", "why"), [
    ({"$or": [{"a": 1}, {"b": 2}]}, r"\$or cannot be expressed"),
    ({"a": {"$like": "x"}}, "not supported by Vectorize"),
    ({"a": {"$eq": 1, "$ne": 2}}, "cannot combine"),
    ({"a": {"$gt": 1, "$gte": 2}}, "cannot combine"),
    ({"$and": [{"a": 1}, {"a": 2}]}, "given twice"),
    ({"a": {"$in": []}}, "non-empty list"),
    ({"a": {"$lt": True}}, "range bound"),
    ({"a": {"$eq": [1]}}, "string, number, boolean or None"),
    ({"a": {"b": 1}}, "dotted key"),
    ({'a"b': 1}, "without"),
    ({"a..b": 1}, "empty part"),
    ({"a": {"$in": ["x" * 100] * 25}}, "less than 2048"),
])
def test_filters_vectorize_cannot_run_are_refused_with_the_reason(spec: dict, why: str) -> None:
    with pytest.raises(InvalidInputError, match=why):
        to_filter(spec)
