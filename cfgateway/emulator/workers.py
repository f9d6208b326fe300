"""Workers AI handlers: native ``/ai/run/{model}``, OpenAI-compatible ``/ai/v1``, ``/ai/models/search``."""

from __future__ import annotations

import time
import uuid
from typing import Any

from cfgateway.costs.catalog import ModelInfo
from cfgateway.emulator.answers import Answer, ChatInput, answer, count_tokens, prompt_tokens
from cfgateway.emulator.context import Ctx, envelope
from cfgateway.emulator.embeddings import VECTORS, json_with_vectors, openai_list_json
from cfgateway.emulator.formats import (
    chat_completion,
    embed_usage,
    legacy_frames,
    legacy_result,
    native_embedding,
    openai_chunks,
    openai_frames,
    workers_usage,
)
from cfgateway.emulator.inputs import BadInput, embed_inputs, from_openai, from_workers
from cfgateway.emulator.reply import (
    Reply,
    ai_error,
    bad_input,
    context_error,
    family_bad_input,
    model_not_found,
    stream_reply,
)

TOOL_PREFIX = "chatcmpl-tool-"


def workers_model(ctx: Ctx, model: str) -> ModelInfo | None:
    info = ctx.catalog.get(model)
    return info if info is not None and info.provider == "workers-ai" else None


def no_such_model(model: str, family: str = "workers") -> Reply:
    if family == "openai":
        return model_not_found(model)
    return ai_error(400, 5007, f"No such model {model} or task", family)


def check_context(inp: ChatInput, info: ModelInfo | None, family: str) -> Reply | None:
    window = info.context_window if info else None
    if window:
        n = prompt_tokens(inp)
        if n > window:
            return context_error(family, n, window)
    return None


# -- native /ai/run ------------------------------------------------------------------------------
def run_native(ctx: Ctx, model: str) -> Reply:
    info = workers_model(ctx, model)
    if info is None:
        return no_such_model(model)
    body = ctx.body
    if not isinstance(body, dict):
        return bad_input(ctx.body_problem("Error: request body must be a JSON object"))  # guess: exact text unknown
    if info.kind == "embed":
        return embed_native(info, body)
    legacy = info.shape == "legacy"
    try:
        inp = from_workers(body, legacy=legacy)
    except BadInput as exc:
        return bad_input(str(exc))
    if inp.json_mode and inp.stream:  # guess: message text; docs only say JSON mode cannot stream
        return bad_input("JSON mode does not support streaming (set stream to false)")
    if inp.stream and not info.native_stream:
        # docs/wire-notes.md §1.4: gpt-oss / kimi answer stream:true on /ai/run with JSON, result empty.
        # guess: the exact empty result; an empty object here.
        return Reply(body=envelope({}))
    err = check_context(inp, info, "workers")
    if err is not None:
        return err
    ans = answer(inp)
    usage = workers_usage(ans, info)
    if legacy:
        if inp.stream:
            return stream_reply(legacy_frames(ans, usage), "workers")
        return Reply(body=envelope(legacy_result(ans, usage)))
    cid = uuid.uuid4().hex
    if inp.stream:
        chunks = openai_chunks(ans, model, usage, cid=cid, tool_prefix=TOOL_PREFIX, pad=True)
        return stream_reply(openai_frames(chunks, native_usage=usage), "workers")
    return Reply(body=envelope(chat_completion(ans, model, usage, cid=cid, tool_prefix=TOOL_PREFIX)))


