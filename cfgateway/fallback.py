"""Fallback chains: a composite with the same interface as one :class:`~cfgateway.client.Client`.

(Being built: issue 5. ``build_client`` is the single entry point the adapters use.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cfgateway.client import Client


def build_client(model: str, fallbacks: Sequence[str] | None = None, **kwargs: Any) -> Client:
    """A :class:`Client` for ``model``, or a fallback chain over ``[model, *fallbacks]``."""
    if fallbacks:
        raise NotImplementedError("fallback chains are being built (issue 5)")
    return Client(model, **kwargs)


__all__ = ["build_client"]
