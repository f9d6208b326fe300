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

_WORD_RE = re.compile(r"\w+")
TRIGRAM_WEIGHT = 0.25


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


def to_base64(vector: list[float]) -> str:
    """OpenAI's ``encoding_format: base64``: little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


__all__ = ["embed_many", "embed_text", "to_base64"]
