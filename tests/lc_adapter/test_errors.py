"""Errors from the LangChain classes are cfgateway's and langchain-core's ModelError family at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from cfgateway import errors as cf
from cfgateway.emulator.config import Fault
from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings
from langchain_cfgateway._errors import as_langchain

CHAT = "@cf/meta/llama-3.1-8b-instruct"


@pytest.mark.parametrize(("exc", "family"), [
    (cf.CapacityError("busy", status=429, code=3040), ModelRateLimitError),
    (cf.ContextLengthExceededError("too long", status=400), ContextOverflowError),
    (cf.AuthenticationError("no", status=401, code=10000), ModelAuthenticationError),
    (cf.BadRequestError("bad", status=400), ModelInvalidRequestError),
    (cf.InvalidInputError("empty"), ModelInvalidRequestError),
    (cf.TimeoutError("slow"), ModelTimeoutError),
    (cf.IncompleteResponseError("cut"), ModelConnectionError),
    (cf.ServerError("down", status=500), ModelAPIError),
])
def test_each_error_joins_its_langchain_family(exc: Exception, family: type) -> None:
    cls, message = type(exc), str(exc)
    out = as_langchain(exc)
    assert out is exc and isinstance(out, cls) and isinstance(out, family) and isinstance(out, ModelError)
    assert str(out) == message and type(out).__name__ == cls.__name__


def test_timeout_is_also_the_builtin() -> None:
    err = as_langchain(cf.TimeoutError("slow"))
    assert isinstance(err, TimeoutError) and isinstance(err, ModelTimeoutError) and err.is_retryable  # type: ignore[attr-defined]


def test_chat_and_embeddings_raise_both_kinds(emu: Any, conn: Any) -> None:
    emu.state.add_fault(Fault("*", "error", status=429, code=3040))
    llm = ChatCloudflare(model=CHAT, max_retries=0, **conn())
    for call in (lambda: llm.invoke("hi"), lambda: list(llm.stream("hi")),
                 lambda: asyncio.run(llm.ainvoke("hi"))):
        with pytest.raises(ModelRateLimitError) as got:
            call()
        assert isinstance(got.value, cf.CapacityError) and got.value.code == 3040
    emb = CloudflareEmbeddings(model="@cf/baai/bge-base-en-v1.5", max_retries=0, **conn())
    with pytest.raises(ModelRateLimitError):
        emb.embed_documents(["a"])
    with pytest.raises(cf.RateLimitError):
        asyncio.run(emb.aembed_query("a"))
