"""Stable user buckets: the consistent hashing a rollout's split and a shadow's sampling share."""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(user_id: str, salt: str = "") -> int:
    """The user's stable bucket in ``0..9999``."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


__all__ = ["BUCKETS", "bucket"]
