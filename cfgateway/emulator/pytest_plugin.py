"""pytest fixtures for the emulator (registered as a ``pytest11`` entry point).

``cf_emulator_server``: one :class:`EmulatorServer` per test session.
``cf_emulator``: the same server with faults, request log, cache and gateways reset before each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cfgateway.emulator.server import EmulatorServer


@pytest.fixture(scope="session")
def cf_emulator_server() -> Iterator[EmulatorServer]:
    server = EmulatorServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cf_emulator(cf_emulator_server: EmulatorServer) -> EmulatorServer:
    cf_emulator_server.state.clear()
    return cf_emulator_server
