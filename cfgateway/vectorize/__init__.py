"""Cloudflare Vectorize v2 over REST, framework-free (layer 5, beside the chat client).

>>> from cfgateway.vectorize import Vector, VectorizeClient
>>> vz = VectorizeClient()                                   # settings from CLOUDFLARE_*        # doctest: +SKIP
>>> idx = vz.index("docs")                                                                      # doctest: +SKIP
>>> idx.create(768, metric="cosine", exist_ok=True)                                             # doctest: +SKIP
>>> idx.upsert([Vector("a", [0.1] * 768, {"text": "hello"})])   # returns once readable          # doctest: +SKIP
>>> idx.query([0.1] * 768, top_k=3, return_metadata="all", filter={"lang": "en"})               # doctest: +SKIP

Modules: :mod:`~.wire` (requests and answers, sans-IO), :mod:`~.validate` (every caller string checked
before it reaches a URL or body), :mod:`~.filters`, :mod:`~.plans` (shared sync/async decisions),
:mod:`~.waiting` (read-after-write for asynchronous mutations), :mod:`~.costs` (queried/stored dimensions
priced from the catalog into usage records), :mod:`~.scoring` (metrics and MMR in pure Python).
"""

from __future__ import annotations

from cfgateway.vectorize.client import VectorizeClient
from cfgateway.vectorize.costs import cost_of, monthly_cost
from cfgateway.vectorize.filters import filter_properties, to_filter
from cfgateway.vectorize.index import VectorizeIndex
from cfgateway.vectorize.scoring import higher_is_closer, mmr, relevance, score, similarity
from cfgateway.vectorize.types import (
    METRICS,
    PRESETS,
    IndexConfig,
    IndexDescription,
    IndexInfo,
    Match,
    MetadataIndex,
    Mutation,
    Vector,
    VectorIds,
)
from cfgateway.vectorize.validate import MAX_BATCH, MAX_TOP_K, MAX_TOP_K_WITH_DATA
from cfgateway.vectorize.waiting import WaitPolicy

__all__ = [
    "IndexConfig",
    "IndexDescription",
    "IndexInfo",
    "MAX_BATCH",
    "MAX_TOP_K",
    "MAX_TOP_K_WITH_DATA",
    "METRICS",
    "Match",
    "MetadataIndex",
    "Mutation",
    "PRESETS",
    "Vector",
    "VectorIds",
    "VectorizeClient",
    "VectorizeIndex",
    "WaitPolicy",
    "cost_of",
    "filter_properties",
    "higher_is_closer",
    "mmr",
    "monthly_cost",
    "relevance",
    "score",
    "similarity",
    "to_filter",
]
