"""Fixtures for the LangChain adapter tests: one emulator (with an authenticated gateway) per session,
a clean environment (no real Cloudflare credentials can leak in), and offline image fixtures."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
from cfgateway.emulator.server import EmulatorServer

API_TOKEN = "test-token"
GW_TOKEN = "gw-token"
# A 1x1 PNG: what the standard suite's image tests download, served offline.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(autouse=True)
def _clean_env(cf_clean_env: None) -> None:
    """No credentials from the developer's shell, no cfgateway.toml (the emulator plugin's fixture)."""


@pytest.fixture(scope="session")
def lc_server() -> Iterator[EmulatorServer]:
    cfg = EmulatorConfig(gateways={"gw": GatewayConfig(auth_token=GW_TOKEN)})
    with EmulatorServer(cfg) as server:
        yield server


@pytest.fixture()
def emu(lc_server: EmulatorServer) -> EmulatorServer:
    """The session emulator with its request log, faults and cache cleared."""
    lc_server.state.clear()
    return lc_server


def connection(server: EmulatorServer, *, gateway: bool = False, **extra: Any) -> dict[str, Any]:
    """Constructor arguments pointing an adapter class at ``server``."""
    return server.client_kwargs(gateway=gateway, api_token=API_TOKEN, **extra)


@pytest.fixture()
def conn(emu: EmulatorServer) -> Any:
    """``conn(gateway=False, **extra)`` -> constructor kwargs for the (cleared) emulator."""
    return lambda gateway=False, **extra: connection(emu, gateway=gateway, **extra)
