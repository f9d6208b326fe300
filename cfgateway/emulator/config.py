"""Emulator settings and fault descriptions (plain dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from cfgateway.costs.catalog import Catalog
from cfgateway.emulator.vectorize_state import VectorizeSettings

FAULT_KINDS = ("error", "html", "delay", "drop_body", "drop_stream", "malformed", "stream_error")
STREAM_ONLY_KINDS = ("drop_stream", "stream_error")


@dataclass(slots=True)
class GatewayConfig:
    """One AI Gateway. ``auth_token`` set = authenticated gateway (needs ``cf-aig-authorization``).

    ``stored_keys``: provider keys are stored in the gateway (BYOK), so requests without a provider key are
    answered; ``None`` = stored exactly when the gateway is authenticated. ``dynamic_routes`` maps a dynamic
    route's name (``model: "dynamic/{name}"``) to the model string it sends to.
    """

    auth_token: str | None = None
    stored_keys: bool | None = None
    dynamic_routes: dict[str, str] = field(default_factory=dict)
    # The gateway's rate limit (docs/wire-notes.md §3.10): at most rate_limit requests per rate_interval
    # seconds, in clock windows ("fixed") or over the last rate_interval seconds ("sliding"); over it: 429, 2003.
    rate_limit: int | None = None
    rate_interval: float = 60.0
    rate_technique: str = "sliding"

    @property
    def has_stored_keys(self) -> bool:
        return self.auth_token is not None if self.stored_keys is None else self.stored_keys

    def __repr__(self) -> str:
        return (f"GatewayConfig(authenticated={self.auth_token is not None}, stored_keys={self.has_stored_keys}, "
                f"dynamic_routes={self.dynamic_routes!r}, rate_limit={self.rate_limit!r})")


@dataclass(slots=True)
class EmulatorConfig:
    """What the emulated account looks like.

    ``api_token=None`` accepts any non-empty Bearer token; ``account_id=None`` accepts any id.
    ``catalog=None`` uses the shipped catalog (``cfgateway/data/catalog.json``).
    """

    api_token: str | None = field(default=None, repr=False)
    account_id: str | None = None
    gateways: dict[str, GatewayConfig] = field(default_factory=dict)
    auto_create_gateways: bool = True
    strict_models: bool = True
    stream_delay_s: float = 0.0
    catalog: Catalog | None = field(default=None, repr=False)
    vectorize: VectorizeSettings = field(default_factory=VectorizeSettings)  # delays and UNKNOWN-behaviour switches


@dataclass(slots=True)
class Fault:
    """A failure injected into requests whose path matches ``path`` (an fnmatch glob).

    kinds: ``error`` (an error body in the route's own format), ``html`` (a 502 HTML page),
    ``delay`` (wait ``delay_s`` before the first byte; ``delay_s`` combines with every kind),
    ``drop_body`` (200, a Content-Length larger than what is sent, then the connection closes),
    ``drop_stream`` (``after_chunks`` SSE events, then the stream ends without its terminator),
    ``malformed`` (200 with invalid JSON), ``stream_error`` (``after_chunks`` events, then an error
    event). ``times=None`` applies forever, otherwise to that many requests.
    ``drop_body`` applies to non-stream answers only; ``drop_stream``/``stream_error`` to streams only.
    """

    path: str = "*"
    kind: str = "error"
    status: int | None = None  # default: 500 for error, 502 for html
    code: int | None = None
    message: str = ""
    retry_after: float | None = None
    delay_s: float = 0.0
    after_chunks: int = 1
    times: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build from JSON (the HTTP control endpoint); unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


__all__ = ["FAULT_KINDS", "EmulatorConfig", "Fault", "GatewayConfig"]
