"""``ChatCloudflare``: a LangChain chat model over cfgateway's core client.

Thin by design: conversion lives in :mod:`langchain_cfgateway._convert` and
:mod:`langchain_cfgateway._request` (pure functions shared by sync and async), sending in the
core client (pooled, retries, typed errors, usage and cost records).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr, model_validator

from langchain_cfgateway._connection import CloudflareConnection, refuse_unknown
from langchain_cfgateway._convert import StreamState, to_ai_message, to_chunk, to_messages
from langchain_cfgateway._convert import tool_choice as _normalise_choice
from langchain_cfgateway._errors import langchain_errors
from langchain_cfgateway._request import CONTEXT_KEY, SAMPLING, Call, build_call, check_call_options, format_tools
from langchain_cfgateway._structured import check_method, structured_runnable

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

DEFAULT_CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def _with_context(config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Carry the RunnableConfig's metadata (user id, tags) to ``_stream``, which LangChain calls
    without a run manager (the config given, else the one a parent runnable set)."""
    metadata = config.get("metadata") if config else None
    if metadata is None:
        parent = var_child_runnable_config.get()
        metadata = parent.get("metadata") if parent else None
    if metadata and CONTEXT_KEY not in kwargs:
        return {**kwargs, CONTEXT_KEY: dict(metadata)}
    return kwargs


