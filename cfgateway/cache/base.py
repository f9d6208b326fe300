"""What every embedding cache shares: the :class:`EmbeddingCache` protocol, the keys, the stored form of a vector.

Keys. A vector is stored under ``sha256(prefix + text)``, where the prefix is the JSON list
``["cfgateway-embed-v1", model, dimensions, pooling]`` and a newline. Each field changes the vector:

- ``model``: the model string of the route that produces the vectors (``@cf/baai/bge-m3``,
  ``openai/text-embedding-3-small``). A fallback route stores under its own model string, so a chain never
  mixes the vectors of two models; the endpoint (direct, gateway, OpenAI-compatible) is not part of it, since
  one model answers the same vector whichever way it is reached.
- ``dimensions``: the size sent with the request (``dimensions=256``), or ``None`` when the route answers
  its native size (nothing sent: an unset ``dimensions`` and one equal to the native size share entries).
- ``pooling``: bge's ``"mean"`` / ``"cls"`` (different vectors for the same text); ``None`` when unset.
  ``None`` and ``"mean"`` are kept apart even though Workers AI's default is mean: never share on a guess.
- ``text``: exactly as given (no trimming or case folding).

The version tag changes if the key or the stored form ever does, so an old store is never misread.

Stored form: one tag byte (``d`` = float64, ``f`` = float32) and the little-endian floats. float64 (the
default) gives back exactly the floats the API answered; float32 halves the size (about 7 significant
digits, cosine similarities unchanged to ~1e-7).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from cfgateway.errors import ConfigError

Vector = list[float]
Dtype = Literal["float64", "float32"]
KEY_VERSION = "cfgateway-embed-v1"
_TAGS: dict[str, tuple[bytes, str]] = {"float64": (b"d", "d"), "float32": (b"f", "f")}
_CODES = {b"d"[0]: "d", b"f"[0]: "f"}
_BIG_ENDIAN = sys.byteorder == "big"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@runtime_checkable
class EmbeddingCache(Protocol):
    """What a client needs from an embedding cache (memory, SQLite, Redis, or your own).

    Methods may raise: the client logs the first failure of an outage and embeds without the cache.
    """

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        """The vector stored under each key, or ``None`` where there is none; same length and order."""
        ...

    def put_many(self, items: Sequence[tuple[str, Vector]]) -> None:
        """Store ``(key, vector)`` pairs (replacing what a key held)."""
        ...

    def close(self) -> None:
        """Release connections or files (a later call may reopen them)."""
        ...


def check_dtype(dtype: str) -> Dtype:
    if dtype not in _TAGS:
        raise ConfigError(
            f"embedding cache dtype must be 'float64' (exact) or 'float32' (half the size), got {dtype!r}")
    return dtype  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _packer(code: str, n: int) -> struct.Struct:
    return struct.Struct(f"<{n}{code}")


def encode_vector(vector: Sequence[float], dtype: Dtype = "float64") -> bytes:
    """The stored form: a tag byte and the little-endian floats (``struct``: 3x faster than ``array`` here)."""
    tag, code = _TAGS[dtype]
    return tag + _packer(code, len(vector)).pack(*vector)


def decode_vector(blob: bytes) -> Vector:
    """A vector back from :func:`encode_vector`'s form; ``ValueError`` for anything else."""
    if not blob:
        raise ValueError("empty embedding cache entry")
    code = _CODES.get(blob[0])
    if code is None:
        raise ValueError(f"unknown embedding cache entry tag {blob[:1]!r}")
    arr: array[float] = array(code)  # type: ignore[assignment]
    body = memoryview(blob)[1:]
    if len(body) % arr.itemsize or not len(body):
        raise ValueError(f"embedding cache entry of {len(body)} bytes is not a whole number of {code} floats")
    arr.frombytes(body)
    if _BIG_ENDIAN:
        arr.byteswap()
    return arr.tolist()


@dataclass(frozen=True, slots=True)
class KeySpace:
    """The keys of one (model, dimensions, pooling): ``space.key(text)``; see the module docstring."""

    model: str
    dimensions: int | None = None
    pooling: str | None = None
    _prefix: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError("an embedding cache key needs the model string, got " + repr(self.model))
        head = json.dumps([KEY_VERSION, self.model, self.dimensions, self.pooling], separators=(",", ":"))
        object.__setattr__(self, "_prefix", head.encode("utf-8") + b"\n")

    def key(self, text: str) -> str:
        return hashlib.sha256(self._prefix + text.encode("utf-8", "surrogatepass")).hexdigest()

    def keys(self, texts: Sequence[str]) -> list[str]:
        base = hashlib.sha256(self._prefix)
        out = []
        for t in texts:
            h = base.copy()
            h.update(t.encode("utf-8", "surrogatepass"))
            out.append(h.hexdigest())
        return out

    @property
    def namespace(self) -> str:
        return namespace(self.model, self.dimensions, self.pooling)


def namespace(model: str, dimensions: int | None = None, pooling: str | None = None) -> str:
    """A key-safe name for the vectors of ``model`` (letters, digits, ``-``, ``_`` and ``.`` only).

    ``namespace("@cf/baai/bge-base-en-v1.5")`` -> ``"cf-baai-bge-base-en-v1.5.native.<12 hex>"``: readable,
    and distinct for every (model, dimensions, pooling) (the hex is a hash of the three, so two model strings
    that read the same once ``@`` and ``/`` are dropped still differ). For LangChain's
    ``CacheBackedEmbeddings(namespace=...)`` over a ``LocalFileStore`` (which refuses ``@``) and LlamaIndex's
    ``IngestionCache(collection=...)``.
    """
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise ConfigError(f"dimensions must be a positive whole number or None, got {dimensions!r}")
    head = json.dumps([KEY_VERSION, model, dimensions, pooling], separators=(",", ":"))
    digest = hashlib.sha256(head.encode("utf-8")).hexdigest()[:12]
    slug = _UNSAFE.sub("-", model).strip("-._") or "model"
    parts = [slug, f"d{dimensions}" if dimensions is not None else "native"]
    if pooling is not None:
        parts.append(_UNSAFE.sub("-", pooling).strip("-._") or "pooling")
    return ".".join([*parts, digest])


__all__ = [
    "KEY_VERSION", "Dtype", "EmbeddingCache", "KeySpace", "Vector", "check_dtype", "decode_vector", "encode_vector",
    "namespace",
]