def embed_problem(texts: list[str], field: str, max_batch: int | None, max_tokens: int | None,
                  counts: list[int] | None = None) -> str | None:
    """Why an embedding batch is invalid (messages are guesses modelled on JSON-schema errors); ``counts``:
    the texts' token counts when the caller has them (else counted here)."""
    if not texts:
        return f"Error: /{field} must NOT have fewer than 1 items (minItems)"
    if max_batch is not None and len(texts) > max_batch:
        return f"Error: /{field} must NOT have more than {max_batch} items (maxItems: {max_batch}, got {len(texts)})"
    for i, text in enumerate(texts):
        if not text:
            return f"Error: /{field}/{i} must NOT have fewer than 1 characters (minLength)"
        if max_tokens is not None:
            n = counts[i] if counts is not None else count_tokens(text)
            if n > max_tokens:
                return (
                    f"input is too long: /{field}/{i} has {n} tokens, "
                    f"the model accepts at most {max_tokens} (max_input_tokens)"
                )
    return None


def _native_texts(info: ModelInfo, body: dict[str, Any]) -> tuple[list[str], str]:
    if "qwen3-embedding" in info.model:
        texts: list[str] = []
        for field in ("queries", "documents", "text"):  # guess: queries first, then documents
            if body.get(field) is not None:
                texts += embed_inputs(body[field], field)
        if not texts and not any(f in body for f in ("queries", "documents", "text")):
            raise BadInput("Error: required properties at '/' are 'text', 'documents' or 'queries'")
        return texts, "documents" if "documents" in body else "text"
    if "text" not in body:
        raise BadInput("Error: required properties at '/' are 'text'")
    return embed_inputs(body["text"], "text"), "text"


def embed_native(info: ModelInfo, body: dict[str, Any], family: str = "workers") -> Reply:
    try:
        texts, field = _native_texts(info, body)
    except BadInput as exc:
        return bad_input(str(exc), family)
    counts = [count_tokens(t) if isinstance(t, str) else 0 for t in texts]  # once: the check and the usage
    problem = embed_problem(texts, field, info.max_batch, info.max_input_tokens, counts)
    if problem:
        return bad_input(problem, family)
    pooling: str | None = None
    seed = info.model
    if info.pooling:
        pooling = body.get("pooling", "mean")
        if pooling not in ("mean", "cls"):
            return bad_input("Error: /pooling must be equal to one of the allowed values 'mean', 'cls'", family)
        seed = f"{info.model}:{pooling}"
    dims = info.dims or 768
    usage = embed_usage(sum(counts), info)
    body = envelope(native_embedding(VECTORS, dims, pooling, usage, rows=len(texts)))
    return Reply(raw=json_with_vectors(body, texts, dims, seed), family=family)


# -- OpenAI-compatible /ai/v1 ---------------------------------------------------------------------------
def chat_v1(ctx: Ctx, *, family: str = "cfv1", model: str | None = None, label: str | None = None) -> Reply:
    """``/ai/v1/chat/completions`` (also the gateway's ``workers-ai/v1`` and ``compat`` workers-ai models)."""
    body = ctx.body
    if not isinstance(body, dict):
        return family_bad_input(family, ctx.body_problem("request body must be a JSON object"))
    model = model or body.get("model")
    if not isinstance(model, str) or not model:
        return family_bad_input(family, "Error: required properties at '/' are 'model'")
    info = workers_model(ctx, model)
    if info is None:
        return no_such_model(label or model, family)
    if info.kind != "chat":
        return family_bad_input(family, f"Error: {model} is not a text-generation model")
    try:
        inp = from_openai(body)
    except BadInput as exc:
        return family_bad_input(family, str(exc))
    err = check_context(inp, info, family)
    if err is not None:
        return err
    ans = answer(inp)
    return _v1_reply(ans, inp, info, label or model, family)


def _v1_reply(ans: Answer, inp: ChatInput, info: ModelInfo, model: str, family: str) -> Reply:
    usage = workers_usage(ans, info)
    if inp.stream:  # Workers AI always sends the usage chunk
        chunks = openai_chunks(ans, model, usage, cid=f"id-{int(time.time() * 1000)}", tool_prefix=TOOL_PREFIX)
        return stream_reply(openai_frames(chunks), family)
    body = chat_completion(ans, model, usage, cid=f"id-{int(time.time() * 1000)}", tool_prefix=TOOL_PREFIX)
    return Reply(body=body, family=family)


