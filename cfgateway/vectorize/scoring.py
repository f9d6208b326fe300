"""Vector math in pure Python (no numpy): Vectorize's scores per metric, and maximal marginal relevance.

Scores follow Vectorize (vectorize-api.md §6): ``cosine`` is the cosine similarity (higher = closer),
``euclidean`` the L2 distance and ``dot-product`` the *negative* dot product (lower = closer).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

Vec = Sequence[float]


def dot(a: Vec, b: Vec) -> float:
    return sum(map(operator.mul, a, b))


def norm(a: Vec) -> float:
    return math.sqrt(dot(a, a))


def cosine(a: Vec, b: Vec) -> float:
    na, nb = norm(a), norm(b)
    return 0.0 if na == 0 or nb == 0 else dot(a, b) / (na * nb)


def score(metric: str, a: Vec, b: Vec) -> float:
    """Vectorize's score of ``b`` for the query ``a``."""
    if metric == "cosine":
        return cosine(a, b)
    if metric == "euclidean":
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    if metric == "dot-product":
        return -dot(a, b)
    raise ValueError(f"unknown metric {metric!r}")


def higher_is_closer(metric: str) -> bool:
    return metric == "cosine"


def similarity(metric: str, raw: float) -> float:
    """A score where higher = closer for every metric (what LlamaIndex's postprocessors assume):
    cosine as is, the dot product itself (``-score``), and ``1 / (1 + distance)`` for euclidean."""
    if metric == "cosine":
        return raw
    if metric == "dot-product":
        return -raw
    return 1.0 / (1.0 + raw)


def relevance(metric: str, raw: float) -> float:
    """A relevance in [0, 1] (LangChain's ``similarity_search_with_relevance_scores``): ``(1 + cos) / 2`` for
    cosine, ``1 - d / sqrt(2)`` for euclidean and LangChain's max-inner-product mapping for dot-product (both
    assume unit-length embeddings, as LangChain's own stores do)."""
    if metric == "cosine":
        return (1.0 + raw) / 2.0
    if metric == "euclidean":
        return 1.0 - raw / math.sqrt(2)
    return 1.0 - raw if raw > 0 else -raw


def mmr(query: Vec, candidates: Sequence[Vec], k: int, lambda_mult: float = 0.5) -> list[int]:
    """Indices of ``k`` candidates by maximal marginal relevance (cosine similarity, as LangChain computes it):
    each pick maximises ``lambda * sim(query, c) - (1 - lambda) * max sim(c, picked)``."""
    if not candidates or k <= 0:
        return []
    norms = [norm(c) for c in candidates]
    qn = norm(query)

    def sim(i: int, v: Vec, vn: float) -> float:
        return 0.0 if norms[i] == 0 or vn == 0 else dot(candidates[i], v) / (norms[i] * vn)

    to_query = [sim(i, query, qn) for i in range(len(candidates))]
    picked = [max(range(len(candidates)), key=to_query.__getitem__)]
    closest = [-math.inf] * len(candidates)  # max similarity to anything picked so far
    while len(picked) < min(k, len(candidates)):
        last = picked[-1]
        best, best_score = -1, -math.inf
        for i in range(len(candidates)):
            if i in picked:
                continue
            closest[i] = max(closest[i], sim(i, candidates[last], norms[last]))
            value = lambda_mult * to_query[i] - (1 - lambda_mult) * closest[i]
            if value > best_score:
                best, best_score = i, value
        picked.append(best)
    return picked


__all__ = ["cosine", "dot", "higher_is_closer", "mmr", "norm", "relevance", "score", "similarity"]
