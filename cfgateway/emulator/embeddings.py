"""Deterministic embedding vectors: feature hashing of words (+ character trigrams), L2-normalised.

Identical texts give identical vectors; texts sharing words are closer. The hash is
``hashlib.blake2b`` (stable across processes), never Python's salted ``hash()``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from functools import lru_cache
from typing import Any

from cfgateway.emulator.reply import dumps

_WORD_RE = re.compile(r"\w+")
TRIGRAM_WEIGHT = 0.25
JSON_CACHE_SIZE = 32_768  # ~4 KB of text per 768-dim vector (sparse rows): ~130 MB when full


def _bucket(feature: str, dims: int, seed: bytes) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=seed).digest()
    n = int.from_bytes(digest, "little")
    return n % dims, (1.0 if (n >> 63) & 1 else -1.0)


@lru_cache(maxsize=4096)
def embed_text(text: str, dims: int, seed: str = "mean") -> tuple[float, ...]:
    """The unit vector for ``text`` (``seed`` distinguishes pooling modes / models)."""
    key = hashlib.blake2b(seed.encode("utf-8"), digest_size=16).digest()
    vec = [0.0] * dims
    words = _WORD_RE.findall(text.lower())
    for word in words:
        i, sign = _bucket("w:" + word, dims, key)
        vec[i] += sign
        padded = f"#{word}#"
        for j in range(len(padded) - 2):
            i, sign = _bucket("t:" + padded[j : j + 3], dims, key)
            vec[i] += sign * TRIGRAM_WEIGHT
    if not words:  # punctuation only: hash the whole string
        i, sign = _bucket("s:" + text, dims, key)
        vec[i] += sign
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return tuple(x / norm for x in vec)


def embed_many(texts: list[str], dims: int, seed: str = "mean") -> list[list[float]]:
    return [list(embed_text(t, dims, seed)) for t in texts]


@lru_cache(maxsize=JSON_CACHE_SIZE)
def vector_row(text: str, dims: int, seed: str = "mean") -> bytes:
    """``json.dumps(list(embed_text(...)))`` without spaces, as UTF-8, cached (same floats, same digits).

    The vector cache above holds 4,096 entries; a bulk job re-embedding 5,000+ texts would miss every
    time, and encoding 768 floats costs as much as hashing them, so the JSON bytes are what we keep
    (bytes: a body is joined from them and sent without another encoding pass).
    """
    return ("[" + ",".join(map(float.__repr__, embed_text(text, dims, seed))) + "]").encode()


def vector_json(text: str, dims: int, seed: str = "mean") -> str:
    """:func:`vector_row` as text."""
    return vector_row(text, dims, seed).decode()


def _rows(texts: list[str], dims: int, seed: str) -> bytes:
    return b"[" + b",".join([vector_row(t, dims, seed) for t in texts]) + b"]"


def vectors_json(texts: list[str], dims: int, seed: str = "mean") -> str:
    """The JSON array of the vectors of ``texts`` (rows joined from the per-text cache)."""
    return _rows(texts, dims, seed).decode()


_SLOT = "\x00cfgateway-emulator-vectors\x00"


def json_with_vectors(body: Any, texts: list[str], dims: int, seed: str) -> bytes:
    """``body`` encoded like :func:`reply.dumps`, with the (one) ``VECTORS`` slot in it replaced by the rows."""
    text = dumps(body)
    slot = dumps(_SLOT)
    if text.count(slot) != 1:
        raise ValueError("json_with_vectors: the body must hold the VECTORS slot exactly once")
    head, _, tail = text.partition(slot)
    return b"".join((head.encode(), _rows(texts, dims, seed), tail.encode()))


def openai_list_json(texts: list[str], dims: int, seed: str, model: str, usage: dict[str, Any] | None) -> bytes:
    """What ``dumps(formats.openai_embedding(...))`` gives for these texts, built from the cached rows."""
    rows = b",".join(
        b'{"object":"embedding","embedding":' + vector_row(t, dims, seed) + b',"index":%d}' % i
        for i, t in enumerate(texts)
    )
    tail = "" if usage is None else f',"usage":{dumps(usage)}'
    return b'{"object":"list","data":[' + rows + f'],"model":{dumps(model)}{tail}}}'.encode()


VECTORS: Any = _SLOT  # put where the list of vectors goes in a body passed to json_with_vectors


def to_base64(vector: list[float]) -> str:
    """OpenAI's ``encoding_format: base64``: little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


__all__ = [
    "VECTORS",
    "embed_many",
    "embed_text",
    "json_with_vectors",
    "openai_list_json",
    "to_base64",
    "vector_json",
    "vector_row",
    "vectors_json",
]
