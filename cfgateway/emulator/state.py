"""Mutable emulator state: faults, the request log, the gateway cache, known gateways.

The server thread and the test thread both touch it, so every mutation holds one lock.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from cfgateway.costs.catalog import Catalog, default_catalog
from cfgateway.emulator.config import STREAM_ONLY_KINDS, EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.jsonbody import json_safe
from cfgateway.emulator.vectorize_state import VectorizeState

SECRET_HEADERS = frozenset({"authorization", "cf-aig-authorization", "x-api-key", "api-key", "x-goog-api-key"})


def mask_headers(headers: dict[str, str]) -> dict[str, str]:
    """A copy with credential values replaced (the auth scheme word is kept)."""
    out: dict[str, str] = {}
    for k, v in headers.items():
        if k in SECRET_HEADERS:
            scheme = v.split(" ", 1)[0] + " " if " " in v else ""
            out[k] = f"{scheme}****" if v else ""
        else:
            out[k] = v
    return out


@dataclass(slots=True)
class RecordedRequest:
    """One request the emulator received. ``headers`` keys are lowercase."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    time: float
    status: int | None = None

    def __repr__(self) -> str:
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, query={self.query!r}, "
            f"headers={mask_headers(self.headers)!r}, json={self.json!r}, time={self.time!r}, "
            f"status={self.status!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, credentials masked (what ``GET /__emulator/requests`` returns)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": mask_headers(self.headers),
            "json": json_safe(self.json),
            "time": self.time,
            "status": self.status,
        }


@dataclass(slots=True)
class _CacheEntry:
    expires: float
    reply: Any


@dataclass
class EmulatorState:
    """Faults, request log, cache and gateways of one emulator instance."""

    config: EmulatorConfig
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    gateways: dict[str, GatewayConfig] = field(default_factory=dict)
    catalog: Catalog = field(default_factory=default_catalog)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, ...], _CacheEntry] = {}
        self._rates: dict[str, list[float]] = {}  # gateway id -> times of the requests it let through
        self.gateways = dict(self.config.gateways)
        if self.config.catalog is not None:
            self.catalog = self.config.catalog
        self.provider_kinds = frozenset((i.provider, i.kind) for i in self.catalog.models.values())
        self.vectorize = VectorizeState(self.config.vectorize)  # indexes, vectors, pending mutations

    # -- faults -------------------------------------------------------------
    def add_fault(self, fault: Fault) -> Fault:
        """Store a copy of ``fault`` (its ``times`` counts down; the caller's object is untouched)."""
        stored = replace(fault)
        with self._lock:
            self.faults.append(stored)
        return stored

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def take_fault(self, path: str, *, stream: bool) -> Fault | None:
        """The first fault matching ``path`` that applies to this kind of answer (uses one of its times)."""
        if not self.faults:
            return None
        with self._lock:
            for fault in self.faults:
                if fault.times is not None and fault.times <= 0:
                    continue
                if fault.kind in STREAM_ONLY_KINDS and not stream:
                    continue
                if fault.kind == "drop_body" and stream:
                    continue
                if not fnmatch.fnmatchcase(path, fault.path):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    # -- request log ----------------------------------------------------------
    def record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- cache ------------------------------------------------------------------
    def cache_get(self, key: tuple[str, ...]) -> Any:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            if entry.expires < time.monotonic():
                del self._cache[key]
                return None
            return entry.reply

    def cache_put(self, key: tuple[str, ...], reply: Any, ttl_s: float) -> None:
        with self._lock:
            self._cache[key] = _CacheEntry(time.monotonic() + ttl_s, reply)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- gateways -----------------------------------------------------------------
    def gateway(self, gateway_id: str) -> GatewayConfig | None:
        """The gateway's settings; auto-created (unauthenticated) when the config allows it."""
        gw = self.gateways.get(gateway_id)
        if gw is None and self.config.auto_create_gateways:
            with self._lock:
                gw = self.gateways.setdefault(gateway_id, GatewayConfig())
        return gw

    def rate_admit(self, gateway_id: str, gw: GatewayConfig, now: float) -> float | None:
        """None when the gateway's rate limit lets this request through (counted), else seconds until it would."""
        if gw.rate_limit is None:
            return None
        span = gw.rate_interval
        with self._lock:
            times = self._rates.setdefault(gateway_id, [])
            if gw.rate_technique == "fixed":  # clock windows: [k*span, (k+1)*span)
                start = (now // span) * span
                times[:] = [t for t in times if t >= start]
                wait = start + span - now
            else:  # sliding: the last span seconds
                times[:] = [t for t in times if t > now - span]
                wait = (times[0] + span - now) if times else 0.0
            if len(times) < gw.rate_limit:
                times.append(now)
                return None
            return wait

    def clear(self) -> None:
        """Reset everything to the configured start: request log, faults, cache, auto-created gateways, and
        Vectorize (indexes, vectors, pending mutations, settings)."""
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self._cache.clear()
            self._rates.clear()
            self.gateways = dict(self.config.gateways)
        self.vectorize.clear()

    reset = clear


__all__ = ["EmulatorState", "RecordedRequest", "mask_headers"]
