"""The HTTP layer (layer 3): :mod:`~cfgateway.http.transport` (the only importer of httpx: pooled
clients, timeouts, sending) and :mod:`~cfgateway.http.retry` (sans-IO: when to retry, and the typed
error for an HTTP error answer)."""
