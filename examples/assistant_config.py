"""Migration guide 4 (docs/workers-ai-assistant.md): a Workers AI assistant configured in one profile
(``examples/assistant.toml``): completion defaults (max_tokens, temperature), embedding defaults (model,
dimensions, fallback), and several providers behind one authenticated gateway that stores their keys.

It checks the setup the way ``cfgateway check`` does, then answers with the configured defaults and asks each
provider behind the gateway once. With no CLOUDFLARE_API_TOKEN it runs on the offline emulator.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cfgateway.cli import main as cfgateway_cli
from llama_index_cfgateway import CloudflareEmbedding, CloudflareLLM

PROFILES = str(Path(__file__).with_name("assistant.toml"))
PROVIDERS = ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "google-ai-studio/gemini-2.5-flash",
             "groq/llama-3.1-8b-instant"]


def main() -> dict[str, Any]:
    checked = cfgateway_cli(["check", "--config", PROFILES, "--profile", "assistant"])
    llm = CloudflareLLM(profile="assistant")
    emb = CloudflareEmbedding(profile="assistant")
    print(f"\nassistant: {llm.model} (max_tokens={llm.max_tokens}, temperature={llm.temperature}), "
          f"fallbacks {llm.fallbacks}; embeddings {emb.model_name} at {emb.dimensions} dims")
    reply = llm.complete("Say hello to the team.")
    print(f"reply: {reply.text}")
    answered = {}
    for model in PROVIDERS:  # one gateway, one token, every provider's key stored in the gateway
        answered[model] = CloudflareLLM(model=model, profile="assistant").complete("ping").text
        print(f"{model:<36} {answered[model]}")
    vector = emb.get_text_embedding("hello")
    return {"check": checked, "llm": llm, "emb": emb, "reply": reply.text, "answered": answered, "dims": len(vector)}


if __name__ == "__main__":
    from cfgateway import load_settings

    os.environ.setdefault("CFGATEWAY_CONFIG", PROFILES)
    if load_settings().api_token:
        main()
    else:
        from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
        from cfgateway.emulator.server import EmulatorServer

        config = EmulatorConfig(gateways={"assistant-gw": GatewayConfig("demo-gateway-token")},
                                auto_create_gateways=False)
        with EmulatorServer(config) as server:
            print(f"(no CLOUDFLARE_API_TOKEN: the offline emulator at {server.url})")
            os.environ.update({"CLOUDFLARE_ACCOUNT_ID": "demo", "CLOUDFLARE_API_TOKEN": "demo-token",
                               "ASSISTANT_GATEWAY_TOKEN": "demo-gateway-token",
                               "CLOUDFLARE_API_BASE_URL": server.base_url,
                               "CLOUDFLARE_AI_GATEWAY_BASE_URL": server.gateway_base_url})
            main()
