"""pytest fixtures for the emulator (registered as a ``pytest11`` entry point).

``cf_emulator_server``: one :class:`EmulatorServer` per test session.
``cf_emulator``: the same server with faults, request log, cache and gateways reset before each test.
``cf_clean_env``: no ``CLOUDFLARE_*`` / ``CFGATEWAY_*`` / gateway-token / provider-key variables from the
developer's shell and no ``cfgateway.toml`` in the working directory, so real credentials cannot leak in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cfgateway.config import PROVIDER_KEY_ENV
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


_ENV_PREFIXES = ("CLOUDFLARE_", "CFGATEWAY_", "CF_AIG", "CF_GATEWAY")


@pytest.fixture
def cf_clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in PROVIDER_KEY_ENV.values():
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.getbasetemp())
