"""The package surface: __all__, lazy import, and the ImportError naming the extra."""

from __future__ import annotations

import subprocess
import sys

import langchain_cfgateway


def test_all_is_pinned() -> None:
    assert langchain_cfgateway.__all__ == ["ChatCloudflare", "CloudflareEmbeddings", "CloudflareCostCallbackHandler",
                                           "CloudflareVectorize", "get_cloudflare_callback"]
    for name in langchain_cfgateway.__all__:
        assert getattr(langchain_cfgateway, name) is not None


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_missing_langchain_core_names_the_extra() -> None:
    out = _run("import sys; sys.modules['langchain_core'] = None; import langchain_cfgateway")
    assert out.returncode != 0 and 'pip install "cfgateway[langchain]"' in out.stderr


def test_importing_the_model_does_not_open_the_transport() -> None:
    out = _run("import sys; from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings;"
               "print(','.join(m for m in ('cfgateway.http.transport', 'cfgateway.client', 'tqdm') if m in sys.modules))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_documented_names_and_aliases_both_construct(cf_clean_env: None) -> None:
    """``model=``/``api_token=`` are the field names (what type checkers see); ``model_name``/``api_key`` work too.
    A plain ``str`` token is stored as SecretStr and never shown."""
    from pydantic import SecretStr

    from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings

    a = ChatCloudflare(model="@cf/meta/llama-3.1-8b-instruct", account_id="acct", api_token="tok-123456")
    b = ChatCloudflare(model_name="@cf/meta/llama-3.1-8b-instruct", account_id="acct", api_key="tok-123456")
    e = CloudflareEmbeddings(model_name="@cf/baai/bge-small-en-v1.5", account_id="acct", api_token="tok-123456",
                             gateway_id="gw", gateway_token="gw-987654")
    assert a.model == b.model == "@cf/meta/llama-3.1-8b-instruct" and e.model == "@cf/baai/bge-small-en-v1.5"
    for obj in (a, b, e):
        assert isinstance(obj.api_token, SecretStr) and obj.api_token.get_secret_value() == "tok-123456"
        assert "tok-123456" not in repr(obj) and "tok-123456" not in str(obj)
    assert isinstance(e.gateway_token, SecretStr) and "gw-987654" not in repr(e)
