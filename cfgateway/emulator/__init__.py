"""Offline emulator of Cloudflare Workers AI and AI Gateway (a Starlette app served by uvicorn).

Nothing in ``cfgateway`` imports this package; it needs the ``[emulator]`` extra (starlette, uvicorn):
``pip install 'cfgateway[emulator]'``. Names load on first use, so importing this package (as the pytest
plugin ``cfgateway.emulator.pytest_plugin`` does on every pytest run) imports neither of them.
Server-side code is written independently of ``cfgateway.wire``/``transport``/``client`` so that a
misreading of the wire format is not shared by both sides.

    from cfgateway.emulator import EmulatorServer, Fault
    with EmulatorServer() as emu:
        emu.state.add_fault(Fault("*/ai/run/*", "error", status=429, code=3040, times=1))
        ...  # point a client at emu.base_url / emu.gateway_base_url
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "EmulatorConfig": "cfgateway.emulator.config",
    "EmulatorServer": "cfgateway.emulator.server",
    "EmulatorState": "cfgateway.emulator.state",
    "Fault": "cfgateway.emulator.config",
    "GatewayConfig": "cfgateway.emulator.config",
    "RecordedRequest": "cfgateway.emulator.state",
    "create_app": "cfgateway.emulator.app",
    "serve": "cfgateway.emulator.server",
}

if TYPE_CHECKING:
    from cfgateway.emulator.app import create_app
    from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
    from cfgateway.emulator.server import EmulatorServer, serve
    from cfgateway.emulator.state import EmulatorState, RecordedRequest


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cfgateway.emulator' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        from cfgateway.emulator._extra import reraise_if_extra_missing

        reraise_if_extra_missing(exc)
    globals()[name] = value
    return value


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
