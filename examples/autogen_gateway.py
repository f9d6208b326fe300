"""AutoGen through Cloudflare AI Gateway, no proxy: an AssistantAgent with a Python tool on `openai/gpt-4o-mini`,
the provider key stored in the gateway (BYOK), and per-run `cf-aig-metadata` (who asked, for what).

AutoGen's model client takes no per-call headers, so the metadata rides on the HTTP client: an httpx request
hook adds the `cf-aig-metadata` header from a context variable the app sets around each run.

With CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_AI_GATEWAY_ID and CLOUDFLARE_AI_GATEWAY_TOKEN set it
talks to Cloudflare; without them it starts the offline emulator on loopback and talks to that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import httpx

from cfgateway import autogen_model_info, load_settings
from cfgateway.openai_sdk import openai_target

MODEL = "openai/gpt-4o-mini"
RUN_METADATA: ContextVar[dict[str, str] | None] = ContextVar("run_metadata", default=None)


async def add_metadata(request: httpx.Request) -> None:
    """httpx request hook: this run's metadata as the gateway's `cf-aig-metadata` header (at most 5 entries)."""
    meta = RUN_METADATA.get()
    if meta:
        request.headers["cf-aig-metadata"] = json.dumps(dict(list(meta.items())[:5]))


@contextlib.contextmanager
def connection() -> Iterator[dict[str, Any]]:
    """Settings for Cloudflare when credentials are set, else for a local emulator."""
    if load_settings().api_token:
        yield {}
        return
    from cfgateway.emulator.server import EmulatorServer

    with EmulatorServer() as server:
        print(f"(no CLOUDFLARE_API_TOKEN: using the offline emulator at {server.url})\n")
        yield server.client_kwargs(gateway=True)


async def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny and 21 C in {city}"


async def run(task: str, user: str, **settings: Any) -> Any:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    base_url, api_key, headers = openai_target(load_settings(**settings), MODEL)
    http_client = httpx.AsyncClient(event_hooks={"request": [add_metadata]}, timeout=60)
    model_client = OpenAIChatCompletionClient(  # type: ignore[call-arg]  # http_client goes to AsyncOpenAI
        model=MODEL, base_url=base_url, api_key=api_key, default_headers=headers, http_client=http_client,
        model_info=autogen_model_info(MODEL),  # type: ignore[arg-type]
    )
    agent = AssistantAgent("assistant", model_client=model_client, tools=[get_weather], reflect_on_tool_use=True)
    token = RUN_METADATA.set({"user": user, "app": "autogen-example"})
    try:
        result = await agent.run(task=task)
    finally:
        RUN_METADATA.reset(token)
        await model_client.close()
        await http_client.aclose()
    return result


def main(**settings: Any) -> Any:
    result = asyncio.run(run("What is the weather in Paris?", user="u-42", **settings))
    for message in result.messages:
        print(f"{type(message).__name__:<24} {str(getattr(message, 'content', ''))[:100]}")
    return result


if __name__ == "__main__":
    with connection() as kw:
        main(**kw)
