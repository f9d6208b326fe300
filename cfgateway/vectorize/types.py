"""Value types of the Vectorize v2 client (vectorize-api.md): vectors, matches, index facts, mutations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Metric = Literal["cosine", "euclidean", "dot-product"]
MetadataType = Literal["string", "number", "boolean"]
ReturnMetadata = Literal["none", "indexed", "all"]
MutationKind = Literal["insert", "upsert", "delete", "metadata_index_create", "metadata_index_delete"]
METRICS: tuple[str, ...] = ("cosine", "euclidean", "dot-product")
METADATA_TYPES: tuple[str, ...] = ("string", "number", "boolean")
PRESETS: dict[str, int] = {  # preset -> dimensions (vectorize-api.md §3); the metric a preset picks is unknown
    "@cf/baai/bge-small-en-v1.5": 384,
    "@cf/baai/bge-base-en-v1.5": 768,
    "@cf/baai/bge-large-en-v1.5": 1024,
    "openai/text-embedding-ada-002": 1536,
    "cohere/embed-multilingual-v2.0": 768,
}


@dataclass(slots=True)
class Vector:
    """One stored vector: what is written (insert/upsert) and what ``get_by_ids`` returns."""

    id: str
    values: list[float]
    metadata: dict[str, Any] | None = None
    namespace: str | None = None

    def __repr__(self) -> str:  # values are long: show their count, not the floats
        return (f"Vector(id={self.id!r}, values=<{len(self.values)} floats>, metadata={self.metadata!r}, "
                f"namespace={self.namespace!r})")


@dataclass(slots=True)
class Match:
    """One query match. ``score``: cosine similarity (higher = closer), euclidean distance or negative dot
    product (lower = closer) — Vectorize's own scores; matches come closest first."""

    id: str
    score: float
    values: list[float] | None = None
    metadata: dict[str, Any] | None = None
    namespace: str | None = None

    def __repr__(self) -> str:
        values = "None" if self.values is None else f"<{len(self.values)} floats>"
        return (f"Match(id={self.id!r}, score={self.score!r}, values={values}, metadata={self.metadata!r}, "
                f"namespace={self.namespace!r})")


@dataclass(frozen=True, slots=True)
class IndexConfig:
    dimensions: int
    metric: str


@dataclass(frozen=True, slots=True)
class IndexDescription:
    """``GET /indexes/{name}``: name, configuration and dates."""

    name: str
    config: IndexConfig
    description: str = ""
    created_on: str | None = None
    modified_on: str | None = None


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """``GET /indexes/{name}/info``. The processed-up-to fields are ``None`` until a mutation was processed.
    Whether ``vector_count`` counts unprocessed writes is not documented."""

    dimensions: int
    vector_count: int
    processed_up_to_mutation: str | None = None
    processed_up_to_datetime: str | None = None


@dataclass(frozen=True, slots=True)
class MetadataIndex:
    property_name: str
    index_type: str


@dataclass(frozen=True, slots=True)
class VectorIds:
    """One page of ``list``: ids (no values), and the cursor of the next page when truncated."""

    ids: list[str]
    total_count: int | None = None
    next_cursor: str | None = None
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Mutation:
    """An accepted asynchronous write: its ``id`` (``mutationId``), what it does and to which ids.

    ``expected`` holds the vectors (or property) a waiter checks reads against; it is not sent again.
    """

    id: str
    kind: MutationKind
    index: str
    ids: tuple[str, ...] = ()
    expected: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def describe(self) -> str:
        what = {"insert": "insert of", "upsert": "upsert of", "delete": "delete of"}.get(self.kind)
        if what is None:
            prop = self.ids[0] if self.ids else "?"
            return f"{self.kind.replace('_', ' ')} {prop!r} on index {self.index!r}"
        return f"{what} {len(self.ids)} vector(s) in index {self.index!r}"


__all__ = [
    "IndexConfig",
    "IndexDescription",
    "IndexInfo",
    "METADATA_TYPES",
    "METRICS",
    "Match",
    "MetadataIndex",
    "MetadataType",
    "Metric",
    "Mutation",
    "MutationKind",
    "PRESETS",
    "ReturnMetadata",
    "Vector",
    "VectorIds",
]
