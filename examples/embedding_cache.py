"""Embedding cache: embed the same 1,000 texts twice; the second run sends nothing and costs $0.

With CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID set it talks to Cloudflare; without them it starts the
offline emulator on loopback. The cache is a SQLite file (``CFGATEWAY_EMBED_CACHE`` or ``cache_url=`` names
another: ``memory://``, ``redis://host:6379/0``); the cost ledger is in memory.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from cfgateway import Client, CostTracker, load_settings, open_embedding_cache
from cfgateway.cache import namespace
from cfgateway.costs.ledger import MemoryLedger

EMBED_MODEL = "@cf/baai/bge-base-en-v1.5"
TEXTS = [f"Section {i}: Workers AI runs models on Cloudflare's network, close to your users." for i in range(1000)]


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


def main(cache_url: str | None = None, **settings: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = cache_url or load_settings().embed_cache or f"sqlite:///{Path(tmp) / 'embeddings.db'}"
        tracker = CostTracker(MemoryLedger())
        cache = open_embedding_cache(url)  # or pass the URL itself: embed_cache=url
        with contextlib.closing(cache), Client(EMBED_MODEL, embed_cache=cache, tracker=tracker, **settings) as client:
            runs = []
            for run in ("first", "second"):
                resp = client.embed(TEXTS)
                sent = len(TEXTS) - resp.cached
                cost = "unknown" if resp.cost is None else f"${resp.cost:.8f}"
                print(f"{run:6} run · {len(resp.vectors)} vectors · {resp.cached} from the cache · {sent} sent"
                      f" · cost {cost}")
                runs.append(resp)
        records = tracker.ledger.records()
        spent = sum((r.cost for r in records if r.cost is not None), Decimal(0))
        print(f"ledger · {len(records)} records · spent ${spent:.8f} · the cached call's record costs "
              f"${records[-1].cost} with {records[-1].tags.get('embed_cache_hits')} hits")
        print(f"LangChain CacheBackedEmbeddings namespace for {EMBED_MODEL}: {namespace(EMBED_MODEL)}")
        return {"runs": runs, "records": records, "spent": spent}


if __name__ == "__main__":
    with connection() as kw:
        main(**kw)
