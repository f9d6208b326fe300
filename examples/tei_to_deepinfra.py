"""Migration guide 1 (docs/migrate-tei-to-deepinfra.md): a self-hosted embedding server (Hugging Face TEI)
replaced by DeepInfra's Qwen3-Embedding-8B behind AI Gateway, with the DeepInfra key stored in the gateway.

The code names no model: ``CFGATEWAY_EMBED_MODEL=custom-deepinfra/Qwen/Qwen3-Embedding-8B`` and
``CFGATEWAY_EMBED_DIMENSIONS=1024`` (the size the existing index was built with) say what it runs on.
It re-embeds an existing index batch by batch at the route's limit, checks the vector size, and prints
the price per million tokens and what the re-indexing cost. With no CLOUDFLARE_API_TOKEN it runs on the
offline emulator.
"""

from __future__ import annotations

import math
import os
from typing import Any

from cfgateway import connect
from cfgateway.config import load_settings

# The existing index: ids and texts (the TEI vectors are not reused: vectors of two models never mix).
OLD_INDEX = {f"doc-{i}": f"Support article {i}: how to rotate API tokens, step {i % 7 + 1}." for i in range(600)}


def reindex(index: dict[str, str]) -> dict[str, Any]:
    client = connect("embed")                             # custom-deepinfra/... from configuration
    try:
        info = client.model_info()
        route = client.route()
        batch = (info.max_batch if info and info.max_batch else 100)
        texts = list(index.values())
        resp = client.embed(texts, batch_size=batch, max_concurrency=4)
    finally:
        client.close()
    dims = {len(v) for v in resp.vectors}
    new_index = dict(zip(index, resp.vectors, strict=True))
    tokens = resp.usage.input_tokens if resp.usage else 0
    price = info.input_price if info else None
    print(f"model {route.model} via {route.provider} · {len(texts)} texts in {math.ceil(len(texts) / batch)} "
          f"requests of up to {batch}")
    print(f"vector size {sorted(dims)} (asked: {load_settings().embed_dimensions or 'native'})")
    print(f"price ${price} per million tokens · {tokens} tokens · re-index cost ${resp.cost}")
    return {"index": new_index, "dims": dims, "tokens": tokens, "cost": resp.cost, "price": price,
            "batch": batch, "model": route.model}


def main() -> dict[str, Any]:
    return reindex(OLD_INDEX)


if __name__ == "__main__":
    if load_settings().api_token:
        main()
    else:
        from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
        from cfgateway.emulator.server import EmulatorServer

        config = EmulatorConfig(gateways={"emb-gw": GatewayConfig("demo-gateway-token", stored_keys=True)})
        with EmulatorServer(config) as server:
            print(f"(no CLOUDFLARE_API_TOKEN: the offline emulator at {server.url})")
            os.environ.update({"CLOUDFLARE_ACCOUNT_ID": "demo", "CLOUDFLARE_API_TOKEN": "demo-token",
                               "CLOUDFLARE_AI_GATEWAY_ID": "emb-gw",
                               "CLOUDFLARE_AI_GATEWAY_TOKEN": "demo-gateway-token",
                               "CLOUDFLARE_API_BASE_URL": server.base_url,
                               "CLOUDFLARE_AI_GATEWAY_BASE_URL": server.gateway_base_url})
            os.environ.setdefault("CFGATEWAY_EMBED_MODEL", "custom-deepinfra/Qwen/Qwen3-Embedding-8B")
            os.environ.setdefault("CFGATEWAY_EMBED_DIMENSIONS", "1024")
            main()
