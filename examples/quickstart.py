"""Quickstart: one chat answer and one embedding batch, with usage and cost.

With CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID set it talks to Cloudflare; without them it
starts the offline emulator on loopback and talks to that (this is what `make demo` does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from cfgateway import ChatRequest, Client, Message, load_settings

CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
EMBED_MODEL = "@cf/baai/bge-base-en-v1.5"


@contextlib.contextmanager
def connection() -> Iterator[dict[str, Any]]:
    """Settings for Cloudflare when credentials are set, else for a local emulator."""
    if load_settings().api_token:
        yield {}
        return
    from cfgateway.emulator.server import EmulatorServer

    with EmulatorServer() as server:
        print(f"(no CLOUDFLARE_API_TOKEN: using the offline emulator at {server.url})\n")
        yield {"account_id": "demo", "api_token": "demo-token", "base_url": server.base_url}


def main(**settings: Any) -> dict[str, Any]:
    with Client(CHAT_MODEL, **settings) as chat, Client(EMBED_MODEL, **settings) as embedder:
        answer = chat.chat(ChatRequest([Message("user", "Why is the sky blue? One sentence.")], max_tokens=64))
        u = answer.usage
        print(f"chat  · {answer.model}")
        print(f"  {answer.text}")
        cost = "unknown" if answer.cost is None else f"${answer.cost:.8f}"
        print(f"  usage: {u.input_tokens if u else '?'} in / {u.output_tokens if u else '?'} out"
              f" · neurons {u.neurons if u else '?'} · cost {cost}")
        docs = ["Workers AI runs models on Cloudflare's network.", "AI Gateway adds caching and fallbacks.",
                "Embeddings turn text into vectors."]
        emb = embedder.embed(docs)
        eu = emb.usage
        print(f"embed · {emb.model}")
        print(f"  {len(emb.vectors)} vectors × {len(emb.vectors[0])} dims"
              f" · usage {eu.input_tokens if eu else '?'} tokens · cost "
              f"{'unknown' if emb.cost is None else f'${emb.cost:.8f}'}")
        return {"answer": answer, "embeddings": emb}


if __name__ == "__main__":
    with connection() as kw:
        main(**kw)
