"""Routing (layer 4): :mod:`~cfgateway.routing.routes` (model string -> URL, wire, credentials,
``cf-aig-*`` headers), :mod:`~cfgateway.routing.rollout` (per-call route choice; staged rollouts whose
stage lives in the ledger's store: :mod:`~cfgateway.routing.stages`, :mod:`~cfgateway.routing.controller`,
quality gates in :mod:`~cfgateway.routing.gates`, answer similarity in :mod:`~cfgateway.routing.similarity`)
and :mod:`~cfgateway.routing.breaker` (circuit breakers)."""
