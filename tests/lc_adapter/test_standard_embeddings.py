"""LangChain's standard embeddings suites for a Workers AI bge model and an OpenAI-wire model behind
an authenticated gateway, against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from cfgateway.emulator.server import EmulatorServer
from langchain_cfgateway import CloudflareEmbeddings

BGE = "@cf/baai/bge-base-en-v1.5"
OPENAI = "openai/text-embedding-3-small"
_SERVER: list[EmulatorServer] = []


@pytest.fixture(autouse=True)
def _server(lc_server: EmulatorServer) -> None:
    _SERVER[:] = [lc_server]
    lc_server.state.clear()


def _conn(gateway: bool) -> dict[str, Any]:
    server = _SERVER[0]
    kw: dict[str, Any] = {"account_id": "acct", "api_token": "test-token", "base_url": server.base_url,
                          "gateway_base_url": server.gateway_base_url}
    if gateway:
        kw.update(gateway_id="gw", gateway_token="gw-token")
    return kw


class _Unit(EmbeddingsUnitTests):
    MODEL = BGE

    @property
    def embeddings_class(self) -> type[CloudflareEmbeddings]:
        return CloudflareEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": self.MODEL, **_conn(not self.MODEL.startswith("@"))}  # routes resolve at construction

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {"CLOUDFLARE_API_TOKEN": "env-token", "CLOUDFLARE_ACCOUNT_ID": "env-acct",
               "CLOUDFLARE_AI_GATEWAY_ID": "env-gw", "CLOUDFLARE_AI_GATEWAY_TOKEN": "env-gw-token"}
        expected = {"api_token": "env-token", "account_id": "env-acct", "gateway_id": "env-gw",
                    "gateway_token": "env-gw-token"}
        return env, {"model": self.MODEL}, expected


class TestUnitBge(_Unit):
    MODEL = BGE


class TestUnitOpenAI(_Unit):
    MODEL = OPENAI


class TestIntegrationBge(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[CloudflareEmbeddings]:
        return CloudflareEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": BGE, **_conn(False)}


class TestIntegrationOpenAI(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[CloudflareEmbeddings]:
        return CloudflareEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": OPENAI, **_conn(True)}
