"""The no-proxy path: the ``openai`` SDK aimed at Cloudflare's own OpenAI-compatible endpoints, and AutoGen's
``model_info`` for any model string.

>>> client = openai_client()                                   # doctest: +SKIP
>>> client.chat.completions.create(model="openai/gpt-4o-mini", messages=[...])         # doctest: +SKIP

With a gateway configured (``CLOUDFLARE_AI_GATEWAY_ID``) the client talks to the gateway's unified endpoint
``{gateway}/compat`` (model names ``openai/gpt-4o-mini``, ``workers-ai/@cf/meta/…``), with the gateway token
as ``cf-aig-authorization`` and gateway options as default headers. Without one it talks to Workers AI's
``/ai/v1`` (``@cf/…`` models only), with the Cloudflare API token. Settings come from the environment and
``cfgateway.toml`` like everything else. ``openai`` is imported only when a client is made.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cfgateway.config import Settings, load_settings
from cfgateway.costs.catalog import Catalog, load_catalog
from cfgateway.errors import ConfigError
from cfgateway.routing.routes import GatewayOptions

if TYPE_CHECKING:
    import openai

_MISSING = "the openai SDK is not installed: pip install 'cfgateway[openai]' (or pip install openai)"

# AutoGen's ModelFamily names for model strings this project routes (first match wins).
_FAMILIES: list[tuple[str, str]] = [
    (r"gpt-5", "gpt-5"), (r"gpt-4\.1", "gpt-41"), (r"gpt-4\.5", "gpt-45"), (r"gpt-4o", "gpt-4o"),
    (r"(^|/)o1", "o1"), (r"(^|/)o3", "o3"), (r"(^|/)o4", "o4"), (r"gpt-4", "gpt-4"), (r"gpt-3\.5", "gpt-35"),
    (r"deepseek-r1|deepseek-reasoner", "r1"), (r"gemini-2\.5-pro", "gemini-2.5-pro"),
    (r"gemini-2\.5-flash", "gemini-2.5-flash"), (r"gemini-2\.0-flash", "gemini-2.0-flash"),
    (r"claude-3-5-haiku", "claude-3-5-haiku"), (r"claude-3-5-sonnet", "claude-3-5-sonnet"),
    (r"claude-3-7-sonnet", "claude-3-7-sonnet"), (r"claude-(opus-4|4-opus)", "claude-4-opus"),
    (r"claude-(sonnet-4|4-sonnet)", "claude-4-sonnet"), (r"claude-3-haiku", "claude-3-haiku"),
    (r"llama-3\.3-70b", "llama-3.3-70b"), (r"llama-3\.3-8b", "llama-3.3-8b"), (r"llama-4-scout", "llama-4-scout"),
    (r"llama-4-maverick", "llama-4-maverick"), (r"codestral", "codestral"), (r"ministral", "ministral"),
    (r"pixtral", "pixtral"), (r"mistral", "mistral"),
]


def model_family(model: str) -> str:
    """AutoGen's ``family`` for a model string (``"unknown"`` when AutoGen has no name for it)."""
    low = model.lower()
    for pattern, family in _FAMILIES:
        if re.search(pattern, low):
            return family
    return "unknown"


def autogen_model_info(model: str, *, catalog: Catalog | None = None) -> dict[str, Any]:
    """AutoGen's ``model_info`` for ``model`` from the catalog: ``vision``, ``function_calling``,
    ``json_output``, ``structured_output``, ``family`` (and ``multiple_system_messages``).

    A model the catalog does not know gets ``False`` capabilities and family ``"unknown"``: AutoGen then
    refuses what it cannot be sure of, instead of sending tools a model may ignore.
    """
    info = (catalog or load_catalog()).get(model)
    fc = bool(info and info.function_calling)
    js = bool(info and info.json_mode)
    return {"vision": bool(info and info.vision), "function_calling": fc, "json_output": js,
            "structured_output": js, "family": model_family(model), "multiple_system_messages": True}


