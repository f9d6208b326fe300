"""pytest fixtures for the emulator (registered as a ``pytest11`` entry point).

``cf_emulator_server``: one :class:`EmulatorServer` per test session.
``cf_emulator``: the same server with faults, request log, cache and gateways reset before each test.
``cf_clean_env``: no ``CLOUDFLARE_*`` / ``CFGATEWAY_*`` / gateway-token / provider-key variables from the
developer's shell and no ``cfgateway.toml`` in the working directory, so real credentials cannot leak in.

pytest loads this module in every project where cfgateway is installed, extras or not. So it imports
nothing but pytest and the stdlib until a fixture runs: the emulator (starlette, uvicorn: the ``[emulator]``
extra), httpx and ``cfgateway.config`` load inside the fixtures. Without the extra, a test that asks for an
emulator fixture fails at setup with a message naming ``pip install 'cfgateway[emulator]'``; every other
test is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cfgateway.emulator.server import EmulatorServer


def _emulator_server_class() -> type[EmulatorServer]:
    from cfgateway.emulator._extra import EmulatorExtraMissing

    try:
        from cfgateway.emulator.server import EmulatorServer
    except EmulatorExtraMissing as exc:
        pytest.fail(f"cf_emulator_server / cf_emulator: {exc}", pytrace=False)
    return EmulatorServer


@pytest.fixture(scope="session")
def cf_emulator_server() -> Iterator[EmulatorServer]:
    server = _emulator_server_class()().start()
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
    from cfgateway.config import PROVIDER_KEY_ENV

    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in PROVIDER_KEY_ENV.values():
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.getbasetemp())
