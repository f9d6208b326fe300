"""Pure request building: model fields + per-call options -> :class:`cfgateway.ChatRequest`.

Only documented options reach the request; anything else is refused with the list of what is
accepted, so a typo never silently disappears and an unknown name is never sent in the body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.utils.function_calling import convert_to_openai_tool

from cfgateway import ChatRequest, Message
from cfgateway.routing.routes import GatewayOptions
from langchain_cfgateway._convert import tool_choice as _tool_choice
from langchain_cfgateway._convert import tool_spec

if TYPE_CHECKING:
    from cfgateway.types import CallContext

SAMPLING = (
    "temperature", "max_tokens", "top_p", "top_k", "seed",
    "frequency_penalty", "presence_penalty", "repetition_penalty",
)
# Per-call options (``invoke(..., temperature=0)``, ``bind(...)``, ``bind_tools(...)`` extras).
CALL_OPTIONS = frozenset(
    {
        *SAMPLING, "model", "stop", "tools", "tool_choice", "response_format", "reasoning_effort",
        "extra_body", "gateway_options", "user", "metadata",
        # accepted for LangChain compatibility, never sent: ``stream`` (LangChain's own switch),
        # ``parallel_tool_calls`` and ``strict`` (no equivalent across Cloudflare's routes),
        # ``ls_structured_output_format`` (tracing hint LangChain usually pops first).
        "stream", "parallel_tool_calls", "strict", "ls_structured_output_format",
    }
)
CONTEXT_KEY = "_cf_context"  # private kwarg carrying the caller's RunnableConfig metadata (see chat_models)
_USER_KEYS = ("user_id", "user")
_INTERNAL_PREFIXES = ("ls_", "langgraph_", "checkpoint_", "__")


def check_call_options(kwargs: Mapping[str, Any]) -> None:
    unknown = sorted(k for k in kwargs if k not in CALL_OPTIONS and k != CONTEXT_KEY)
    if unknown:
        known = ", ".join(sorted(CALL_OPTIONS - {"ls_structured_output_format"}))
        raise TypeError(f"ChatCloudflare got unknown per-call option(s) {', '.join(unknown)}; known: {known}")


def format_tools(tools: Sequence[Any], *, strict: bool | None = None) -> list[dict[str, Any]]:
    """Any LangChain tool form (BaseTool, function, pydantic, TypedDict, OpenAI/Anthropic dict) ->
    OpenAI-format dicts (what a binding stores, JSON-serialisable for tracing)."""
    return [convert_to_openai_tool(t, strict=strict) for t in tools]


def call_context(metadata: Mapping[str, Any] | None, explicit_user: Any = None, explicit: Any = None) -> CallContext:
    """``CallContext(user=..., metadata=...)`` from a RunnableConfig's metadata.

    ``user_id`` (or ``user``) becomes the user; other scalar entries become gateway/ledger metadata.
    LangChain's and LangGraph's own keys (``ls_*``, ``langgraph_*``, ``checkpoint_*``) are left out.
    """
    from cfgateway.types import CallContext  # deferred: loaded with the client on the first call

    meta: dict[str, Any] = {}
    user = None
    for k, v in (metadata or {}).items():
        if k in _USER_KEYS:
            user = user or (str(v) if v is not None else None)
        elif not k.startswith(_INTERNAL_PREFIXES) and isinstance(v, (str, int, float, bool)):
            meta[k] = v
    if explicit:
        meta.update(dict(explicit))
    if explicit_user is not None:
        user = str(explicit_user)
    return CallContext(user=user, metadata=meta)


def _gateway_options(value: Any) -> GatewayOptions | None:
    if value is None or isinstance(value, GatewayOptions):
        return value
    if isinstance(value, Mapping):
        return GatewayOptions(**value)
    raise TypeError(f"gateway_options must be a GatewayOptions or a dict, not {type(value).__name__}")


@dataclass(slots=True)
class Call:
    request: ChatRequest
    model: str | None
    context: CallContext
    gateway_options: GatewayOptions | None


def _stop(*candidates: Any) -> list[str] | None:
    for s in candidates:
        if s:
            return [s] if isinstance(s, str) else list(s)
    return None


def build_call(
    messages: list[Message], defaults: Mapping[str, Any], stop: list[str] | None, kwargs: dict[str, Any],
    run_metadata: Mapping[str, Any] | None = None,
) -> Call:
    """One call: ``defaults`` are the model's fields (None = not sent), ``kwargs`` override them."""
    if kwargs:
        check_call_options(kwargs)
        values: dict[str, Any] = {name: kwargs.get(name, defaults.get(name)) for name in SAMPLING}
    else:
        values = {name: defaults.get(name) for name in SAMPLING}
    req = ChatRequest(messages, **values)
    req.stop = _stop(stop, kwargs.get("stop"), defaults.get("stop"))
    tools = kwargs.get("tools")
    if tools:
        formatted = [t if _is_openai_tool(t) else convert_to_openai_tool(t) for t in tools]
        req.tools = [tool_spec(t) for t in formatted]
        req.tool_choice = _tool_choice(kwargs.get("tool_choice"), [t.name for t in req.tools])
    req.response_format = kwargs.get("response_format")
    effort = kwargs.get("reasoning_effort", defaults.get("reasoning_effort"))
    if defaults.get("extra_body") or kwargs.get("extra_body") or effort is not None:
        extra = dict(defaults.get("extra_body") or {})
        extra.update(kwargs.get("extra_body") or {})
        if effort is not None:
            extra["reasoning_effort"] = effort
        req.extra_body = extra
    ctx_meta = kwargs.get(CONTEXT_KEY)
    source = ctx_meta if ctx_meta is not None else run_metadata
    context = call_context(source, kwargs.get("user"), kwargs.get("metadata"))
    opts = _gateway_options(kwargs.get("gateway_options")) or defaults.get("gateway_options")
    return Call(req, kwargs.get("model"), context, opts)


def _is_openai_tool(t: Any) -> bool:
    return isinstance(t, Mapping) and t.get("type") == "function" and isinstance(t.get("function"), Mapping)


__all__ = ["CALL_OPTIONS", "CONTEXT_KEY", "Call", "build_call", "call_context", "check_call_options", "format_tools"]
