"""Routing (layer 4): :mod:`~cfgateway.routing.routes` (model string -> URL, wire, credentials,
``cf-aig-*`` headers), :mod:`~cfgateway.routing.rollout` (per-call route choice) and
:mod:`~cfgateway.routing.breaker` (circuit breakers)."""
