"""Providers behind the gateway: OpenAI-wire chat/embeddings, Anthropic Messages, ``compat``, and
the dispatch from ``{provider}/{path}`` to a handler (shared by provider-native paths and universal steps)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cfgateway.costs.catalog import ModelInfo
from cfgateway.emulator.answers import answer, count_tokens
from cfgateway.emulator.context import Ctx
from cfgateway.emulator.embeddings import embed_many, to_base64
from cfgateway.emulator.formats import (
    anthropic_frames,
    anthropic_message,
    chat_completion,
    new_id,
    openai_chunks,
    openai_embedding,
    openai_frames,
    provider_usage,
)
from cfgateway.emulator.inputs import BadInput, embed_inputs, from_anthropic, from_openai
from cfgateway.emulator.reply import (
    Reply,
    anthropic_error,
    cf_error,
    gateway_error,
    model_not_found,
    openai_error,
    stream_reply,
)
from cfgateway.emulator.workers import chat_v1, check_context, embed_v1, run_native

OPENAI_WIRE = frozenset({"openai", "groq", "deepseek", "mistral", "openrouter", "cerebras", "perplexity-ai", "grok"})
OTHER_KNOWN = frozenset(
    {
        "workers-ai",
        "anthropic",
        "google-ai-studio",
        "google-vertex-ai",
        "aws-bedrock",
        "azure-openai",
        "cohere",
        "perplexity",
        "xai",
        "huggingface",
        "replicate",
        "baseten",
        "cartesia",
        "deepgram",
        "elevenlabs",
        "fal",
        "ideogram",
        "parallel",
        "saladcloud",
        "dynamic",
    }
)
STORED_KEYS_ONLY = frozenset({"aws-bedrock", "google-vertex-ai"})
COMPAT_ALIASES = {"perplexity": "perplexity-ai", "xai": "grok"}
DEFAULT_EMBED_DIMS = 1536

Handler = Callable[[Ctx], Reply]


def is_openai_wire(provider: str) -> bool:
    return provider in OPENAI_WIRE or provider.startswith("custom-")


def provider_model(ctx: Ctx, provider: str, model: str, kind: str) -> tuple[ModelInfo | None, bool]:
    """(catalog row, known). Unknown models are refused only when strict and the catalog lists
    models of that provider and kind (guess: providers with no catalog rows accept any model)."""
    info = ctx.catalog.get(f"{provider}/{model}")
    if info is not None:
        return info, True
    strict = ctx.state.config.strict_models and (provider, kind) in ctx.state.provider_kinds
    return None, not strict


def _body_model(ctx: Ctx, family: str) -> tuple[dict[str, Any], str] | Reply:
    body = ctx.body
    if not isinstance(body, dict):
        if family == "anthropic":
            return anthropic_error(400, ctx.body_problem("request body must be a JSON object"))
        return openai_error(400, "We could not parse the JSON body of your request.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        if family == "anthropic":
            return anthropic_error(400, "model: Field required")
        return openai_error(400, "you must provide a model parameter")
    return body, model


def openai_chat(ctx: Ctx, provider: str, model: str | None = None) -> Reply:
    """``chat/completions`` of an OpenAI-wire provider (or ``compat``, already split)."""
    got = _body_model(ctx, "openai")
    if isinstance(got, Reply):
        return got
    body, body_model = got
    model = model or body_model
    info, known = provider_model(ctx, provider, model, "chat")
    if not known:
        return model_not_found(model)
    if info is not None and info.kind != "chat":
        return openai_error(
            404, f"`{model}` is not a chat model and not supported on chat/completions", code="model_not_found"
        )
    try:
        inp = from_openai(body)
    except BadInput as exc:
        return openai_error(400, str(exc))
    err = check_context(inp, info, "openai")
    if err is not None:
        return err
    ans = answer(inp)
    usage = provider_usage(ans, provider)
    cid = new_id("chatcmpl-")
    if inp.stream:  # third-party providers send usage only when asked
        chunks = openai_chunks(ans, model, usage if inp.include_usage else None, cid=cid)
        return stream_reply(openai_frames(chunks), "openai")
    return Reply(body=chat_completion(ans, model, usage, cid=cid), family="openai")


def openai_embeddings(ctx: Ctx, provider: str, model: str | None = None) -> Reply:
    got = _body_model(ctx, "openai")
    if isinstance(got, Reply):
        return got
    body, body_model = got
    model = model or body_model
    info, known = provider_model(ctx, provider, model, "embed")
    if not known:
        return model_not_found(model)
    if info is not None and info.kind != "embed":
        return openai_error(404, f"`{model}` is not an embedding model", code="model_not_found")
    try:
        texts = embed_inputs(body.get("input"), "input")
    except BadInput:
        return openai_error(
            400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
        )
    max_batch = info.max_batch if info and info.max_batch else 2048
    if not texts or len(texts) > max_batch or any(not t for t in texts):
        msg = f"'$.input' is invalid: expected 1 to {max_batch} non-empty strings (got {len(texts)})"
        return openai_error(400, msg)
    limit = info.max_input_tokens if info else None
    longest = max(count_tokens(t) for t in texts)
    if limit and longest > limit:
        msg = f"This model's maximum context length is {limit} tokens, however you requested {longest} tokens."
        return openai_error(400, msg, code="context_length_exceeded")
    dims = (info.dims if info else None) or DEFAULT_EMBED_DIMS
    wanted = body.get("dimensions")
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        if not 0 < wanted <= dims:
            return openai_error(400, f"dimensions must be between 1 and {dims}")
        dims = wanted
    vectors: list[Any] = embed_many(texts, dims, f"{provider}/{model}")
    if body.get("encoding_format") == "base64":
        vectors = [to_base64(v) for v in vectors]
    tokens = sum(count_tokens(t) for t in texts)
    return Reply(
        body=openai_embedding(vectors, model, {"prompt_tokens": tokens, "total_tokens": tokens}), family="openai"
    )


def anthropic_messages(ctx: Ctx) -> Reply:
    got = _body_model(ctx, "anthropic")
    if isinstance(got, Reply):
        return got
    body, model = got
    info, known = provider_model(ctx, "anthropic", model, "chat")
    if not known:
        return anthropic_error(404, f"model: {model}")
    try:
        inp = from_anthropic(body)
    except BadInput as exc:
        return anthropic_error(400, str(exc))
    err = check_context(inp, info, "anthropic")
    if err is not None:
        return err
    ans = answer(inp)
    mid = new_id("msg_")
    if inp.stream:
        return stream_reply(anthropic_frames(ans, model, mid), "anthropic")
    return Reply(body=anthropic_message(ans, model, mid), family="anthropic")


def _dynamic_target(ctx: Ctx, name: str) -> str | Reply:
    """The model a gateway dynamic route sends to (guess: the error bodies for a missing route / no BYOK)."""
    gw = ctx.gateway
    if gw is None or not gw.has_stored_keys:
        return gateway_error(400, 2040, "Dynamic routes need provider keys stored in the gateway (BYOK)")
    target = gw.dynamic_routes.get(name)
    if target is None:
        return gateway_error(400, 2008, f"Invalid provider: no dynamic route named {name!r}")
    return target


def compat(ctx: Ctx, kind: str) -> Reply:
    """``compat/chat/completions`` (and ``compat/embeddings``) with ``model: "{provider}/{model}"``; the answer
    is OpenAI-shaped whatever the provider, with ``cf-aig-provider`` / ``cf-aig-model`` saying who answered."""
    got = _body_model(ctx, "openai")
    if isinstance(got, Reply):
        return got
    _, full = got
    if full.startswith("@") or "/" not in full:
        return gateway_error(400, 2005, "Failed to get response from provider")  # guess: HTTP status varies
    provider, model = full.split("/", 1)
    if provider == "dynamic":
        target = _dynamic_target(ctx, model)
        if isinstance(target, Reply):
            return target
        if target.startswith("dynamic/"):
            return gateway_error(400, 2008, "Invalid provider: a dynamic route may not name another")
        provider, model = target.split("/", 1)
    provider = COMPAT_ALIASES.get(provider, provider)
    if provider not in OPENAI_WIRE and provider not in OTHER_KNOWN and not provider.startswith("custom-"):
        return gateway_error(400, 2008, "Invalid provider")
    if provider in STORED_KEYS_ONLY and (ctx.gateway is None or not ctx.gateway.has_stored_keys):
        # guess: the gateway signs these requests itself, so without stored keys it cannot send them
        return openai_error(401, f"{provider} needs its credentials stored in the gateway (BYOK)")
    reply = _compat_answer(ctx, kind, provider, model)
    if reply.ok:
        reply.headers["cf-aig-provider"] = provider
        reply.headers["cf-aig-model"] = model
    return reply


def _compat_answer(ctx: Ctx, kind: str, provider: str, model: str) -> Reply:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if provider == "workers-ai":
        if kind == "embed":
            return embed_v1(ctx.sub(body={**body, "model": model}), family="openai")
        return chat_v1(ctx, family="openai", model=model, label=model)
    if kind == "embed":
        return openai_embeddings(ctx, provider, model)
    return openai_chat(ctx, provider, model)


def provider_key_error(ctx: Ctx, provider: str) -> Reply | None:
    """A gateway without stored keys and no provider key -> the provider's own 401."""
    if ctx.gateway is None or ctx.gateway.has_stored_keys or ctx.has_provider_key():
        return None
    if provider == "anthropic":
        return anthropic_error(401, "x-api-key header is required")
    return openai_error(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    )


