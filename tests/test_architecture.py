"""The shape of the package: who may speak HTTP, how big a module or class may grow, the layers."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "snowcheck"
HTTP = {"requests", "pysnow", "urllib3"}


def _modules() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if "emulator" not in p.relative_to(PACKAGE).parts
    )


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_servicenow_layer_imports_requests_or_pysnow(path: Path) -> None:
    inside = path.relative_to(PACKAGE).parts[0] == "servicenow"
    found = _imported(ast.parse(path.read_text())) & HTTP
    assert inside or not found, f"{path.name} imports {sorted(found)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_500_lines_nor_class_over_300(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 500
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            assert node.end_lineno - node.lineno + 1 <= 300, node.name


def test_the_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a test dependency: run ./scripts/bootstrap"
    done = subprocess.run(
        [lint, "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:]
