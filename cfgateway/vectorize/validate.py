"""Checks on every caller string and value before it reaches a Vectorize URL or body (vectorize-api.md §3-§9).

Each refusal is an :class:`~cfgateway.errors.InvalidInputError` that says what the rule is and how to fix it.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cfgateway.errors import InvalidInputError
from cfgateway.vectorize.types import METADATA_TYPES, METRICS, PRESETS

MAX_DIMENSIONS = 1536
MAX_NAME_BYTES = 64
MAX_ID_BYTES = 64
MAX_NAMESPACE_BYTES = 64
MAX_METADATA_BYTES = 10 * 1024
MAX_BATCH = 5000  # vectors per insert/upsert over HTTP
MAX_UPLOAD_BYTES = 100_000_000  # 100 MB per request
MAX_TOP_K = 100
MAX_TOP_K_WITH_DATA = 50  # with returnValues=true or returnMetadata="all"
MAX_FILTER_BYTES = 2048  # compact JSON must be shorter than this
MAX_FILTER_KEY = 512
MAX_LIST_COUNT = 1000

_NAME = re.compile(r"^([a-z]+[a-z0-9_-]*[a-z0-9]+)$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def check_account_id(account_id: str | None) -> str:
    if not account_id:
        raise InvalidInputError("account id is not set: pass account_id= or set CLOUDFLARE_ACCOUNT_ID")
    if not isinstance(account_id, str) or not _ACCOUNT.match(account_id):
        raise InvalidInputError(
            f"account id {account_id!r} is invalid: it is up to 32 letters/digits (the id in your dashboard URL)"
        )
    return account_id


def check_index_name(name: Any) -> str:
    """An index name: lowercase letters, digits, ``-`` and ``_``; starts with a letter, ends with a letter or
    digit; at most 64 bytes."""
    if not isinstance(name, str) or not _NAME.match(name) or _utf8_len(name) > MAX_NAME_BYTES:
        raise InvalidInputError(
            f"Vectorize index name {name!r} is invalid: use lowercase letters, digits, '-' and '_', starting with "
            f"a letter and ending with a letter or digit, at most {MAX_NAME_BYTES} bytes (for example 'my-docs')"
        )
    return name


def check_id(vector_id: Any) -> str:
    if not isinstance(vector_id, str):
        raise InvalidInputError(f"vector id {vector_id!r} is a {type(vector_id).__name__}: ids are strings "
                                "(pass str(id))")
    if not vector_id or _utf8_len(vector_id) > MAX_ID_BYTES:
        raise InvalidInputError(f"vector id {vector_id[:80]!r} must be 1 to {MAX_ID_BYTES} bytes long "
                                "(use a hash or a uuid for long keys)")
    return vector_id


def check_ids(ids: Iterable[Any]) -> list[str]:
    if isinstance(ids, str):
        raise InvalidInputError("ids must be a list of strings, not one string (pass [id])")
    return [check_id(i) for i in ids]


def check_namespace(namespace: Any) -> str | None:
    if namespace is None:
        return None
    if not isinstance(namespace, str) or not namespace or _utf8_len(namespace) > MAX_NAMESPACE_BYTES:
        raise InvalidInputError(f"namespace {namespace!r} must be a non-empty string of at most "
                                f"{MAX_NAMESPACE_BYTES} bytes (or None for no namespace)")
    return namespace


def check_metadata_key(key: Any, where: str = "metadata") -> str:
    if not isinstance(key, str) or not key or "." in key or '"' in key or key.startswith("$"):
        raise InvalidInputError(
            f"{where} key {key!r} is not allowed in Vectorize: keys are non-empty strings without '.' or '\"' "
            "that do not start with '$' (rename the key)"
        )
    return key


def _check_keys(obj: Any, path: str) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            check_metadata_key(k, f"metadata{path}")
            _check_keys(v, f"{path}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _check_keys(v, f"{path}[{i}]")


def check_metadata(metadata: Any, vector_id: str = "") -> dict[str, Any] | None:
    """A JSON object of at most 10 KiB with allowed keys (nested objects are allowed)."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata of vector {vector_id!r} must be a dict, not {type(metadata).__name__}")
    _check_keys(metadata, "")
    try:
        text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata of vector {vector_id!r} is not JSON ({exc}): use str, numbers, "
                                "booleans, None, lists and dicts") from None
    size = _utf8_len(text)
    if size > MAX_METADATA_BYTES:
        raise InvalidInputError(
            f"metadata of vector {vector_id!r} is {size} bytes of JSON; Vectorize keeps at most "
            f"{MAX_METADATA_BYTES} (10 KiB) per vector, text included: split long texts into smaller chunks "
            "(a text splitter with chunk_size <= ~8,000 characters) or drop large metadata fields"
        )
    return dict(metadata)


