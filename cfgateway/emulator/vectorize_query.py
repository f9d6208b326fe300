"""Emulated Vectorize search: float32 storage, the three metrics and their order, metadata filters over
metadata indexes (vectorize-api.md §6-§7). Pure Python, written apart from the client's own code."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from cfgateway.emulator.vectorize_state import EmuIndex, StoredVector, VectorizeSettings

_OPS = ("$eq", "$ne", "$in", "$nin", "$lt", "$lte", "$gt", "$gte")
_UPPER, _LOWER = ("$lt", "$lte"), ("$gt", "$gte")
_MISSING = object()
INDEXED_STRING_BYTES = 64


class FilterError(ValueError):
    """A filter the service refuses (the message goes into the error body)."""


def f32(values: list[float]) -> list[float]:
    """What Vectorize stores and returns: float32."""
    return list(struct.unpack(f"{len(values)}f", struct.pack(f"{len(values)}f", *values)))


def _score(metric: str, q: list[float], v: list[float]) -> float:
    dot = sum(a * b for a, b in zip(q, v, strict=True))
    if metric == "cosine":
        nq, nv = math.sqrt(sum(a * a for a in q)), math.sqrt(sum(b * b for b in v))
        return 0.0 if nq == 0 or nv == 0 else dot / (nq * nv)
    if metric == "euclidean":
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(q, v, strict=True)))
    return -dot  # dot-product: the negative dot product, lower = closer


def truncate(value: str) -> str:
    """A string index keeps the first 64 bytes, cut at a UTF-8 boundary."""
    raw = value.encode("utf-8")
    return value if len(raw) <= INDEXED_STRING_BYTES else raw[:INDEXED_STRING_BYTES].decode("utf-8", "ignore")


# -- filters --------------------------------------------------------------------------------------------
def _check_value(op: str, value: Any) -> None:
    scalar = (str, int, float, bool, type(None))
    if op in ("$eq", "$ne") and not isinstance(value, scalar):
        raise FilterError(f"{op} takes a string, number, boolean or null")
    if op in ("$in", "$nin") and (not isinstance(value, list) or not all(isinstance(x, scalar) for x in value)):
        raise FilterError(f"{op} takes an array of strings, numbers, booleans or nulls")
    if op in (*_UPPER, *_LOWER) and (isinstance(value, bool) or not isinstance(value, str | int | float)):
        raise FilterError(f"{op} takes a string or a number")


def normalise_filter(spec: Any) -> dict[str, dict[str, Any]]:
    """The filter with explicit operators; :class:`FilterError` for anything Vectorize refuses."""
    if not isinstance(spec, dict) or not spec:
        raise FilterError("filter must be a non-empty object")
    if len(json.dumps(spec, separators=(",", ":"), ensure_ascii=False).encode()) >= 2048:
        raise FilterError("filter must be less than 2048 bytes of compact JSON")
    out: dict[str, dict[str, Any]] = {}
    for key, cond in spec.items():
        if not key or '"' in key or key.startswith("$") or len(key) > 512:
            raise FilterError(f"invalid filter key {key!r}")
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        if not ops or any(op not in _OPS for op in ops):
            raise FilterError(f"unsupported operator in filter on {key!r}")
        for op, value in ops.items():
            _check_value(op, value)
        ranges = len(ops) == 2 and sum(o in _UPPER for o in ops) == 1 and sum(o in _LOWER for o in ops) == 1
        if len(ops) > 1 and not ranges:
            raise FilterError(f"invalid operator combination on {key!r}")
        out[key] = ops
    return out


def _lookup(metadata: dict[str, Any] | None, path: str) -> Any:
    node: Any = metadata or {}
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _cmp_ok(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, str) and isinstance(b, str)) or (isinstance(a, int | float) and isinstance(b, int | float))


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: a boolean never equals a number, a string never equals anything else."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _test(op: str, have: Any, want: Any, settings: VectorizeSettings) -> bool:
    if have is _MISSING:
        return op in ("$ne", "$nin") and settings.negation_matches_missing
    have = truncate(have) if isinstance(have, str) else have

    def norm(w: Any) -> Any:
        return truncate(w) if isinstance(w, str) else w

    if op == "$eq":
        return _equal(have, norm(want))
    if op == "$ne":
        return not _equal(have, norm(want))
    if op == "$in":
        return any(_equal(have, norm(w)) for w in want)
    if op == "$nin":
        return not any(_equal(have, norm(w)) for w in want)
    if not _cmp_ok(have, want):
        return False
    return {"$lt": have < want, "$lte": have <= want, "$gt": have > want, "$gte": have >= want}[op]


def matches(vec: StoredVector, spec: dict[str, dict[str, Any]], index: EmuIndex, settings: VectorizeSettings) -> bool:
    for key, ops in spec.items():
        if key not in index.metadata_indexes:
            if settings.unindexed_filter == "error":
                raise FilterError(f"no metadata index on property {key!r}; create one to filter on it")
            return False
        if key not in vec.indexed:  # written before the metadata index existed
            return False
        have = _lookup(vec.metadata, key)
        if not all(_test(op, have, want, settings) for op, want in ops.items()):
            return False
    return True


# -- search ---------------------------------------------------------------------------------------------
def _indexed_metadata(vec: StoredVector, index: EmuIndex) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prop in index.metadata_indexes:
        value = _lookup(vec.metadata, prop)
        if value is not _MISSING and "." not in prop:
            out[prop] = truncate(value) if isinstance(value, str) else value
    return out


def search(index: EmuIndex, query: list[float], body: dict[str, Any], spec: dict[str, dict[str, Any]] | None,
           settings: VectorizeSettings) -> list[dict[str, Any]]:
    """Matches closest first: cosine descending, euclidean and dot-product ascending (ties by id)."""
    namespace = body.get("namespace")
    found = []
    for vec in index.vectors.values():
        if namespace is not None and vec.namespace != namespace:
            continue
        if namespace is None and not settings.query_all_namespaces and vec.namespace is not None:
            continue
        if spec is not None and not matches(vec, spec, index, settings):
            continue
        found.append((_score(index.metric, query, vec.values), vec))
    sign = -1.0 if index.metric == "cosine" else 1.0
    found.sort(key=lambda sv: (sign * sv[0], sv[1].id))
    mode = body.get("returnMetadata", "none")
    out = []
    for s, vec in found[: body.get("topK", 5)]:
        m: dict[str, Any] = {"id": vec.id, "score": s}
        if body.get("returnValues"):
            m["values"] = vec.values
        if mode == "all" and vec.metadata is not None:
            m["metadata"] = vec.metadata
        elif mode == "indexed":
            m["metadata"] = _indexed_metadata(vec, index)
        if vec.namespace is not None:
            m["namespace"] = vec.namespace
        out.append(m)
    return out


__all__ = ["FilterError", "f32", "matches", "normalise_filter", "search", "truncate"]
