"""The per-request context handed to every handler."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from cfgateway.costs.catalog import Catalog
from cfgateway.emulator.config import GatewayConfig
from cfgateway.emulator.state import EmulatorState


@dataclass(slots=True)
class Ctx:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lowercase keys
    body: Any  # parsed JSON, None when empty or invalid
    raw: bytes
    json_ok: bool
    state: EmulatorState
    gateway_id: str | None = None
    gateway: GatewayConfig | None = None
    json_error: str = ""  # why the body is unreadable (not JSON, NaN, a lone surrogate); "" when fine

    def body_problem(self, default: str) -> str:
        """What a handler says when the body is not what it needs: the JSON error if any, else ``default``."""
        return self.json_error or default

    @property
    def catalog(self) -> Catalog:
        return self.state.catalog

    @property
    def wants_stream(self) -> bool:
        if isinstance(self.body, dict):
            return self.body.get("stream") is True
        if isinstance(self.body, list):
            return any(
                isinstance(s, dict) and isinstance(s.get("query"), dict) and s["query"].get("stream") is True
                for s in self.body
            )
        return False

    def has_provider_key(self) -> bool:
        h = self.headers
        return bool(h.get("authorization") or h.get("x-api-key") or h.get("api-key") or h.get("x-goog-api-key"))

    def sub(self, **changes: Any) -> Ctx:
        return replace(self, **changes)


def envelope(result: Any) -> dict[str, Any]:
    return {"result": result, "success": True, "errors": [], "messages": []}


__all__ = ["Ctx", "envelope"]