def openai_target(settings: Settings, model: str | None = None) -> tuple[str, str, dict[str, str]]:
    """``(base_url, api_key, default headers)`` for an OpenAI client (SDK, AutoGen, LangChain) aimed at Cloudflare."""
    if settings.gateway_id:
        if not settings.account_id:
            raise ConfigError("account id is not set: pass account_id= or set CLOUDFLARE_ACCOUNT_ID")
        base = f"{settings.gateway_base_url}/{settings.account_id}/{settings.gateway_id}/compat"
        headers: dict[str, str] = {}
        key = settings.gateway_token.get_secret_value() if settings.gateway_token else ""
        if key:
            headers["cf-aig-authorization"] = f"Bearer {key}"
        provider = (model or "").split("/", 1)[0] if model and not model.startswith("@") else None
        own = settings.provider_key(provider) if provider else None
        if own:
            key = own.get_secret_value()
        if not key:
            raise ConfigError("the gateway's unified endpoint needs the gateway token (stored provider keys): set "
                              "CLOUDFLARE_AI_GATEWAY_TOKEN, or pass byok=False with the provider's key")
        return base, key, headers
    if model is not None and not model.startswith(("@cf/", "@hf/")):
        raise ConfigError(f"model {model!r} needs AI Gateway: set CLOUDFLARE_AI_GATEWAY_ID (without a gateway only "
                          "Workers AI '@cf/…' models are reachable, on /ai/v1)")
    if not settings.account_id:
        raise ConfigError("account id is not set: pass account_id= or set CLOUDFLARE_ACCOUNT_ID")
    if not settings.api_token:
        raise ConfigError("Cloudflare API token is not set: pass api_token= or set CLOUDFLARE_API_TOKEN")
    return f"{settings.base_url}/accounts/{settings.account_id}/ai/v1", settings.api_token.get_secret_value(), {}


def _client_args(model: str | None, settings: Settings | None, gateway_options: GatewayOptions | None,
                 overrides: dict[str, Any]) -> dict[str, Any]:
    sdk_keys = ("default_headers", "max_retries", "timeout", "http_client")
    client_kw: dict[str, Any] = {k: overrides.pop(k) for k in sdk_keys if k in overrides}
    s = settings.with_overrides(**overrides) if settings and overrides else settings or load_settings(**overrides)
    base, key, headers = openai_target(s, model)
    if gateway_options is not None and s.gateway_id:
        headers.update(gateway_options.headers())
    headers.update(client_kw.pop("default_headers", None) or {})
    return {"base_url": base, "api_key": key, "default_headers": headers,
            "max_retries": client_kw.pop("max_retries", s.max_retries),
            "timeout": client_kw.pop("timeout", s.timeout), **client_kw}


def openai_client(model: str | None = None, *, settings: Settings | None = None,
                  gateway_options: GatewayOptions | None = None, **overrides: Any) -> openai.OpenAI:
    """An ``openai.OpenAI`` aimed at the gateway's ``/compat`` endpoint, or Workers AI's ``/ai/v1`` without a gateway.

    ``model`` (optional) only checks that the endpoint can reach it and picks the provider key when
    ``byok=False``. ``overrides``: settings (``account_id=``, ``gateway_id=``…) and the SDK's
    ``default_headers``, ``max_retries``, ``timeout``, ``http_client``.
    """
    try:
        import openai
    except ImportError:
        raise ImportError(_MISSING) from None
    return openai.OpenAI(**_client_args(model, settings, gateway_options, dict(overrides)))


def async_openai_client(model: str | None = None, *, settings: Settings | None = None,
                        gateway_options: GatewayOptions | None = None, **overrides: Any) -> openai.AsyncOpenAI:
    """The ``openai.AsyncOpenAI`` twin of :func:`openai_client`."""
    try:
        import openai
    except ImportError:
        raise ImportError(_MISSING) from None
    return openai.AsyncOpenAI(**_client_args(model, settings, gateway_options, dict(overrides)))


__all__ = ["async_openai_client", "autogen_model_info", "model_family", "openai_client", "openai_target"]
