"""Offline emulator of Cloudflare Workers AI and AI Gateway (a Starlette app served by uvicorn).

Nothing in ``cfgateway`` imports this package; it needs the ``starlette`` and ``uvicorn`` extras.
Server-side code is written independently of ``cfgateway.wire``/``transport``/``client`` so that a
misreading of the wire format is not shared by both sides.

    from cfgateway.emulator import EmulatorServer, Fault
    with EmulatorServer() as emu:
        emu.state.add_fault(Fault("*/ai/run/*", "error", status=429, code=3040, times=1))
        ...  # point a client at emu.base_url / emu.gateway_base_url
"""

from __future__ import annotations

from cfgateway.emulator.app import create_app
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer, serve
from cfgateway.emulator.state import EmulatorState, RecordedRequest

__all__ = [
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "Fault",
    "GatewayConfig",
    "RecordedRequest",
    "create_app",
    "serve",
]
