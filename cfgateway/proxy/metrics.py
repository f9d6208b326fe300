"""Prometheus metrics (``GET /metrics``), with ``prometheus-client`` imported only when the proxy starts.

Labels stay bounded: requests by endpoint template and status, tokens/cost/fallbacks by the model string
of the route that answered (never the caller's free-form ``model`` field), errors by endpoint and type.
With ``--workers N`` set ``PROMETHEUS_MULTIPROC_DIR`` to a directory and every worker's numbers are summed.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/v1/models", "/healthz", "/readyz",
             "/metrics", "/openapi.json")


def endpoint_label(path: str) -> str:
    if path in ENDPOINTS:
        return path
    if path.startswith("/v1/models/"):
        return "/v1/models/{model}"
    return "other"


class Metrics:
    """The proxy's counters and histograms on a registry of its own."""

    def __init__(self) -> None:
        try:
            import prometheus_client as pc
        except ImportError:
            raise ImportError("the proxy's metrics need prometheus-client: pip install 'cfgateway[proxy]'") from None
        self._pc = pc
        self.registry = pc.CollectorRegistry()
        reg = self.registry
        self.requests = pc.Counter("cfgateway_proxy_requests", "Requests answered", ["endpoint", "method", "status"],
                                   registry=reg)
        self.latency = pc.Histogram("cfgateway_proxy_request_seconds", "Time to answer (streams: to the last byte)",
                                    ["endpoint"], registry=reg,
                                    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.tokens = pc.Counter("cfgateway_proxy_tokens", "Tokens used", ["model", "kind"], registry=reg)
        self.cost = pc.Counter("cfgateway_proxy_cost_usd", "Cost in USD of priced calls", ["model"], registry=reg)
        self.unpriced = pc.Counter("cfgateway_proxy_unpriced_calls", "Calls of unknown price", ["model"], registry=reg)
        self.fallbacks = pc.Counter("cfgateway_proxy_fallbacks", "Calls answered by a fallback route",
                                    ["model"], registry=reg)
        self.errors = pc.Counter("cfgateway_proxy_errors", "Error answers", ["endpoint", "type"], registry=reg)
        self._children: dict[tuple[Any, ...], Any] = {}  # labels() looked up once per label set (bounded labels)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        ep = endpoint_label(path)
        self._child(self.requests, ep, method if method in ("GET", "POST", "OPTIONS") else "other", str(status)).inc()
        self._child(self.latency, ep).observe(seconds)

    def error(self, path: str, type_: str) -> None:
        self.errors.labels(endpoint_label(path), type_).inc()

    def usage(self, model: str, input_tokens: int, output_tokens: int, cost: Any, attempts: int) -> None:
        self._child(self.tokens, model, "input").inc(input_tokens)
        self._child(self.tokens, model, "output").inc(output_tokens)
        if isinstance(cost, Decimal):
            self._child(self.cost, model).inc(float(cost))
        else:
            self._child(self.unpriced, model).inc()
        if attempts > 1:
            self._child(self.fallbacks, model).inc()

    def render(self) -> tuple[bytes, str]:
        pc = self._pc
        registry: Any = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = pc.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return pc.generate_latest(registry), pc.CONTENT_TYPE_LATEST


__all__ = ["Metrics", "endpoint_label"]
