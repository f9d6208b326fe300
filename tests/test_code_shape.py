"""The size rules from the engineering standards: modules at most 400 lines, functions at most 60."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ["cfgateway", "langchain_cfgateway", "llama_index_cfgateway", "examples", "bench", "tests"]
MAX_MODULE, MAX_FUNCTION = 400, 60


def sources() -> list[Path]:
    return sorted(p for tree in TREES for p in (ROOT / tree).rglob("*.py"))


def test_the_trees_are_found() -> None:
    assert len(sources()) > 100 and (ROOT / "cfgateway" / "client" / "_clients.py") in sources()


def problems(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(root)
    out = [f"{where}: {len(text.splitlines())} lines"] if len(text.splitlines()) > MAX_MODULE else []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
            size = node.end_lineno - node.lineno + 1
            if size > MAX_FUNCTION:
                out.append(f"{where}:{node.lineno} {node.name}: {size} lines")
    return out


def test_module_and_function_sizes() -> None:
    found = [p for path in sources() for p in problems(path)]
    assert not found, f"split these (modules <= {MAX_MODULE} lines, functions <= {MAX_FUNCTION}): {found}"


def test_the_check_sees_an_oversized_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    f = tmp_path / "big.py"
    f.write_text(f"def big() -> None:\n{body}\n")
    assert problems(f, tmp_path) == ["big.py:1 big: 62 lines"]
