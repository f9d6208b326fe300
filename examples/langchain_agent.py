"""A tool-using LangChain agent (langchain.agents.create_agent) on ChatCloudflare, with its cost.

With CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID set it talks to Cloudflare; without them it
starts the offline emulator on loopback and talks to that.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from langchain.agents import create_agent
from langchain_core.tools import tool

from cfgateway import load_settings
from langchain_cfgateway import ChatCloudflare, get_cloudflare_callback

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


@tool
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


def main(question: str = "What is 6 multiplied by 7? Use the multiply tool.", **settings: Any) -> dict[str, Any]:
    llm = ChatCloudflare(model=MODEL, temperature=0, **settings)
    agent = create_agent(llm, tools=[multiply], system_prompt="You are a careful assistant. Use tools for math.")
    with get_cloudflare_callback() as cb:
        result = agent.invoke({"messages": [{"role": "user", "content": question}]},
                              config={"metadata": {"user_id": "agent-demo"}})
    messages = result["messages"]
    for m in messages:
        calls = getattr(m, "tool_calls", None)
        detail = f" -> {[(c['name'], c['args']) for c in calls]}" if calls else ""
        print(f"{m.type:>6}: {m.content}{detail}")
    print(f"cost: ${cb.total_cost} over {cb.successful_requests} model calls, {cb.total_tokens} tokens")
    return {"messages": messages, "answer": messages[-1].content, "callback": cb}


if __name__ == "__main__":
    with connection() as kw:
        main(**kw)