def embed_v1(ctx: Ctx, *, family: str = "cfv1") -> Reply:
    """``/ai/v1/embeddings``: OpenAI body, bare OpenAI list, no ``usage`` key (as recorded live)."""
    body = ctx.body
    if not isinstance(body, dict):
        return family_bad_input(family, ctx.body_problem("request body must be a JSON object"))
    model = body.get("model")
    if not isinstance(model, str):
        return family_bad_input(family, "Error: required properties at '/' are 'model'")
    info = workers_model(ctx, model)
    if info is None:
        return no_such_model(model, family)
    if info.kind != "embed":
        return family_bad_input(family, f"Error: {model} is not an embedding model")
    try:
        texts = embed_inputs(body.get("input"), "input")
    except BadInput as exc:
        return family_bad_input(family, str(exc))
    problem = embed_problem(texts, "input", info.max_batch, info.max_input_tokens)
    if problem:
        return family_bad_input(family, problem)
    seed = info.model + (":mean" if info.pooling else "")
    return Reply(raw=openai_list_json(texts, info.dims or 768, seed, model, None), family=family)


# -- /ai/models/search --------------------------------------------------------------------------------------
_TASKS = {
    "chat": {
        "id": "c329a1f9-323d-4e91-b2aa-582dd4188d34",
        "name": "Text Generation",
        "description": "Family of generative text models, such as large language models (LLM).",
    },
    "embed": {
        "id": "0137cdcf-162a-4108-94f2-1ca59e8c65ee",
        "name": "Text Embeddings",
        "description": "Feature extraction models transform raw data into numerical features.",
    },
}  # guess: task ids are arbitrary constants here


def _catalog_row(info: ModelInfo) -> dict[str, Any]:
    props: list[dict[str, Any]] = []
    if info.context_window:
        props.append({"property_id": "context_window", "value": str(info.context_window)})
    if info.function_calling:
        props.append({"property_id": "function_calling", "value": "true"})
    if info.max_input_tokens:
        props.append({"property_id": "max_input_tokens", "value": str(info.max_input_tokens)})
    if info.dims:
        props.append({"property_id": "output_dimensions", "value": str(info.dims)})
    prices = []
    if info.input_price is not None:
        prices.append({"unit": "per M input tokens", "price": float(info.input_price), "currency": "USD"})
    if info.output_price is not None and info.kind == "chat":
        prices.append({"unit": "per M output tokens", "price": float(info.output_price), "currency": "USD"})
    if prices:
        props.append({"property_id": "price", "value": prices})
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, info.model)),
        "name": info.model,
        "description": f"{info.model} (emulated catalog row)",
        "task": _TASKS.get(info.kind, _TASKS["chat"]),
        "created_at": "2025-01-01 00:00:00.000",
        "tags": [],
        "properties": props,
    }


def models_search(ctx: Ctx) -> Reply:
    """Catalog rows (Workers AI models) in the ``/ai/models/search`` shape; ``search``/``task``/paging honoured."""
    search = ctx.query.get("search", "").lower()
    task = ctx.query.get("task", "").lower()
    rows = [
        _catalog_row(info)
        for info in ctx.catalog.models.values()
        if info.provider == "workers-ai"
        and search in info.model.lower()
        and (not task or task in _TASKS.get(info.kind, _TASKS["chat"])["name"].lower())
    ]
    try:
        per_page = max(1, int(ctx.query.get("per_page", "100")))
        page = max(1, int(ctx.query.get("page", "1")))
    except ValueError:
        return ai_error(400, 5006, "AiError: Bad input: page and per_page must be integers")
    chunk = rows[(page - 1) * per_page : page * per_page]
    body = envelope(chunk)
    body["result_info"] = {"count": len(chunk), "page": page, "per_page": per_page, "total_count": len(rows)}
    return Reply(body=body)


__all__ = ["chat_v1", "embed_native", "embed_problem", "embed_v1", "models_search", "run_native", "workers_model"]
