"""LlamaIndex integration of cfgateway: Cloudflare Workers AI and any provider behind AI Gateway.

>>> from llama_index_cfgateway import CloudflareLLM, CloudflareEmbedding, CloudflareCostHandler
>>> from llama_index_cfgateway import CloudflareVectorizeStore

Names load on first use, so ``import llama_index_cfgateway`` stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

try:
    _found = importlib.util.find_spec("llama_index.core") is not None
except (ImportError, ValueError):  # pragma: no cover - a broken llama_index namespace
    _found = False
if not _found:  # pragma: no cover - exercised in a venv without llama-index-core
    raise ImportError('llama_index_cfgateway needs llama-index-core: pip install "cfgateway[llama-index]"')

_LAZY: dict[str, str] = {
    "CloudflareLLM": "llama_index_cfgateway.llms",
    "CloudflareEmbedding": "llama_index_cfgateway.embeddings",
    "CloudflareCostHandler": "llama_index_cfgateway.callbacks",
    "CloudflareVectorizeStore": "llama_index_cfgateway.vector_stores",
}

if TYPE_CHECKING:
    from llama_index_cfgateway.callbacks import CloudflareCostHandler
    from llama_index_cfgateway.embeddings import CloudflareEmbedding
    from llama_index_cfgateway.llms import CloudflareLLM
    from llama_index_cfgateway.vector_stores import CloudflareVectorizeStore


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llama_index_cfgateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["CloudflareLLM", "CloudflareEmbedding", "CloudflareCostHandler", "CloudflareVectorizeStore"]