def _workers_auth(ctx: Ctx) -> Reply | None:
    auth = ctx.headers.get("authorization", "")
    token = ctx.state.config.api_token
    if not auth:
        if ctx.gateway is not None and ctx.gateway.auth_token is None:
            return cf_error(401, 10000, "Authentication error")  # guess: missing CF token through the gateway
        return None
    if not auth.startswith("Bearer ") or not auth[7:].strip() or (token is not None and auth[7:] != token):
        return cf_error(401, 10000, "Authentication error")
    return None


def _workers_handler(rest: str) -> Handler:
    if rest == "v1/chat/completions":
        return chat_v1
    if rest == "v1/embeddings":
        return embed_v1
    model = rest[4:] if rest.startswith("run/") else rest
    return lambda c: run_native(c, model)


def resolve_provider(ctx: Ctx, provider: str, rest: str) -> Handler | Reply:
    """The handler for ``{provider}/{rest}`` behind the gateway, or an error reply (routing / keys)."""
    rest = rest.strip("/")
    if provider == "workers-ai":
        return _workers_auth(ctx) or _workers_handler(rest)
    if provider == "compat":
        if rest.endswith("chat/completions"):
            return provider_key_error(ctx, "openai") or (lambda c: compat(c, "chat"))
        if rest.endswith("embeddings"):
            return provider_key_error(ctx, "openai") or (lambda c: compat(c, "embed"))
        return openai_error(404, f"Invalid URL (POST /compat/{rest})")
    if is_openai_wire(provider):
        if rest.endswith("chat/completions"):
            return provider_key_error(ctx, provider) or (lambda c: openai_chat(c, provider))
        if rest.endswith("embeddings"):
            return provider_key_error(ctx, provider) or (lambda c: openai_embeddings(c, provider))
        return openai_error(404, f"Invalid URL (POST /{rest})")
    if provider == "anthropic":
        if rest == "v1/messages":
            return provider_key_error(ctx, provider) or anthropic_messages
        return anthropic_error(404, f"Not found: /{rest}")
    if provider in OTHER_KNOWN:
        return gateway_error(400, 2008, f"Invalid provider: {provider} is not emulated")
    return gateway_error(400, 2008, "Invalid provider")


__all__ = ["OPENAI_WIRE", "anthropic_messages", "compat", "openai_chat", "openai_embeddings", "resolve_provider"]
