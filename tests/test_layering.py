"""Enforce docs/architecture.md's layer rules by reading every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: dict[str, int] = {
    "cfgateway.types": 1,
    "cfgateway.errors": 1,
    "cfgateway.error_codes": 1,
    "cfgateway.config": 2,
    "cfgateway.wire": 2,
    "cfgateway.costs.catalog": 2,
    "cfgateway.costs.pricing": 2,
    "cfgateway.data": 2,
    "cfgateway.http": 3,
    "cfgateway.routing": 4,
    "cfgateway.routing.model_strings": 2,  # the model-string grammar: config checks model strings too
    "cfgateway.costs": 4,
    "cfgateway.cache": 4,  # embedding caches: keys, backends (memory, SQLite, Redis), the cached embed flow
    "cfgateway.client": 5,
    "cfgateway.calls": 5,
    "cfgateway.fallback": 5,
    "cfgateway.vectorize": 5,
    "cfgateway.openai_sdk": 5,
    "cfgateway.connection": 5,
    "cfgateway.emulator": 6,
    "cfgateway.proxy": 6,
    "cfgateway.dashboard": 6,
    "cfgateway.__main__": 6,
    "cfgateway.cli": 6,
    "langchain_cfgateway": 7,
    "llama_index_cfgateway": 7,
}
ADAPTERS = ("langchain_cfgateway", "llama_index_cfgateway")


def layer_of(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return best[1] if best else None


def modules() -> list[tuple[str, Path]]:
    out = []
    for pkg in ("cfgateway", *ADAPTERS):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((".".join(parts), path))
    return out


def imports(module: str, path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append(mod)
            found.extend(f"{mod}.{a.name}" for a in node.names if layer_of(f"{mod}.{a.name}") is not None)
    return found


def test_every_core_module_has_a_layer() -> None:
    missing = [m for m, _ in modules() if m != "cfgateway" and layer_of(m) is None]
    assert not missing, f"modules without a layer in docs/architecture.md's table: {missing}"


def test_core_layers_import_only_layers_above() -> None:
    bad = []
    for module, path in modules():
        own = layer_of(module)
        if own is None or module == "cfgateway":
            continue
        for imp in imports(module, path):
            other = layer_of(imp)
            if other is not None and other > own:
                bad.append(f"{module} (layer {own}) imports {imp} (layer {other})")
    assert not bad, "\n".join(bad)


def test_only_the_http_layer_imports_httpx_in_layers_1_to_5() -> None:
    bad = []
    for module, path in modules():
        layer = layer_of(module)
        if layer is None or layer > 5 or module.startswith("cfgateway.http."):
            continue
        if any(i == "httpx" or i.startswith("httpx.") for i in imports(module, path)):
            bad.append(module)
    assert not bad, f"httpx imported outside cfgateway.http: {bad}"


def test_only_config_reads_the_environment() -> None:
    bad = []
    for module, path in modules():
        layer = layer_of(module)
        if module in ("cfgateway.config", "cfgateway.__main__") or module.startswith("cfgateway.config.") or (layer is not None and layer == 6):
            continue
        text = path.read_text(encoding="utf-8")
        if "os.environ" in text or "getenv(" in text:
            bad.append(module)
    assert not bad, f"os.environ read outside cfgateway.config: {bad}"


def test_adapters_use_only_the_public_core_and_their_framework() -> None:
    bad = []
    for module, path in modules():
        if not module.startswith(ADAPTERS):
            continue
        own_pkg = module.split(".")[0]
        for imp in imports(module, path):
            top = imp.split(".")[0]
            if top in ADAPTERS and top != own_pkg:
                bad.append(f"{module} imports the other adapter {imp}")
            if imp.startswith(("cfgateway.wire", "cfgateway.http", "cfgateway.emulator", "cfgateway.proxy")):
                bad.append(f"{module} imports {imp}")
            if top == "httpx":
                bad.append(f"{module} imports httpx")
            if own_pkg == "langchain_cfgateway" and top == "llama_index":
                bad.append(f"{module} imports llama_index")
            if own_pkg == "llama_index_cfgateway" and top in ("langchain", "langchain_core"):
                bad.append(f"{module} imports {top}")
    assert not bad, "\n".join(bad)


def test_the_core_package_never_imports_emulator_or_proxy_at_import_time() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cfgateway, cfgateway.client, cfgateway.fallback;"
        "bad=[m for m in sys.modules if m.startswith(('cfgateway.emulator','cfgateway.proxy','starlette','uvicorn',"
        "'redis','sqlite3','tqdm','pydantic'))];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported by `import cfgateway.client`: {out.stdout.strip()}"


def test_the_pytest_plugin_imports_nothing_until_a_fixture_runs() -> None:
    """pytest loads ``cfgateway.emulator.pytest_plugin`` in every project where cfgateway is installed (the
    ``pytest11`` entry point). Even here, with every extra installed, loading it adds only the two package
    ``__init__``s and itself: no starlette/uvicorn (the [emulator] extra), no httpx, pydantic, redis, tqdm, and
    not even ``cfgateway.errors``/``types``/``config``."""
    import subprocess
    import sys

    code = (
        "import sys, pytest; before = set(sys.modules);"
        "import cfgateway.emulator.pytest_plugin as p;"
        "assert callable(p.cf_emulator) and callable(p.cf_emulator_server) and callable(p.cf_clean_env);"
        "print(','.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == ["cfgateway", "cfgateway.emulator", "cfgateway.emulator.pytest_plugin"]
