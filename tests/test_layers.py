"""Each layer in its lane: no ORM under runs/orchestrators/, no client in a view or template."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORCHESTRATORS = ROOT / "runs" / "orchestrators"
VIEWS = sorted((ROOT / "runs" / "views").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize(
    "path", sorted(ORCHESTRATORS.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_nothing_under_orchestrators_imports_django(path):
    django = {
        m
        for m in imported_modules(path)
        if m == "django" or m.startswith(("django.", "runs.models", "runs.services"))
    }
    assert not django, f"{path.name} imports {django}"


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: p.name)
def test_views_never_import_a_client_or_httpx(path):
    forbidden = {m for m in imported_modules(path) if m.startswith(("runs.orchestrators", "httpx"))}
    assert not forbidden, f"{path.name} imports {forbidden}"


def test_no_template_names_a_client():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert "orchestrators." not in text and "httpx" not in text, template
