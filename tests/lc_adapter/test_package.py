"""The package surface: __all__, lazy import, and the ImportError naming the extra."""

from __future__ import annotations

import subprocess
import sys

import langchain_cfgateway


def test_all_is_pinned() -> None:
    assert langchain_cfgateway.__all__ == ["ChatCloudflare", "CloudflareEmbeddings", "CloudflareCostCallbackHandler",
                                           "get_cloudflare_callback"]
    for name in langchain_cfgateway.__all__:
        assert getattr(langchain_cfgateway, name) is not None


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_missing_langchain_core_names_the_extra() -> None:
    out = _run("import sys; sys.modules['langchain_core'] = None; import langchain_cfgateway")
    assert out.returncode != 0 and 'pip install "cfgateway[langchain]"' in out.stderr


def test_importing_the_model_does_not_open_the_transport() -> None:
    out = _run("import sys; from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings;"
               "print(','.join(m for m in ('cfgateway.transport', 'cfgateway.client', 'tqdm') if m in sys.modules))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
