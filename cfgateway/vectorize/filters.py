"""Metadata filters (vectorize-api.md §7): Vectorize's own syntax, and LangChain-style dicts with ``$and``.

>>> to_filter({"genre": "drama", "year": {"$gte": 2000, "$lt": 2010}})
{'genre': {'$eq': 'drama'}, 'year': {'$gte': 2000, '$lt': 2010}}
>>> to_filter({"$and": [{"genre": {"$in": ["a", "b"]}}, {"year": {"$gte": 2000}}, {"year": {"$lt": 2010}}]})
{'genre': {'$in': ['a', 'b']}, 'year': {'$gte': 2000, '$lt': 2010}}

Keys are ANDed; one key takes one operator, or an upper bound (``$lt``/``$lte``) with a lower bound
(``$gt``/``$gte``). A dot in a key reaches into a nested object (``"pandas.nice"``). ``$or`` and other
operators cannot be expressed in Vectorize and are refused with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cfgateway.errors import InvalidInputError
from cfgateway.vectorize.validate import MAX_FILTER_BYTES, MAX_FILTER_KEY

EQUALITY = ("$eq", "$ne")
MEMBERSHIP = ("$in", "$nin")
UPPER = ("$lt", "$lte")
LOWER = ("$gt", "$gte")
OPERATORS = (*EQUALITY, *MEMBERSHIP, *UPPER, *LOWER)

Filter = dict[str, dict[str, Any]]


def _bad(message: str) -> InvalidInputError:
    return InvalidInputError(f"metadata filter: {message}")


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key or '"' in key or key.startswith("$") or len(key) > MAX_FILTER_KEY:
        if isinstance(key, str) and key.startswith("$"):
            raise _bad(f"operator {key!r} is not supported by Vectorize (supported: {', '.join(OPERATORS)} "
                       "and a top-level $and of such filters; $or cannot be expressed)")
        raise _bad(f"key {key!r} must be a non-empty string without '\"', not starting with '$', "
                   f"at most {MAX_FILTER_KEY} characters")
    if any(not part for part in key.split(".")):
        raise _bad(f"key {key!r} has an empty part between dots")
    return key


def _scalar(value: Any, op: str, key: str) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        if isinstance(value, float) and value != value:
            raise _bad(f"{key} {op}: NaN cannot be compared")
        return value
    raise _bad(f"{key} {op}: value {value!r} must be a string, number, boolean or None")


def _operand(op: str, value: Any, key: str) -> Any:
    if op in EQUALITY:
        return _scalar(value, op, key)
    if op in MEMBERSHIP:
        if not isinstance(value, list | tuple | set | frozenset) or not value:
            raise _bad(f"{key} {op}: expects a non-empty list of strings, numbers, booleans or None")
        return [_scalar(v, op, key) for v in value]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(f"{key} {op}: a range bound is a string or a number, not {value!r}")
    return value


def _ops_of(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        if not value:
            raise _bad(f"{key}: an empty operator object")
        plain = [k for k in value if not (isinstance(k, str) and k.startswith("$"))]
        if plain:
            raise _bad(f"{key}: nested objects are matched with a dotted key, e.g. {key + '.' + str(plain[0])!r}")
        unknown = [k for k in value if k not in OPERATORS]
        if unknown:
            raise _bad(f"{key}: operator {unknown[0]!r} is not supported by Vectorize "
                       f"(supported: {', '.join(OPERATORS)})")
        return {op: _operand(op, v, key) for op, v in value.items()}
    return {"$eq": _operand("$eq", value, key)}


def _allowed(ops: Mapping[str, Any]) -> bool:
    if len(ops) == 1:
        return True
    if len(ops) == 2:
        return sum(o in UPPER for o in ops) == 1 and sum(o in LOWER for o in ops) == 1
    return False


def _merge(out: Filter, key: str, ops: dict[str, Any]) -> None:
    merged = {**out.get(key, {})}
    for op, v in ops.items():
        if op in merged and merged[op] != v:
            raise _bad(f"{key}: {op} is given twice with different values ({merged[op]!r} and {v!r})")
        merged[op] = v
    if not _allowed(merged):
        raise _bad(f"{key}: Vectorize cannot combine {', '.join(merged)} on one key (one operator, or one "
                   "upper bound $lt/$lte with one lower bound $gt/$gte)")
    out[key] = merged


def _collect(spec: Any, out: Filter) -> None:
    if not isinstance(spec, Mapping):
        raise _bad(f"expected a dict, got {type(spec).__name__}")
    for key, value in spec.items():
        if key == "$and":
            if not isinstance(value, list | tuple) or not value:
                raise _bad("$and takes a non-empty list of filters")
            for part in value:
                _collect(part, out)
            continue
        _merge(out, _check_key(key), _ops_of(key, value))


def to_filter(spec: Mapping[str, Any] | None) -> Filter | None:
    """A validated Vectorize filter (explicit operators) from Vectorize or LangChain-style syntax;
    ``None`` for no filter."""
    if spec is None:
        return None
    out: Filter = {}
    _collect(spec, out)
    if not out:
        return None
    size = len(json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size >= MAX_FILTER_BYTES:
        raise _bad(f"{size} bytes of JSON; Vectorize takes less than {MAX_FILTER_BYTES} (shorten $in lists)")
    return out


def filter_properties(spec: Mapping[str, Any] | None) -> list[str]:
    """The metadata properties a filter reads (each needs a metadata index)."""
    f = to_filter(spec)
    return sorted(f) if f else []


__all__ = ["OPERATORS", "Filter", "filter_properties", "to_filter"]
