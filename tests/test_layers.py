"""Imports go one way: graphql_api -> metrics -> (SQLAlchemy); warehouse knows nothing of either; the compiler
is pure; backend_urls, which both metrics and warehouse read URLs through, knows nothing of any of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

FORBIDDEN = {
    "backend_urls": ("graphql_api", "metrics", "warehouse"),
    "warehouse": ("graphql_api", "metrics"),
    "metrics": ("graphql_api", "warehouse"),
    "metrics/compiler": (
        "graphql_api",
        "warehouse",
        "metrics.engine",
        "metrics.backends",
        "metrics.client",
        "metrics.results",
        "duckdb",
        "asyncpg",
    ),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", FORBIDDEN)
def test_layers_import_downward_only(package: str) -> None:
    violations = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in _imports(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[package])
    ]
    assert violations == []


@pytest.mark.parametrize("package", ["warehouse", "metrics", "graphql_api", "backend_urls"])
def test_modules_stay_small(package: str) -> None:
    large = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in (ROOT / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    ]
    assert large == []
