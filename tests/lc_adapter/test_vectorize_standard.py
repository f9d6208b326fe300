"""LangChain's standard VectorStoreIntegrationTests for CloudflareVectorize against the emulated Vectorize,
with the write-visibility delay on, in two worlds the contract leaves open: info reports mutation ids (the
common case), and info reports batch ids that are never a mutation's id while reads lag behind it (plus a 400
for a missing index and get_by_ids answering in reverse order)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from cfgateway.emulator import EmulatorConfig, EmulatorServer
from cfgateway.emulator.vectorize_state import VectorizeSettings
from cfgateway.vectorize import WaitPolicy
from langchain_cfgateway import CloudflareVectorize

FAST_POLL = WaitPolicy(timeout=10.0, poll_initial=0.02, poll_max=0.2)


@pytest.fixture(scope="module")
def vz_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig()) as server:
        yield server


def make_store(server: EmulatorServer, settings: VectorizeSettings, embeddings: Any) -> Iterator[CloudflareVectorize]:
    server.state.vectorize.settings = settings
    store = CloudflareVectorize(f"std-{uuid.uuid4().hex[:12]}", embeddings, account_id="acct", api_token="test-token",
                                base_url=server.base_url, wait_policy=FAST_POLL)
    store.create_index(6, metric="cosine")
    try:
        yield store
    finally:
        store.delete_index()


class TestVectorizeStandard(VectorStoreIntegrationTests):
    SETTINGS = VectorizeSettings(delay_s=0.15)

    @pytest.fixture()
    def vectorstore(self, vz_server: EmulatorServer) -> Iterator[CloudflareVectorize]:  # type: ignore[override]
        yield from make_store(vz_server, self.SETTINGS.copy(), self.get_embeddings())


class TestVectorizeStandardBatchIdsReadLag(VectorStoreIntegrationTests):
    SETTINGS = VectorizeSettings(delay_s=0.1, read_lag_s=0.1, report="batch_id", not_found_status=400,
                                 get_by_ids_order="reverse")

    @pytest.fixture()
    def vectorstore(self, vz_server: EmulatorServer) -> Iterator[CloudflareVectorize]:  # type: ignore[override]
        yield from make_store(vz_server, self.SETTINGS.copy(), self.get_embeddings())
