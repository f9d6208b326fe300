"""Vectorize v2 wire format, sans-IO: each call's method, path and body, and the parse of its ``result``.

Paths are built only from validated names (:mod:`cfgateway.vectorize.validate`); bodies are JSON, or NDJSON
for insert/upsert (one object per line, ``Content-Type: application/x-ndjson``). A 2xx body that does not
match the contract raises :class:`~cfgateway.errors.MalformedResponseError`; nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlencode

from cfgateway.errors import MalformedResponseError
from cfgateway.vectorize.types import (
    IndexConfig,
    IndexDescription,
    IndexInfo,
    Match,
    MetadataIndex,
    Vector,
    VectorIds,
)
from cfgateway.vectorize.validate import MAX_BATCH, MAX_UPLOAD_BYTES, check_index_name

JSON_TYPE = "application/json"
NDJSON_TYPE = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class Billing:
    """What a call is billed for: queried and stored vector dimensions (vectorize-api.md pricing)."""

    op: str
    queried: int = 0
    stored: int = 0
    vectors: int = 0


def _identity(result: Any) -> Any:
    return result


@dataclass(frozen=True, slots=True)
class Call:
    """One request, before any I/O: ``path`` is appended to ``.../accounts/{account}/vectorize/v2/indexes``."""

    method: str
    path: str
    op: str
    index: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    parse: Callable[[Any], Any] = _identity
    billing: Billing | None = None


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


@cache
def _orjson_dumps() -> Callable[[Any], bytes] | None:
    """``orjson.dumps`` when the optional ``cfgateway[fast]`` extra is installed (~5x faster on float arrays)."""
    try:
        import orjson
    except ImportError:
        return None
    dumps: Callable[[Any], bytes] = orjson.dumps
    return dumps


def _line(obj: dict[str, Any]) -> bytes:
    """One NDJSON line. orjson when installed; what it refuses (integers beyond 64 bits) goes to ``json``."""
    fast = _orjson_dumps()
    if fast is not None:
        try:
            return fast(obj)
        except TypeError:
            pass
    return _dumps(obj)


def _json_call(path: str, op: str, index: str | None, body: Any, parse: Callable[[Any], Any],
               billing: Billing | None = None) -> Call:
    return Call("POST", path, op, index, _dumps(body), JSON_TYPE, parse, billing)


def _malformed(what: str, result: Any) -> MalformedResponseError:
    return MalformedResponseError(f"Vectorize answered an unexpected {what}: {str(result)[:200]}",
                                  body=json.dumps(result, default=str)[:500])


def parse_envelope(content: bytes) -> Any:
    """The ``result`` of a ``{"result", "success", "errors", "messages"}`` envelope."""
    try:
        obj = json.loads(content)
    except ValueError:
        raise MalformedResponseError("Vectorize answered 2xx with a body that is not JSON",
                                     body=content.decode("utf-8", "replace")) from None
    if not isinstance(obj, dict) or "result" not in obj or obj.get("success") is False:
        raise MalformedResponseError("Vectorize answered 2xx without a successful result envelope",
                                     body=content.decode("utf-8", "replace"))
    return obj["result"]


# -- parsers -------------------------------------------------------------------------------------------
def _str(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _malformed(what, obj)
    return value


def parse_index(result: Any) -> IndexDescription:
    if not isinstance(result, dict) or not isinstance(result.get("config"), dict):
        raise _malformed("index object", result)
    cfg = result["config"]
    dims, metric = cfg.get("dimensions"), cfg.get("metric")
    if not isinstance(dims, int) or not isinstance(metric, str):
        raise _malformed("index config", result)
    return IndexDescription(
        name=_str(result, "name", "index object"), config=IndexConfig(dims, metric),
        description=result.get("description") or "", created_on=result.get("created_on"),
        modified_on=result.get("modified_on"),
    )


def parse_indexes(result: Any) -> list[IndexDescription]:
    if not isinstance(result, list):
        raise _malformed("index list", result)
    return [parse_index(r) for r in result]


def parse_info(result: Any) -> IndexInfo:
    if not isinstance(result, dict) or not isinstance(result.get("dimensions"), int):
        raise _malformed("index info", result)
    count = result.get("vectorCount", 0)
    mutation, when = result.get("processedUpToMutation"), result.get("processedUpToDatetime")
    if not isinstance(count, int) or not isinstance(mutation, str | None) or not isinstance(when, str | None):
        raise _malformed("index info", result)
    return IndexInfo(result["dimensions"], count, mutation or None, when)


def parse_mutation_id(result: Any) -> str:
    if not isinstance(result, dict) or not isinstance(result.get("mutationId"), str) or not result["mutationId"]:
        raise _malformed("write answer (no mutationId)", result)
    return str(result["mutationId"])


def _vector(obj: Any, what: str) -> Vector:
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise _malformed(what, obj)
    values, metadata, ns = obj.get("values"), obj.get("metadata"), obj.get("namespace")
    if not isinstance(values, list) or not isinstance(metadata, dict | None) or not isinstance(ns, str | None):
        raise _malformed(what, obj)
    return Vector(obj["id"], [float(v) for v in values], metadata, ns or None)


def parse_vectors(result: Any) -> list[Vector]:
    if not isinstance(result, list):
        raise _malformed("get_by_ids answer", result)
    return [_vector(v, "vector") for v in result]


def _match(obj: Any) -> Match:
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise _malformed("match", obj)
    score, values, metadata, ns = obj.get("score"), obj.get("values"), obj.get("metadata"), obj.get("namespace")
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise _malformed("match score", obj)
    if not isinstance(values, list | None) or not isinstance(metadata, dict | None) or not isinstance(ns, str | None):
        raise _malformed("match", obj)
    floats = None if values is None else [float(v) for v in values]
    return Match(obj["id"], float(score), floats, metadata, ns or None)


def parse_matches(result: Any) -> list[Match]:
    if not isinstance(result, dict) or not isinstance(result.get("matches"), list):
        raise _malformed("query answer", result)
    return [_match(m) for m in result["matches"]]


def parse_list(result: Any) -> VectorIds:
    if not isinstance(result, dict) or not isinstance(result.get("vectors"), list):
        raise _malformed("list answer", result)
    ids = []
    for v in result["vectors"]:
        if not isinstance(v, dict):
            raise _malformed("list entry", v)
        ids.append(_str(v, "id", "list entry"))
    cursor = result.get("nextCursor")
    return VectorIds(ids, result.get("totalCount"), cursor if isinstance(cursor, str) and cursor else None,
                     bool(result.get("isTruncated")))


def parse_metadata_indexes(result: Any) -> list[MetadataIndex]:
    if not isinstance(result, dict) or not isinstance(result.get("metadataIndexes"), list):
        raise _malformed("metadata index list", result)
    out = []
    for m in result["metadataIndexes"]:
        if not isinstance(m, dict):
            raise _malformed("metadata index", m)
        out.append(MetadataIndex(_str(m, "propertyName", "metadata index"), _str(m, "indexType", "metadata index")))
    return out


# -- builders --------------------------------------------------------------------------------------------
def _p(name: str, tail: str = "") -> str:
    return f"/{check_index_name(name)}{tail}"


def list_indexes() -> Call:
    return Call("GET", "", "list_indexes", None, parse=parse_indexes)


def create_index(name: str, config: dict[str, Any], description: str | None) -> Call:
    body: dict[str, Any] = {"name": check_index_name(name), "config": config}
    if description:
        body["description"] = description
    return _json_call("", "create_index", name, body, parse_index)


def describe(name: str) -> Call:
    return Call("GET", _p(name), "describe", name, parse=parse_index)


def delete_index(name: str) -> Call:
    return Call("DELETE", _p(name), "delete_index", name)


def info(name: str) -> Call:
    return Call("GET", _p(name, "/info"), "info", name, parse=parse_info)


def vector_line(v: Vector) -> bytes:
    obj: dict[str, Any] = {"id": v.id, "values": v.values}
    if v.namespace is not None:
        obj["namespace"] = v.namespace
    if v.metadata is not None:
        obj["metadata"] = v.metadata
    return _line(obj)


def split_lines(lines: Sequence[bytes], max_count: int = MAX_BATCH, max_bytes: int = MAX_UPLOAD_BYTES
                ) -> list[tuple[int, int]]:
    """``(start, end)`` slices of ``lines`` with at most ``max_count`` lines and ``max_bytes`` bytes each."""
    out: list[tuple[int, int]] = []
    start, size = 0, 0
    for i, line in enumerate(lines):
        if i > start and (i - start >= max_count or size + len(line) + 1 > max_bytes):
            out.append((start, i))
            start, size = i, 0
        size += len(line) + 1
    if start < len(lines):
        out.append((start, len(lines)))
    return out


def write(name: str, kind: str, vectors: Sequence[Vector], lines: Sequence[bytes] | None = None) -> Call:
    """insert/upsert of already validated vectors as NDJSON. ``unparsable-behavior=error`` is sent
    explicitly (its default is not documented): a bad line fails the request instead of being dropped."""
    body = b"\n".join(lines if lines is not None else [vector_line(v) for v in vectors]) + b"\n"
    dims = sum(len(v.values) for v in vectors)
    query = urlencode({"unparsable-behavior": "error"})
    return Call("POST", _p(name, f"/{kind}?{query}"), kind, name, body, NDJSON_TYPE, parse_mutation_id,
                Billing(kind, queried=dims, stored=dims, vectors=len(vectors)))


def query(name: str, body: dict[str, Any], dimensions: int) -> Call:
    return _json_call(_p(name, "/query"), "query", name, body, parse_matches, Billing("query", queried=dimensions))


def get_by_ids(name: str, ids: Sequence[str]) -> Call:
    return _json_call(_p(name, "/get_by_ids"), "get_by_ids", name, {"ids": list(ids)}, parse_vectors)


def delete_by_ids(name: str, ids: Sequence[str]) -> Call:
    return _json_call(_p(name, "/delete_by_ids"), "delete", name, {"ids": list(ids)}, parse_mutation_id)


def list_vectors(name: str, count: int, cursor: str | None) -> Call:
    params: dict[str, Any] = {"count": count}
    if cursor:
        params["cursor"] = cursor
    return Call("GET", _p(name, f"/list?{urlencode(params)}"), "list", name, parse=parse_list)


def create_metadata_index(name: str, prop: str, index_type: str) -> Call:
    body = {"propertyName": prop, "indexType": index_type}
    return _json_call(_p(name, "/metadata_index/create"), "metadata_index_create", name, body, parse_mutation_id)


def list_metadata_indexes(name: str) -> Call:
    return Call("GET", _p(name, "/metadata_index/list"), "metadata_index_list", name, parse=parse_metadata_indexes)


def delete_metadata_index(name: str, prop: str) -> Call:
    return _json_call(_p(name, "/metadata_index/delete"), "metadata_index_delete", name, {"propertyName": prop},
                      parse_mutation_id)


__all__ = [
    "Billing",
    "Call",
    "JSON_TYPE",
    "NDJSON_TYPE",
    "create_index",
    "create_metadata_index",
    "delete_by_ids",
    "delete_index",
    "delete_metadata_index",
    "describe",
    "get_by_ids",
    "info",
    "list_indexes",
    "list_metadata_indexes",
    "list_vectors",
    "parse_envelope",
    "parse_info",
    "parse_matches",
    "parse_vectors",
    "query",
    "split_lines",
    "vector_line",
    "write",
]
