"""The emulator fixtures most core test files share: one emulator per module, cleared before each test.

    server, emu = emulator_fixtures(EmulatorConfig(api_token="tok"))

``server`` is the module's running :class:`EmulatorServer`; ``emu`` is the same server with its request log,
faults, cache and gateways reset to the configured start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cfgateway.emulator import EmulatorConfig, EmulatorServer


def emulator_fixtures(config: EmulatorConfig | None = None) -> tuple[Any, Callable[..., EmulatorServer]]:
    @pytest.fixture(scope="module")
    def server() -> Iterator[EmulatorServer]:
        with EmulatorServer(config or EmulatorConfig()) as s:
            yield s

    @pytest.fixture()
    def emu(server: EmulatorServer) -> EmulatorServer:
        server.state.clear()
        return server

    return server, emu
