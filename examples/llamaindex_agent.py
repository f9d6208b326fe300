"""A tool-using LlamaIndex agent (FunctionAgent) on CloudflareLLM, with its cost.

With CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID set it talks to Cloudflare; without them it
starts the offline emulator on loopback and talks to that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.callbacks import CallbackManager

from cfgateway import load_settings
from llama_index_cfgateway import CloudflareCostHandler, CloudflareLLM

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def multiply(a: int, b: int) -> int:
    """Multiply two whole numbers."""
    return a * b


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


async def ask(agent: FunctionAgent, question: str) -> Any:
    return await agent.run(question)


def main(question: str = "What is 6 multiplied by 7? Use the multiply tool.", **settings: Any) -> dict[str, Any]:
    cost = CloudflareCostHandler()
    llm = CloudflareLLM(model=MODEL, temperature=0, callback_manager=CallbackManager([cost]), **settings)
    agent = FunctionAgent(tools=[multiply], llm=llm, system_prompt="You are a careful assistant. Use tools for math.")
    result = asyncio.run(ask(agent, question))
    for call in result.tool_calls:
        print(f"tool: {call.tool_name}({call.tool_kwargs}) -> {call.tool_output.content}")
    print(f"answer: {result}")
    print(f"cost: ${cost.total_cost} over {cost.successful_requests} model calls, {cost.total_tokens} tokens")
    return {"answer": str(result), "tool_calls": result.tool_calls, "cost": cost}


if __name__ == "__main__":
    with connection() as kw:
        main(**kw)
