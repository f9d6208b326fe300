"""The core clients (layer 5): :class:`Client` and :class:`AsyncClient`.

- :mod:`~cfgateway.client._clients` — the classes: settings, routes, planning (sans-IO, :mod:`cfgateway.calls`).
- :mod:`~cfgateway.client._chat` — the chat flows (sync and async twins): plan in, answer or chunks out.
- :mod:`~cfgateway.client._embed` — the embed flows: batches sent concurrently, read in order.
"""

from cfgateway.client._clients import AsyncClient, Client

__all__ = ["AsyncClient", "Client"]
