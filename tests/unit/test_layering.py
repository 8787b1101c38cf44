"""Imports point one way: lsp -> plugins -> model. model/ and plugins/ never reach up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# folder -> the jpilot packages its modules must not import (at any depth, deferred too)
FORBIDDEN = {
    "model": ("jpilot.lsp", "jpilot.plugins"),
    "plugins": ("jpilot.lsp",),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Return (line, module) for every import statement in a file, nested ones included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def violations(folder: str) -> list[str]:
    """Return 'file:line imports module' for each import that goes against the layering."""
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in imported_modules(path):
            if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN[folder]):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_point_one_way(folder: str) -> None:
    assert violations(folder) == []


def test_the_check_sees_a_deferred_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from jpilot.lsp.cli import main\n    import jpilot.plugins.api\n")
    assert imported_modules(bad) == [(2, "jpilot.lsp.cli"), (3, "jpilot.plugins.api")]
