"""The services' boundaries: no vendor branch outside runs/orchestrators/, no import cycle in
runs/ (lazy imports included), no service reaching into runs.tasks, small modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs"
SERVICES = sorted((RUNS / "services").rglob("*.py"))
# Where a vendor branch would be a vendor rule outside its package.
ASKING = [*SERVICES, RUNS / "forms.py", RUNS / "selectors.py", RUNS / "tasks.py"]
ASKING += sorted((RUNS / "views").glob("*.py"))
# Connecting checks its input: an unknown kind, a kind changed under the same name.
NAMED_EXCEPTIONS = {RUNS / "services" / "orchestrators.py"}
VENDOR_BRANCH = re.compile(r"OrchestratorKind\.|kind ==|\.kind !=")


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The runs modules `path` imports anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return {name for name in found if name in known}


@pytest.mark.parametrize("path", [p for p in ASKING if p not in NAMED_EXCEPTIONS], ids=_id)
def test_nothing_outside_orchestrators_branches_on_the_vendor(path):
    branches = [line for line in path.read_text().splitlines() if VENDOR_BRANCH.search(line)]
    assert not branches, branches


def test_no_template_branches_on_the_vendor():
    for template in (ROOT / "templates").rglob("*.html"):
        assert not re.search(r"kind\s*==|kind\s*!=", template.read_text()), template


@pytest.mark.parametrize("path", SERVICES, ids=_id)
def test_no_service_imports_the_tasks(path):
    assert "runs.tasks" not in imports_of(path, {"runs.tasks"})


def test_no_import_cycle_between_modules_of_runs():
    paths = {module_name(p): p for p in RUNS.rglob("*.py") if "migrations" not in p.parts}
    known = set(paths)
    graph = {
        name: {
            other
            for other in imports_of(path, known)
            # A package's own __init__ runs first whoever imports one of its modules.
            if not name.startswith(f"{other}.")
        }
        for name, path in paths.items()
    }
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycle = [*trail[trail.index(other) :], other] if other in trail else [other]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if other not in state:
                visit(other, [*trail, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("path", SERVICES, ids=_id)
def test_no_service_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


@pytest.mark.parametrize("path", ASKING, ids=_id)
def test_no_function_is_over_60_lines(path):
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, long
