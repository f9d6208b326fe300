"""Helpers for the embedding-cache tests (core and both adapters): the three backends on real stores, and what
the emulator's request log says was sent."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _redis

from cfgateway.cache import EmbeddingCache, MemoryEmbeddingCache, RedisEmbeddingCache, SQLiteEmbeddingCache

BACKENDS = ("memory", "sqlite", "redis")


@contextmanager
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        raise RuntimeError(_redis.MISSING)  # a failure, never a skip
    with _redis.redis_server() as url:
        yield url


def make_cache(kind: str, tmp_path: Path, redis: str) -> EmbeddingCache:
    """A fresh, empty cache of ``kind`` (a Redis one under its own prefix)."""
    if kind == "memory":
        return MemoryEmbeddingCache()
    if kind == "sqlite":
        return SQLiteEmbeddingCache(tmp_path / f"emb-{uuid.uuid4().hex[:8]}.db")
    return RedisEmbeddingCache(redis, prefix=f"t{uuid.uuid4().hex[:10]}")


def cache_url(kind: str, tmp_path: Path, redis: str) -> str:
    """A URL naming a fresh cache of ``kind`` (a memory one under its own name: URLs are shared per process)."""
    tag = uuid.uuid4().hex[:10]
    if kind == "memory":
        return f"memory://{tag}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/emb-{tag}.db"
    return f"{redis}?prefix=t{tag}"


def embed_requests(emu: Any) -> list[Any]:
    """The embedding requests the emulator received (Workers AI's ``text`` or the OpenAI wire's ``input``)."""
    out = []
    for r in emu.state.requests:
        body = r.json if isinstance(r.json, dict) else {}
        if "text" in body or "input" in body:
            out.append(r)
    return out


def sent_texts(emu: Any) -> list[str]:
    texts: list[str] = []
    for r in embed_requests(emu):
        items = r.json.get("text", r.json.get("input"))
        texts.extend(items if isinstance(items, list) else [items])
    return texts
