"""Pure request building: model fields + per-call kwargs -> one core call.

Only documented options reach the request; anything else is refused with the list of what is
accepted, so a typo never silently disappears and an unknown name is never sent in the body.

The call's user and metadata (gateway ``cf-aig-metadata``, cost records) come from, in order:
the ``user=`` / ``metadata=`` kwargs, then LlamaIndex's instrumentation tags
(``with instrument_tags({"user_id": "u1", "team": "search"}): engine.query(...)``), which
reach every LLM call a query engine, chat engine or agent makes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llama_index.core.instrumentation.dispatcher import active_instrument_tags  # type: ignore[attr-defined]

from cfgateway import ChatRequest, Message
from llama_index_cfgateway._convert import tool_choice, tool_spec

if TYPE_CHECKING:
    from cfgateway.routing.routes import GatewayOptions
    from cfgateway.types import CallContext

SAMPLING = (
    "temperature", "max_tokens", "top_p", "top_k", "seed",
    "frequency_penalty", "presence_penalty", "repetition_penalty",
)
CALL_OPTIONS = frozenset(
    {
        *SAMPLING, "model", "stop", "tools", "tool_choice", "tool_required", "response_format",
        "reasoning_effort", "extra_body", "gateway_options", "user", "metadata",
        # accepted for compatibility, never sent: OpenAI-only switches with no equivalent across
        # Cloudflare's routes (parallel calls are limited client-side by chat_with_tools).
        "strict", "parallel_tool_calls",
    }
)
_USER_TAGS = ("user_id", "user")


def check_call_options(kwargs: Mapping[str, Any]) -> None:
    unknown = sorted(k for k in kwargs if k not in CALL_OPTIONS)
    if unknown:
        known = ", ".join(sorted(CALL_OPTIONS))
        raise TypeError(f"CloudflareLLM got unknown per-call option(s) {', '.join(unknown)}; known: {known}")


def call_context(user: Any = None, metadata: Mapping[str, Any] | None = None) -> CallContext:
    """``CallContext`` from the explicit ``user``/``metadata`` kwargs over the active instrument tags."""
    from cfgateway.types import CallContext  # deferred: keeps `import llama_index_cfgateway` cheap

    meta: dict[str, Any] = {}
    tag_user = None
    for k, v in (active_instrument_tags.get() or {}).items():
        if k in _USER_TAGS:
            tag_user = tag_user or (str(v) if v is not None else None)
        elif isinstance(v, (str, int, float, bool)):
            meta[k] = v
    if metadata:
        meta.update(dict(metadata))
    return CallContext(user=str(user) if user is not None else tag_user, metadata=meta)


@dataclass(slots=True)
class Call:
    request: ChatRequest
    model: str | None
    context: CallContext
    gateway_options: GatewayOptions | None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the core client's chat/stream methods."""
        kw: dict[str, Any] = {"context": self.context}
        if self.model:
            kw["model"] = self.model
        if self.gateway_options is not None:
            kw["gateway_options"] = self.gateway_options
        return kw


def _stop(*candidates: Any) -> list[str] | None:
    for s in candidates:
        if s:
            return [s] if isinstance(s, str) else list(s)
    return None


def _options(value: Any) -> GatewayOptions | None:
    from cfgateway.routing.routes import GatewayOptions

    if value is None or isinstance(value, GatewayOptions):
        return value
    if isinstance(value, Mapping):
        return GatewayOptions(**value)
    raise TypeError(f"gateway_options must be a GatewayOptions or a dict, not {type(value).__name__}")


def build_call(messages: list[Message], defaults: Mapping[str, Any], kwargs: Mapping[str, Any]) -> Call:
    """One call: ``defaults`` are the LLM's fields (None = not sent), ``kwargs`` override them."""
    check_call_options(kwargs)
    req = ChatRequest(messages)
    for name in SAMPLING:
        value = kwargs.get(name, defaults.get(name))
        if value is not None:
            setattr(req, name, value)
    req.stop = _stop(kwargs.get("stop"), defaults.get("stop"))
    tools: Sequence[Any] = kwargs.get("tools") or ()
    if tools:
        req.tools = [tool_spec(t) for t in tools]
        req.tool_choice = tool_choice(
            kwargs.get("tool_choice"), [t.name for t in req.tools], required=bool(kwargs.get("tool_required"))
        )
    req.response_format = kwargs.get("response_format")
    extra = dict(defaults.get("extra_body") or {})
    extra.update(kwargs.get("extra_body") or {})
    effort = kwargs.get("reasoning_effort", defaults.get("reasoning_effort"))
    if effort is not None:
        extra["reasoning_effort"] = effort
    req.extra_body = extra
    context = call_context(kwargs.get("user"), kwargs.get("metadata"))
    opts = _options(kwargs.get("gateway_options")) or defaults.get("gateway_options")
    model = kwargs.get("model")
    return Call(req, str(model) if model else None, context, opts)


__all__ = ["CALL_OPTIONS", "SAMPLING", "Call", "build_call", "call_context", "check_call_options"]
