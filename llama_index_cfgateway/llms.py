"""``CloudflareLLM``: a LlamaIndex ``FunctionCallingLLM`` over cfgateway's core client.

Thin by design: conversion lives in :mod:`llama_index_cfgateway._convert` and
:mod:`llama_index_cfgateway._request` (pure functions shared by all eight methods), sending in
the core client (pooled, retries, typed errors, usage and cost records, fallback chains).

Every public method is native (no sync-over-async) and decorated once, so each call emits
exactly one LLM start/end event pair: ``complete`` and friends reach the client through the
undecorated ``_chat``/``_stream`` helpers, never through the decorated ``chat``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from pydantic import ConfigDict, Field, field_validator, model_validator

from llama_index_cfgateway._connection import CloudflareConnection, refuse_unknown
from llama_index_cfgateway._convert import (
    StreamState,
    keep_first_tool_call,
    to_chat_response,
    to_completion,
    to_messages,
    tool_selections,
    tool_spec,
)
from llama_index_cfgateway._convert import tool_choice as _tool_choice
from llama_index_cfgateway._request import SAMPLING, Call, build_call

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool


DEFAULT_CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


class CloudflareLLM(CloudflareConnection, FunctionCallingLLM):
    """Workers AI models and any provider behind Cloudflare AI Gateway, for LlamaIndex.

    >>> from llama_index.core import Settings
    >>> from llama_index_cfgateway import CloudflareLLM
    >>> Settings.llm = CloudflareLLM(model="@cf/meta/llama-3.3-70b-instruct-fp8-fast")  # doctest: +SKIP

    Model strings: ``@cf/...`` (Workers AI) or ``{provider}/{model}`` behind the gateway
    (``openai/gpt-4o-mini``). Credentials come from the arguments, ``CLOUDFLARE_*`` variables or a
    ``cfgateway.toml`` profile. Per-call options: the sampling fields, ``model``, ``stop``,
    ``tools``/``tool_choice``, ``response_format``, ``reasoning_effort``, ``extra_body``,
    ``gateway_options``, ``user`` and ``metadata``; anything else is refused. Engines and agents
    pass no per-call options: ``with instrument_tags({"user_id": "u1", "team": "x"}): ...`` (from
    ``llama_index.core.instrumentation.dispatcher``) sets the user and metadata of every call inside.

    Responses: ``raw["usage"]`` holds ``prompt_tokens``/``completion_tokens``/``total_tokens`` (what
    ``TokenCountingHandler`` reads); ``additional_kwargs`` holds ``model_name`` (the model string
    that answered), ``provider``, ``provider_model``, ``finish_reason``, the same token counts,
    ``cost`` (a decimal string, or ``None`` when the price is unknown), ``gateway`` (log id, cache
    status, ...), ``attempts`` and ``cfgateway_records`` (the cost ledger's records, which
    :class:`~llama_index_cfgateway.CloudflareCostHandler` reads). On streams they are on the last
    chunk only.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=())

    model: str = Field(default=DEFAULT_CHAT_MODEL, description="Model string (@cf/... or provider/model).")
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    extra_body: dict[str, Any] | None = Field(
        default=None, description="Documented extra body fields sent as-is (e.g. {'lora': ...}): an explicit opt-in."
    )
    context_window: int | None = Field(default=None, description="Overrides the catalog's context window.")
    is_function_calling_model: bool | None = Field(
        default=None, description="Overrides the catalog's function-calling flag."
    )

    _ALIASES: ClassVar[dict[str, str]] = {"model_name": "model", "api_key": "api_token"}

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown(cls, data: Any) -> Any:
        return refuse_unknown(cls, data, cls._ALIASES)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @classmethod
    def class_name(cls) -> str:
        return "CloudflareLLM"

    def _model_string(self) -> str:
        return self.model

    @property
    def metadata(self) -> LLMMetadata:
        info = self._model_info()
        window = self.context_window or (info.context_window if info and info.context_window else None)
        calling = self.is_function_calling_model
        if calling is None:
            calling = bool(info and info.function_calling)
        return LLMMetadata(
            context_window=window or DEFAULT_CONTEXT_WINDOW,
            num_output=self.max_tokens or DEFAULT_NUM_OUTPUTS,
            is_chat_model=True,
            is_function_calling_model=calling,
            model_name=self.model,
        )

    def to_payload(self) -> dict[str, Any]:
        return {**super().to_payload(), **self._safe_payload()}

    # -- one call -------------------------------------------------------------------------------
    def _defaults(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in SAMPLING}
        d.update(stop=self.stop, extra_body=self.extra_body, reasoning_effort=self.reasoning_effort,
                 gateway_options=self.gateway_options)
        return d

    def _call(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> Call:
        return build_call(to_messages(messages), self._defaults(), kwargs)

    def _chat(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponse:
        c = self._call(messages, kwargs)
        return to_chat_response(self._client().chat(c.request, **c.kwargs()))

    async def _achat(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponse:
        c = self._call(messages, kwargs)
        return to_chat_response(await self._client().achat(c.request, **c.kwargs()))

    def _stream(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponseGen:
        c = self._call(messages, kwargs)  # bad input raises here, before the stream starts
        client = self._client()

        def gen() -> Generator[ChatResponse, None, None]:
            state = StreamState()
            for chunk in client.stream(c.request, **c.kwargs()):
                yield state.feed(chunk)

        return gen()

    def _astream(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponseAsyncGen:
        c = self._call(messages, kwargs)
        client = self._client()

        async def gen() -> AsyncGenerator[ChatResponse, None]:
            state = StreamState()
            async for chunk in client.astream(c.request, **c.kwargs()):
                yield state.feed(chunk)

        return gen()

    def _prompt_messages(self, prompt: str, formatted: bool) -> list[ChatMessage]:
        if not formatted and self.completion_to_prompt is not None:
            prompt = self.completion_to_prompt(prompt)
        return [ChatMessage(role=MessageRole.USER, content=prompt)]

    # -- chat -----------------------------------------------------------------------------------
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._achat(messages, kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream(messages, kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return self._astream(messages, kwargs)

    # -- completion (a user message; events are completion events, one pair per call) -----------
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return to_completion(self._chat(self._prompt_messages(prompt, formatted), kwargs))

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return to_completion(await self._achat(self._prompt_messages(prompt, formatted), kwargs))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        stream = self._stream(self._prompt_messages(prompt, formatted), kwargs)
        return (to_completion(r) for r in stream)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        stream = self._astream(self._prompt_messages(prompt, formatted), kwargs)

        async def gen() -> AsyncGenerator[CompletionResponse, None]:
            async for r in stream:
                yield to_completion(r)

        return gen()

    # -- function calling -----------------------------------------------------------------------
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
        elif user_msg is not None:
            messages.append(user_msg)
        out: dict[str, Any] = {"messages": messages, **kwargs}
        specs = [tool_spec(t) for t in tools]
        if specs:
            out["tools"] = specs
            choice = _tool_choice(tool_choice, [s.name for s in specs], required=tool_required)
            if choice is not None:
                out["tool_choice"] = choice
        return out

    def _validate_chat_with_tools_response(
        self, response: ChatResponse, tools: Sequence[BaseTool], allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        return response if allow_parallel_tool_calls else keep_first_tool_call(response)

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        return tool_selections(response, error_on_no_tool_call=error_on_no_tool_call)


__all__ = ["DEFAULT_CHAT_MODEL", "CloudflareLLM"]
