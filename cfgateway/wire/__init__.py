"""Wire formats: one module of pure functions per format, the same function set in each.

- :mod:`cfgateway.wire.workers_ai` — Workers AI native ``/ai/run/{model}``
- :mod:`cfgateway.wire.openai` — OpenAI chat completions + embeddings (``/ai/v1``, OpenAI-wire
  providers behind the gateway, the gateway's ``compat`` endpoint)
- :mod:`cfgateway.wire.anthropic` — Anthropic Messages
- :mod:`cfgateway.wire.common` — helpers they share (error bodies, tool-call ids, ``apply_stop``)

Each chat module has ``build_chat_body``, ``parse_chat``, ``parse_usage`` and ``StreamParser``;
workers_ai and openai also ``build_embed_body`` and ``parse_embed``. No I/O, no httpx.
"""

__all__ = ["anthropic", "common", "openai", "workers_ai"]
