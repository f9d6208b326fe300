"""An OpenAI-compatible proxy in front of cfgateway (AutoGen, the openai SDK, LangChain, LlamaIndex, any client).

``cfgateway proxy --port 8080 --alias fast=@cf/meta/llama-3.1-8b-instruct-fp8-fast,openai/gpt-4o-mini``
then point the client's ``base_url`` at ``http://127.0.0.1:8080/v1``. ``model`` takes any cfgateway model
string, an alias (several models = a fallback chain) or, with ``--default-provider``, a bare name.

Modules: :mod:`~cfgateway.proxy.guard` (Host, Origin, content type, size and time limits),
:mod:`~cfgateway.proxy.auth` (hashed keys, tenants), :mod:`~cfgateway.proxy.schema` (the request shapes),
:mod:`~cfgateway.proxy.app` (chat, embeddings, models), :mod:`~cfgateway.proxy.responses` (Responses API),
:mod:`~cfgateway.proxy.clients` (one shared transport, bounded client cache), :mod:`~cfgateway.proxy.metrics`,
:mod:`~cfgateway.proxy.ops` (health, readiness, metrics, OpenAPI), :mod:`~cfgateway.proxy.serve` (uvicorn).
"""

from __future__ import annotations

from cfgateway.proxy.app import Proxy
from cfgateway.proxy.auth import KeyRing, ProxyKey, key_from_spec
from cfgateway.proxy.config import Limits, ProxyConfig, load_proxy_config
from cfgateway.proxy.ops import create_proxy_app
from cfgateway.proxy.serve import serve_proxy

__all__ = ["KeyRing", "Limits", "Proxy", "ProxyConfig", "ProxyKey", "create_proxy_app", "key_from_spec",
           "load_proxy_config", "serve_proxy"]
