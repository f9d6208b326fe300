"""LangChain's standard chat-model suites (unit + integration) for three configurations, against the emulator.

Properties are set to what each configuration really supports; nothing is xfailed. The standard
suite's image tests download a PNG with ``httpx.get``: a fixture serves a local PNG for that one URL
(no network), everything else about the tests is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.integration_tests import chat_models as standard_integration
from langchain_tests.unit_tests import ChatModelUnitTests

from cfgateway.emulator.server import EmulatorServer
from langchain_cfgateway import ChatCloudflare

LEGACY = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
OPENAI_SHAPE = "@cf/openai/gpt-oss-120b"
GATEWAY = "openai/gpt-4o-mini"
_SERVER: list[EmulatorServer] = []
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63fccf00000301010018dd8db00000000049454e44ae426082"
)


class _Fetched:
    def __init__(self, content: bytes) -> None:
        self.content = content


@pytest.fixture(autouse=True)
def _server_and_offline_images(lc_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _SERVER[:] = [lc_server]
    lc_server.state.clear()

    def fake_get(url: str, **_: Any) -> _Fetched:
        if url.endswith(".png"):
            return _Fetched(PNG_1X1)
        raise AssertionError(f"the test tried to reach the network: {url}")

    monkeypatch.setattr(standard_integration.httpx, "get", fake_get)
    yield


def _conn(gateway: bool) -> dict[str, Any]:
    server = _SERVER[0]
    kw: dict[str, Any] = {"account_id": "acct", "api_token": "test-token", "base_url": server.base_url,
                          "gateway_base_url": server.gateway_base_url}
    if gateway:
        kw.update(gateway_id="gw", gateway_token="gw-token")
    return kw


ENV = {
    "CLOUDFLARE_API_TOKEN": "env-token",
    "CLOUDFLARE_ACCOUNT_ID": "env-acct",
    "CLOUDFLARE_AI_GATEWAY_ID": "env-gw",
    "CLOUDFLARE_AI_GATEWAY_TOKEN": "env-gw-token",
}


class _Unit(ChatModelUnitTests):
    MODEL = LEGACY

    @property
    def chat_model_class(self) -> type[ChatCloudflare]:
        return ChatCloudflare

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self.MODEL, **_conn(not self.MODEL.startswith("@"))}  # routes resolve at construction

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        expected = {"api_token": "env-token", "account_id": "env-acct", "gateway_id": "env-gw",
                    "gateway_token": "env-gw-token"}
        return ENV, {"model": self.MODEL}, expected

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True


class TestUnitLegacy(_Unit):
    MODEL = LEGACY


class TestUnitOpenAIShape(_Unit):
    MODEL = OPENAI_SHAPE


class TestUnitGateway(_Unit):
    MODEL = GATEWAY

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True


class _Integration(ChatModelIntegrationTests):
    MODEL = LEGACY
    GATEWAY = False
    OVERRIDE = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"

    @property
    def chat_model_class(self) -> type[ChatCloudflare]:
        return ChatCloudflare

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self.MODEL, **_conn(self.GATEWAY)}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True  # Anthropic-format history (tool_use / thinking blocks, input_schema tools) converts

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return self.OVERRIDE


class TestIntegrationLegacy(_Integration):
    MODEL = LEGACY
    OVERRIDE = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"


class TestIntegrationOpenAIShape(_Integration):
    MODEL = OPENAI_SHAPE
    OVERRIDE = "@cf/openai/gpt-oss-20b"


class TestIntegrationGateway(_Integration):
    MODEL = GATEWAY
    GATEWAY = True
    OVERRIDE = "openai/gpt-4.1-mini"

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True
