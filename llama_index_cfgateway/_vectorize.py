"""Helpers of :class:`~llama_index_cfgateway.vector_stores.CloudflareVectorizeStore`: nodes <-> vectors,
``MetadataFilters`` -> Vectorize filters, and local filtering/scoring where Vectorize cannot do it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn, metadata_dict_to_node, node_to_metadata_dict

from cfgateway.errors import InvalidInputError
from cfgateway.vectorize import Match, Vector
from cfgateway.vectorize.scoring import score, similarity

REF_DOC_KEY = "ref_doc_id"  # node_to_metadata_dict stores it at the top level; delete(ref_doc_id) filters on it
_OPS = {
    FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt", FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte", FilterOperator.IN: "$in", FilterOperator.NIN: "$nin",
}
_MODES = (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR)


def to_filter(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex filters as a Vectorize filter (``$and`` of single-operator conditions; the core merges and
    checks them). OR/NOT and operators Vectorize lacks are refused with the reason."""
    if filters is None or not filters.filters:
        return None
    if filters.condition not in (None, FilterCondition.AND):
        raise InvalidInputError(f"Vectorize ANDs metadata filters; condition {filters.condition!s} cannot be "
                                "expressed (split the query, or filter the results yourself)")
    parts: list[dict[str, Any]] = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            sub = to_filter(f)
            if sub:
                parts.append(sub)
            continue
        op = _OPS.get(f.operator)
        if op is None:
            supported = ", ".join(o.value for o in _OPS)
            raise InvalidInputError(f"filter operator {f.operator.value!r} on {f.key!r} is not supported by "
                                    f"Vectorize (supported: {supported})")
        parts.append({f.key: {op: f.value}})
    return {"$and": parts} if parts else None


def with_doc_ids(spec: dict[str, Any] | None, doc_ids: Sequence[str] | None) -> dict[str, Any] | None:
    if not doc_ids:
        return spec
    only = {REF_DOC_KEY: {"$in": list(doc_ids)}}
    return {"$and": [spec, only]} if spec else only


def to_vector(node: BaseNode, text_key: str, flat_metadata: bool, namespace: str | None) -> Vector:
    values = node.get_embedding()  # raises a clear ValueError when the node has no embedding
    meta = node_to_metadata_dict(node, remove_text=True, flat_metadata=flat_metadata)
    if text_key in node.metadata:
        raise InvalidInputError(f"node {node.node_id} has a metadata key {text_key!r}, where the store keeps the "
                                "text: rename that key, or pass another text_key= to CloudflareVectorizeStore")
    meta[text_key] = node.get_content(metadata_mode=MetadataMode.NONE)
    return Vector(node.node_id, list(values), meta, namespace)


def to_node(item: Match | Vector, text_key: str) -> BaseNode:
    meta = dict(item.metadata or {})
    text = meta.pop(text_key, None)
    try:
        node = metadata_dict_to_node(meta, text=text)
    except (ValueError, TypeError):  # a vector written by something else: no _node_content
        node = TextNode(id_=item.id, text=text or "", metadata=meta)
    node.node_id = item.id
    return node


def local_filter(vectors: Sequence[Vector], filters: MetadataFilters | None) -> list[Vector]:
    """Apply ``filters`` here (LlamaIndex's own evaluation): used where ids are given, so no index is needed."""
    if filters is None or not filters.filters:
        return list(vectors)
    by_id = {v.id: v.metadata or {} for v in vectors}
    keep = build_metadata_filter_fn(lambda i: by_id[i], filters)
    return [v for v in vectors if keep(v.id)]


def check_query(query: VectorStoreQuery) -> list[float]:
    if query.mode not in _MODES:
        raise InvalidInputError(f"query mode {query.mode.value!r} is not supported by Vectorize (default, mmr)")
    if query.query_embedding is None:
        raise InvalidInputError("the query has no embedding: Vectorize searches by vector")
    return list(query.query_embedding)


def score_locally(metric: str, query: Sequence[float], vectors: Sequence[Vector], top_k: int) -> list[Match]:
    """Exact matches among given vectors (``node_ids`` queries), closest first, with Vectorize's scores."""
    scored = [Match(v.id, score(metric, query, v.values), v.values, v.metadata, v.namespace) for v in vectors]
    scored.sort(key=lambda m: -m.score if metric == "cosine" else m.score)
    return scored[:top_k]


def result(matches: Sequence[Match], metric: str, text_key: str) -> VectorStoreQueryResult:
    """Nodes, similarities where higher is closer (cosine, the dot product, 1 / (1 + euclidean)), ids."""
    return VectorStoreQueryResult(
        nodes=[to_node(m, text_key) for m in matches],
        similarities=[similarity(metric, m.score) for m in matches],
        ids=[m.id for m in matches],
    )


def probe(dimensions: int) -> list[float]:
    """A query vector for filter-only lookups (the filter picks the set; any vector works)."""
    return [1.0] + [0.0] * (dimensions - 1)


__all__ = ["REF_DOC_KEY", "check_query", "local_filter", "probe", "result", "score_locally", "to_filter",
           "to_node", "to_vector", "with_doc_ids"]
