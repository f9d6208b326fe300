"""Sans-IO decisions shared by the sync and async methods of :class:`~cfgateway.vectorize.VectorizeIndex`:
validating writes, splitting them into requests, query bodies (and when a query needs a second read), ordering
``get_by_ids`` answers, and the metadata-index check behind an empty filtered query."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cfgateway.errors import InvalidInputError
from cfgateway.vectorize import wire
from cfgateway.vectorize.filters import filter_properties, to_filter
from cfgateway.vectorize.types import Match, MetadataIndex, Mutation, Vector
from cfgateway.vectorize.validate import (
    MAX_TOP_K,
    MAX_TOP_K_WITH_DATA,
    check_dimensions,
    check_id,
    check_ids,
    check_metadata,
    check_metric,
    check_namespace,
    check_preset,
    check_top_k,
    check_unique,
    check_values,
)
from cfgateway.vectorize.waiting import sample

# guess: the maximum ids per get_by_ids / delete_by_ids request is not documented; 1,000 (a list page) is sent
IDS_PER_REQUEST = 1000
RETURN_METADATA = ("none", "indexed", "all")


def create_config(dimensions: int | None, metric: str | None, preset: str | None) -> dict[str, Any]:
    """The ``config`` of a create request: ``{dimensions, metric}`` (metric default cosine) or ``{preset}``."""
    if preset is not None:
        if dimensions is not None or metric is not None:
            raise InvalidInputError("pass either preset= (it sets dimensions and metric) or dimensions= and metric=")
        return {"preset": check_preset(preset)}
    if dimensions is None:
        raise InvalidInputError("create_index needs dimensions= (the embedding size, e.g. 768 for bge-base) "
                                "or preset= (an embedding model Vectorize knows)")
    return {"dimensions": check_dimensions(dimensions), "metric": check_metric(metric or "cosine")}


def prepare_vectors(vectors: Iterable[Vector], namespace: str | None, dimensions: int | None) -> list[Vector]:
    """Validated copies (the index's namespace filled in where a vector has none); every error before sending."""
    out: list[Vector] = []
    for v in vectors:
        if not isinstance(v, Vector):
            raise InvalidInputError(f"expected cfgateway.vectorize.Vector objects, got {type(v).__name__}")
        vid = check_id(v.id)
        ns = check_namespace(v.namespace) if v.namespace is not None else namespace
        values = check_values(v.values, dimensions, vid)
        dimensions = dimensions or len(values)
        out.append(Vector(vid, values, check_metadata(v.metadata, vid), ns))
    check_unique([v.id for v in out])
    return out


def write_calls(name: str, kind: str, vectors: Sequence[Vector]) -> list[tuple[wire.Call, Sequence[Vector]]]:
    """One call per slice of at most 5,000 vectors and 100 MB of NDJSON."""
    lines = [wire.vector_line(v) for v in vectors]
    return [(wire.write(name, kind, vectors[a:b], lines[a:b]), vectors[a:b]) for a, b in wire.split_lines(lines)]


def write_mutation(kind: str, name: str, mutation_id: str, vectors: Sequence[Vector], n: int) -> Mutation:
    ids = tuple(v.id for v in vectors)
    expected = sample(list(vectors), n) if kind == "upsert" else sample(ids, n)
    return Mutation(mutation_id, kind, name, ids, expected)  # type: ignore[arg-type]


def delete_mutation(name: str, mutation_id: str, ids: Sequence[str], n: int) -> Mutation:
    return Mutation(mutation_id, "delete", name, tuple(ids), sample(ids, n))


def index_mutation(kind: str, name: str, mutation_id: str, prop: str) -> Mutation:
    return Mutation(mutation_id, kind, name, (prop,), ())  # type: ignore[arg-type]


def check_unique_ids(ids: Sequence[str]) -> list[str]:
    """Validated ids, duplicates dropped (order kept)."""
    return list(dict.fromkeys(check_ids(ids)))


def id_chunks(ids: Sequence[str], size: int = IDS_PER_REQUEST) -> list[list[str]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def return_metadata_mode(value: Any) -> str:
    if value is True:
        return "all"
    if value is False or value is None:
        return "none"
    if value not in RETURN_METADATA:
        raise InvalidInputError(f"return_metadata must be one of {', '.join(RETURN_METADATA)}, got {value!r}")
    return str(value)


def query_body(
    *, vector: Sequence[float] | None, vector_id: str | None, top_k: int, return_values: bool,
    return_metadata: str, filter: Mapping[str, Any] | None, namespace: str | None, dimensions: int | None,
) -> tuple[dict[str, Any], bool]:
    """``(body, fetch)``: ``fetch`` = the matches need a get_by_ids for values/metadata, because ``top_k`` is
    over 50 (the limit with values or all metadata) but within 100 (the limit without them)."""
    if (vector is None) == (vector_id is None):
        raise InvalidInputError("query takes a vector or a vector_id (a stored vector's id), not both or neither")
    with_data = return_values or return_metadata == "all"
    check_top_k(top_k, with_data=False)
    fetch = with_data and top_k > MAX_TOP_K_WITH_DATA
    body: dict[str, Any] = {"topK": top_k}
    if vector is not None:
        body["vector"] = check_values(vector, dimensions, "query")
    else:
        body["vectorId"] = check_id(vector_id)
    body["returnValues"] = bool(return_values) and not fetch
    body["returnMetadata"] = "none" if fetch else return_metadata
    f = to_filter(filter)
    if f is not None:
        body["filter"] = f
    if namespace is not None:
        body["namespace"] = check_namespace(namespace)
    assert top_k <= MAX_TOP_K
    return body, fetch


def fill(matches: list[Match], vectors: Sequence[Vector], return_values: bool, return_metadata: str) -> list[Match]:
    """Matches completed from a get_by_ids answer (a vector deleted in between drops out of the matches)."""
    by_id = {v.id: v for v in vectors}
    out = []
    for m in matches:
        v = by_id.get(m.id)
        if v is None:
            continue
        out.append(Match(m.id, m.score, v.values if return_values else None,
                         v.metadata if return_metadata != "none" else None, m.namespace or v.namespace))
    return out


def ordered(ids: Sequence[str], vectors: Iterable[Vector], namespace: str | None) -> list[Vector]:
    """``get_by_ids`` answers in the order asked (the service's order is not documented), missing ids left out,
    vectors of another namespace left out when the handle has one."""
    by_id = {v.id: v for v in vectors if namespace is None or v.namespace in (None, namespace)}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


def unindexed(filter: Mapping[str, Any] | None, listed: Sequence[MetadataIndex]) -> list[str]:
    """Filter properties without a metadata index (the service's answer for those is not documented)."""
    have = {m.property_name for m in listed}
    return [p for p in filter_properties(filter) if p not in have]


def unindexed_error(index: str, missing: Sequence[str]) -> InvalidInputError:
    names = ", ".join(repr(p) for p in missing)
    return InvalidInputError(
        f"the filter uses {names} but index {index!r} has no metadata index on it, so nothing can match: create "
        f"one with create_metadata_index({missing[0]!r}, 'string'|'number'|'boolean') and write the vectors again "
        "(only vectors written after a metadata index exists are filterable)"
    )


__all__ = [
    "IDS_PER_REQUEST",
    "check_unique_ids",
    "create_config",
    "delete_mutation",
    "fill",
    "id_chunks",
    "index_mutation",
    "ordered",
    "prepare_vectors",
    "query_body",
    "return_metadata_mode",
    "unindexed",
    "unindexed_error",
    "write_calls",
    "write_mutation",
]
