"""Wire formats: one module of pure functions per format, the same function set in each
(:class:`cfgateway.wire.protocol.Wire`, checked by mypy through :data:`WIRES`).

- :mod:`cfgateway.wire.workers_ai` — Workers AI native ``/ai/run/{model}``
- :mod:`cfgateway.wire.openai` — OpenAI chat completions + embeddings (``/ai/v1``, OpenAI-wire
  providers behind the gateway, the gateway's ``compat`` endpoint)
- :mod:`cfgateway.wire.anthropic` — Anthropic Messages
- :mod:`cfgateway.wire.common` — helpers they share (error bodies, tool-call ids, ``apply_stop``)
- :mod:`cfgateway.wire.sse` — Server-Sent Events framing (sans-IO decoder)
- :mod:`cfgateway.wire.openai_server` — the server side of the OpenAI format (proxy, emulator)

No I/O, no httpx.
"""

from __future__ import annotations

from cfgateway.wire import anthropic, openai, workers_ai
from cfgateway.wire.protocol import StreamParser, Wire

#: The wire module for each route ``wire`` name. Typing it ``dict[str, Wire]`` makes mypy check that
#: every module provides the whole function set.
WIRES: dict[str, Wire] = {
    "workers-ai": workers_ai,
    "openai": openai,
    "anthropic": anthropic,
}

__all__ = ["WIRES", "StreamParser", "Wire", "anthropic", "openai", "workers_ai"]