def check_values(values: Any, dimensions: int | None = None, vector_id: str = "") -> list[float]:
    try:
        if isinstance(values, str | bytes):
            raise TypeError("a string")
        floats = array("d", values)  # C speed; refuses str and None (bool counts as 0/1, as in Python)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(f"values of vector {vector_id!r} must be a list of finite numbers") from None
    if not math.isfinite(math.fsum(floats)) and not all(map(math.isfinite, floats)):
        raise InvalidInputError(f"values of vector {vector_id!r} must be a list of finite numbers")
    if not floats or len(floats) > MAX_DIMENSIONS:
        raise InvalidInputError(f"vector {vector_id!r} has {len(floats)} dimensions; Vectorize takes 1 to "
                                f"{MAX_DIMENSIONS}")
    if dimensions is not None and len(floats) != dimensions:
        raise InvalidInputError(
            f"vector {vector_id!r} has {len(floats)} dimensions but the index has {dimensions}: use the embedding "
            "model the index was created for, or an index with matching dimensions"
        )
    return floats.tolist()


def check_dimensions(dimensions: Any) -> int:
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise InvalidInputError(f"dimensions must be a whole number from 1 to {MAX_DIMENSIONS}, got {dimensions!r}")
    return dimensions


def check_metric(metric: Any) -> str:
    if metric not in METRICS:
        raise InvalidInputError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return str(metric)


def check_preset(preset: Any) -> str:
    if preset not in PRESETS:
        raise InvalidInputError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    return str(preset)


def check_property(name: Any) -> str:
    """A metadata index property: a metadata key, or a dotted path of keys for a nested property."""
    if not isinstance(name, str) or not name or len(name) > MAX_FILTER_KEY:
        raise InvalidInputError(f"metadata property {name!r} must be a non-empty string of at most "
                                f"{MAX_FILTER_KEY} characters")
    for part in name.split("."):
        check_metadata_key(part, "metadata property")
    return name


def check_metadata_type(index_type: Any) -> str:
    if index_type not in METADATA_TYPES:
        raise InvalidInputError(f"metadata index type must be one of {', '.join(METADATA_TYPES)}, "
                                f"got {index_type!r}")
    return str(index_type)


def check_top_k(top_k: Any, *, with_data: bool) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidInputError(f"top_k (k) must be a whole number >= 1, got {top_k!r}")
    limit = MAX_TOP_K_WITH_DATA if with_data else MAX_TOP_K
    if top_k > limit:
        why = " with values or all metadata returned" if with_data else ""
        raise InvalidInputError(f"top_k={top_k} is over Vectorize's limit of {limit}{why}: ask for fewer matches")
    return top_k


def check_list_count(count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_LIST_COUNT:
        raise InvalidInputError(f"count must be from 1 to {MAX_LIST_COUNT}, got {count!r}")
    return count


def check_unique(ids: Sequence[str]) -> None:
    seen: set[str] = set()
    dup = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
    if dup:
        raise InvalidInputError(f"duplicate vector id(s) in one write: {sorted(set(dup))[:5]}; ids must be unique")


__all__ = [
    "MAX_BATCH",
    "MAX_DIMENSIONS",
    "MAX_FILTER_BYTES",
    "MAX_ID_BYTES",
    "MAX_LIST_COUNT",
    "MAX_METADATA_BYTES",
    "MAX_TOP_K",
    "MAX_TOP_K_WITH_DATA",
    "MAX_UPLOAD_BYTES",
    "check_account_id",
    "check_dimensions",
    "check_id",
    "check_ids",
    "check_index_name",
    "check_list_count",
    "check_metadata",
    "check_metadata_key",
    "check_metadata_type",
    "check_metric",
    "check_namespace",
    "check_preset",
    "check_property",
    "check_top_k",
    "check_unique",
    "check_values",
]
