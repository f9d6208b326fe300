"""Helpers of :class:`~langchain_cfgateway.vectorstores.CloudflareVectorize`: settings, rows and documents."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from cfgateway.config import load_settings
from cfgateway.errors import InvalidInputError
from cfgateway.vectorize import Match, Vector, VectorizeClient, VectorizeIndex, WaitPolicy
from cfgateway.vectorize.validate import MAX_BATCH, check_id, check_metadata, check_metadata_key

SEARCH_KWARGS = ("filter", "namespace")


def connect(index_name: str, *, namespace: str | None, tracker: Any, wait_policy: WaitPolicy | None,
            max_concurrency: int, config_profile: str | None, **settings: Any) -> VectorizeIndex:
    """The core index handle for these settings (arguments > environment > profile > defaults)."""
    resolved = load_settings(profile=config_profile, **settings)
    client = VectorizeClient(settings=resolved, tracker=tracker, wait_policy=wait_policy,
                             max_concurrency=max_concurrency)
    return client.index(index_name, namespace=namespace)


def default_embedding(tracker: Any, config_profile: str | None, **settings: Any) -> Embeddings:
    from langchain_cfgateway.embeddings import CloudflareEmbeddings

    kwargs = {k: v for k, v in settings.items() if v is not None}
    return CloudflareEmbeddings(config_profile=config_profile, tracker=tracker, **kwargs)


def check_search_kwargs(kwargs: dict[str, Any], where: str) -> None:
    unknown = sorted(set(kwargs) - set(SEARCH_KWARGS))
    if unknown:
        raise TypeError(f"{where} got unknown argument(s) {', '.join(unknown)}; it takes k, filter "
                        "(Vectorize or LangChain-style dict) and namespace")


def refuse_kwargs(kwargs: dict[str, Any], where: str) -> None:
    if kwargs:
        raise TypeError(f"{where} got unknown argument(s) {', '.join(sorted(kwargs))}")


def rows(texts: Sequence[str], metadatas: Sequence[dict[str, Any] | None] | None, ids: Sequence[str | None] | None,
         text_key: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Ids (given, or new uuid4 strings) and the metadata stored per text (the text under ``text_key``),
    validated before anything is embedded or sent."""
    n = len(texts)
    if metadatas is not None and len(metadatas) != n:
        raise InvalidInputError(f"got {len(metadatas)} metadatas for {n} texts: pass one per text (or none)")
    if ids is not None and len(ids) != n:
        raise InvalidInputError(f"got {len(ids)} ids for {n} texts: pass one per text (or none)")
    out_ids = [check_id(i) if i is not None else str(uuid.uuid4()) for i in (ids or [None] * n)]
    stored: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        meta = dict((metadatas[i] if metadatas else None) or {})
        if text_key in meta:
            raise InvalidInputError(f"metadata of text {i} has the key {text_key!r}, where the store keeps the text: "
                                    "rename that key, or pass another text_key= to CloudflareVectorize")
        if not isinstance(text, str):
            raise InvalidInputError(f"text {i} is a {type(text).__name__}, not a string")
        meta[text_key] = text
        check_metadata(meta, out_ids[i])
        stored.append(meta)
    return out_ids, stored


def chunks(n: int, size: int = MAX_BATCH) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def vectors(ids: Sequence[str], values: Sequence[Sequence[float]], stored: Sequence[dict[str, Any]],
            namespace: str | None) -> list[Vector]:
    if len(values) != len(ids):
        raise InvalidInputError(f"the embeddings returned {len(values)} vectors for {len(ids)} texts")
    return [Vector(i, list(v), m, namespace) for i, v, m in zip(ids, values, stored, strict=True)]


def to_document(item: Match | Vector, text_key: str) -> Document:
    meta = dict(item.metadata or {})
    text = meta.pop(text_key, "")
    return Document(id=item.id, page_content=text if isinstance(text, str) else str(text), metadata=meta)


def check_text_key(text_key: str) -> str:
    return check_metadata_key(text_key, "text_key")


__all__ = ["check_search_kwargs", "check_text_key", "chunks", "connect", "default_embedding", "refuse_kwargs", "rows",
           "to_document", "vectors"]
