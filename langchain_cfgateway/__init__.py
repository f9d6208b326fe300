"""LangChain integration of cfgateway: Cloudflare Workers AI and any provider behind AI Gateway.

>>> from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings, CloudflareVectorize, get_cloudflare_callback

Names load on first use, so ``import langchain_cfgateway`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a venv without langchain-core
    raise ImportError(
        'langchain_cfgateway needs langchain-core: pip install "cfgateway[langchain]"'
    ) from exc

_LAZY: dict[str, str] = {
    "ChatCloudflare": "langchain_cfgateway.chat_models",
    "CloudflareEmbeddings": "langchain_cfgateway.embeddings",
    "CloudflareCostCallbackHandler": "langchain_cfgateway.callbacks",
    "get_cloudflare_callback": "langchain_cfgateway.callbacks",
    "CloudflareVectorize": "langchain_cfgateway.vectorstores",
}

if TYPE_CHECKING:
    from langchain_cfgateway.callbacks import CloudflareCostCallbackHandler, get_cloudflare_callback
    from langchain_cfgateway.chat_models import ChatCloudflare
    from langchain_cfgateway.embeddings import CloudflareEmbeddings
    from langchain_cfgateway.vectorstores import CloudflareVectorize


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'langchain_cfgateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["ChatCloudflare", "CloudflareEmbeddings", "CloudflareCostCallbackHandler", "CloudflareVectorize",
           "get_cloudflare_callback"]
