"""The honest floors for the adapter benches: the least a LangChain chat model or a LlamaIndex LLM can cost.

Each floor is a minimal model of its framework whose hooks make the same raw httpx call as cfgateway does
(``POST {base}/accounts/{account}/ai/run/{model}``, the same JSON body, the same pooled keep-alive
connection), decode the answer with ``json.loads`` and hand back the framework's own message types, with
nothing else: no validation, no usage, no cost, no retries. What the framework itself costs on top of
HTTP is in the floor; the ratio "ours / floor" is what cfgateway adds. Stream floors read the body to its
end (so the connection is reused) and parse the SSE lines by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
TOKEN = "test-token"
ACCOUNT = "acct"


class RawCall:
    """The HTTP part every floor shares: one pooled httpx client, one URL, one body shape."""

    def __init__(self, base: str, model: str = CHAT_MODEL, max_tokens: int = 16) -> None:
        self.http = httpx.Client(timeout=60)
        self.url = f"{base}/accounts/{ACCOUNT}/ai/run/{model}"
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        self.max_tokens = max_tokens

    def body(self, messages: list[dict[str, str]], stream: bool) -> bytes:
        body: dict[str, Any] = {"messages": messages, "max_tokens": self.max_tokens}
        if stream:
            body["stream"] = True
        return json.dumps(body).encode()

    def post(self, messages: list[dict[str, str]]) -> str:
        r = self.http.post(self.url, content=self.body(messages, False), headers=self.headers)
        return str(json.loads(r.content)["result"]["response"])

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        with self.http.stream("POST", self.url, content=self.body(messages, True), headers=self.headers) as r:
            for line in r.iter_lines():  # read to the end: the connection goes back to the pool
                if line.startswith("data: ") and line != "data: [DONE]":
                    text = json.loads(line[6:]).get("response")
                    if text:
                        yield text


def langchain_floor(base: str) -> Any:
    """A minimal LangChain ``BaseChatModel`` over :class:`RawCall` (``_generate`` and ``_stream`` only)."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    raw = RawCall(base)
    roles = {"human": "user", "ai": "assistant", "system": "system"}

    def convert(messages: list[BaseMessage]) -> list[dict[str, str]]:
        return [{"role": roles.get(m.type, m.type), "content": str(m.content)} for m in messages]

    class FloorChat(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "floor"

        def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                      **kwargs: Any) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=raw.post(convert(messages))))])

        def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                    **kwargs: Any) -> Iterator[ChatGenerationChunk]:
            for text in raw.stream(convert(messages)):
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))

    return FloorChat()


def llama_index_floor(base: str) -> Any:
    """A minimal LlamaIndex ``CustomLLM`` over :class:`RawCall` (``complete`` and ``stream_complete``)."""
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback

    raw = RawCall(base)

    class FloorLLM(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(is_chat_model=False, model_name=CHAT_MODEL)

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text=raw.post([{"role": "user", "content": prompt}]))

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            def gen() -> Iterator[CompletionResponse]:
                text = ""
                for delta in raw.stream([{"role": "user", "content": prompt}]):
                    text += delta
                    yield CompletionResponse(text=text, delta=delta)

            return gen()

    return FloorLLM()


__all__ = ["ACCOUNT", "CHAT_MODEL", "TOKEN", "RawCall", "langchain_floor", "llama_index_floor"]