class ChatCloudflare(CloudflareConnection, BaseChatModel):
    """Chat with Workers AI models and any provider behind Cloudflare AI Gateway.

    >>> from langchain_cfgateway import ChatCloudflare
    >>> llm = ChatCloudflare(model="@cf/meta/llama-3.3-70b-instruct-fp8-fast")  # doctest: +SKIP
    >>> llm.invoke("Hello").content                                             # doctest: +SKIP

    Model strings: ``@cf/...`` (Workers AI) or ``{provider}/{model}`` behind the gateway
    (``openai/gpt-4o-mini``). Credentials come from the arguments or ``CLOUDFLARE_*`` variables.
    Per-call options: the sampling fields, ``model``, ``stop``, ``tools``/``tool_choice``,
    ``response_format``, ``gateway_options``, ``user``, ``metadata``; anything else is refused.
    ``config={"metadata": {"user_id": ...}}`` sets the call's user (gateway metadata, cost records).

    ``response_metadata``: ``model_name`` (the model string that answered), ``provider``,
    ``provider_model``, ``finish_reason``, ``neurons``, ``cost`` (decimal string or ``None``),
    ``gateway`` (log id, cache status, step), ``attempts`` and ``cfgateway_records`` (the cost
    ledger's records as dicts, which :class:`CloudflareCostCallbackHandler` reads). On streams
    they, and ``usage_metadata``, are on the final chunk only.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=())

    model: str = Field(default=DEFAULT_CHAT_MODEL, validation_alias=AliasChoices("model", "model_name"))
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    extra_body: dict[str, Any] | None = None
    """Documented extra body fields sent as-is (e.g. ``{"lora": ...}``); an explicit opt-in."""
    streaming: bool = False
    """Whether ``invoke`` streams under the hood (LangChain convention)."""

    _ALIASES: ClassVar[dict[str, str]] = {"profile": "config_profile"}
    _images: dict[str, bool | None] = PrivateAttr(default_factory=dict)  # model -> takes images (catalog)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown(cls, data: Any) -> Any:
        return refuse_unknown(cls, data, aliases=cls._ALIASES)

    @model_validator(mode="after")
    def _catalog_profile(self) -> ChatCloudflare:
        """LangChain's model profile (capabilities) from cfgateway's catalog, unless given."""
        if self.profile is None:
            info = self._model_info()
            if info is not None:
                prof: dict[str, Any] = {"tool_calling": info.function_calling, "structured_output": info.json_mode}
                if info.context_window:
                    prof["max_input_tokens"] = info.context_window
                vision = getattr(info, "vision", None)
                if vision is not None:
                    prof["image_inputs"] = bool(vision)
                self.profile = prof  # type: ignore[assignment]
        return self

    # -- LangChain plumbing ------------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "cloudflare"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        # False on purpose: langchain_core.load only revives classes listed in its own mapping, so a
        # serialisable third-party model could be dumped but never loaded back.
        return False

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_cfgateway", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_token": "CLOUDFLARE_API_TOKEN", "gateway_token": "CLOUDFLARE_AI_GATEWAY_TOKEN"}

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "endpoint": self.endpoint}
        for name in (*SAMPLING, "stop", "reasoning_effort"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.fallbacks:
            params["fallbacks"] = list(self.fallbacks)
        return params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        model = kwargs.get("model")
        params = LangSmithParams(
            ls_provider="cloudflare",
            ls_model_name=model if isinstance(model, str) and model else self.model,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        ls_stop = stop or kwargs.get("stop") or self.stop
        if ls_stop:
            params["ls_stop"] = [ls_stop] if isinstance(ls_stop, str) else list(ls_stop)
        return params

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        kwargs.pop(CONTEXT_KEY, None)  # per-caller metadata: not a model parameter, not a cache key
        return super()._get_invocation_params(stop=stop, **kwargs)

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        kwargs.pop(CONTEXT_KEY, None)
        return super()._get_llm_string(stop=stop, **kwargs)

    # -- public entry points: only add the caller's config metadata -------------------------------
    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return super().invoke(input, config, stop=stop, **_with_context(config, kwargs))

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return await super().ainvoke(input, config, stop=stop, **_with_context(config, kwargs))

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        return super().stream(input, config, stop=stop, **_with_context(config, kwargs))

    def astream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        return super().astream(input, config, stop=stop, **_with_context(config, kwargs))

    # -- the four LangChain hooks ----------------------------------------------------------------
    def _defaults(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in SAMPLING}
        d.update(stop=self.stop, extra_body=self.extra_body, reasoning_effort=self.reasoning_effort,
                 gateway_options=self.gateway_options)
        return d

    def _call(
        self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any, kwargs: dict[str, Any]
    ) -> Call:
        model = kwargs.get("model") or self.model
        try:
            images = self._images[model]
        except KeyError:
            info = self._model_info(model)
            images = self._images[model] = getattr(info, "vision", None) if info is not None else None
        converted = to_messages(messages, images=images, model=model)
        run_meta = getattr(run_manager, "metadata", None) if run_manager is not None else None
        return build_call(converted, self._defaults(), stop, kwargs, run_meta)

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        c = self._call(messages, stop, run_manager, kwargs)
        with langchain_errors():
            resp = self._client().chat(c.request, model=c.model, context=c.context, gateway_options=c.gateway_options)
        return ChatResult(generations=[ChatGeneration(message=to_ai_message(resp))])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        c = self._call(messages, stop, run_manager, kwargs)
        client = self._client()
        with langchain_errors():
            resp = await client.achat(c.request, model=c.model, context=c.context, gateway_options=c.gateway_options)
        return ChatResult(generations=[ChatGeneration(message=to_ai_message(resp))])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        c = self._call(messages, stop, run_manager, kwargs)
        client = self._client()
        state = StreamState()
        with langchain_errors():
            for piece in client.stream(c.request, model=c.model, context=c.context,
                                       gateway_options=c.gateway_options):
                chunk = ChatGenerationChunk(message=to_chunk(piece, state))
                if run_manager is not None:  # LangChain's own stream() passes none and reports tokens itself
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        c = self._call(messages, stop, run_manager, kwargs)
        client = self._client()
        state = StreamState()
        with langchain_errors():
            async for piece in client.astream(c.request, model=c.model, context=c.context,
                                              gateway_options=c.gateway_options):
                chunk = ChatGenerationChunk(message=to_chunk(piece, state))
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    # -- tools and structured output -----------------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools. ``tool_choice``: ``"auto"``, ``"none"``, ``"any"``/``"required"``/``True``,
        a tool name, or an OpenAI/Anthropic dict. ``strict`` and ``parallel_tool_calls`` are
        accepted for compatibility and not sent (no equivalent on every Cloudflare route)."""
        formatted = format_tools(tools, strict=strict)
        names = [t["function"]["name"] for t in formatted]
        check_call_options(kwargs)
        choice = _normalise_choice(tool_choice, names)
        return super().bind(tools=formatted, tool_choice=choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Structured output via tool calling (default), the model's JSON schema mode, or JSON mode.
        A method the catalog says the model lacks raises, naming the methods that work."""
        if kwargs:
            raise ValueError(f"with_structured_output got unknown argument(s) {', '.join(sorted(kwargs))}")
        check_method(method, self.model, self._model_info())
        return structured_runnable(self, schema, method=method, include_raw=include_raw, strict=strict)


__all__ = ["ChatCloudflare"]
