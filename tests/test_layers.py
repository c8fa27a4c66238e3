"""Each layer in its lane: no ORM under runs/orchestrators/, no client in a view or template."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORCHESTRATORS = ROOT / "runs" / "orchestrators"
# The API's endpoints are views too.
VIEWS = sorted([*(ROOT / "runs" / "views").glob("*.py"), *(ROOT / "runs" / "api").glob("*.py")])


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


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: relative(p))
def test_views_never_import_a_client_or_httpx(path):
    forbidden = {m for m in imported_modules(path) if m.startswith(("runs.orchestrators", "httpx"))}
    assert not forbidden, f"{path.name} imports {forbidden}"


def test_no_template_names_a_client():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert "orchestrators." not in text and "httpx" not in text, template


# --- The vendor seam (issue 12): every vendor difference lives under runs/orchestrators/. ---

RUNS = ROOT / "runs"
RUNS_MODULES = sorted(p for p in RUNS.rglob("*.py") if "migrations" not in p.parts)
# Connect checks its input against the list of kinds: the one named exception.
VENDOR_BRANCH_EXCEPTIONS = {RUNS / "services" / "orchestrators.py"}
OUTSIDE_ORCHESTRATORS = [
    p for p in RUNS_MODULES if ORCHESTRATORS not in p.parents and p not in VENDOR_BRANCH_EXCEPTIONS
]
VENDOR_BRANCH = re.compile(r"OrchestratorKind\.[A-Z]|\bkind\s*(==|!=)|\bkind\s+(not\s+)?in\b")
TEMPLATE_BRANCH = re.compile(r"{%\s*(el)?if\b[^%]*\bkind\b[^%]*%}")


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", OUTSIDE_ORCHESTRATORS, ids=relative)
def test_no_vendor_branch_outside_the_orchestrators_package(path):
    lines = path.read_text().splitlines()
    branches = [
        f"{n}: {line.strip()}" for n, line in enumerate(lines, 1) if VENDOR_BRANCH.search(line)
    ]
    assert not branches, "\n".join(branches)


def test_the_named_exception_only_validates_input():
    text = (RUNS / "services" / "orchestrators.py").read_text()
    assert not re.search(r"OrchestratorKind\.[A-Z]", text)


def test_no_template_branches_on_the_vendor():
    branches = [
        f"{relative(template)}: {match.group(0)}"
        for template in sorted((ROOT / "templates").rglob("*.html"))
        for match in TEMPLATE_BRANCH.finditer(template.read_text())
    ]
    assert not branches, "\n".join(branches)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in RUNS_MODULES}


def runs_imports(path: Path) -> set[str]:
    """Every runs.* module `path` imports, at the top or inside a function, resolved to a module."""
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from pkg import module` imports the module; `from module import name` the module.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module_name(path):
                found.add(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting, done = [], set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            if cycle := visit(target):
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if cycle := visit(node):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_modules_of_runs():
    graph = {}
    for name, path in MODULES.items():
        # A package importing its own submodules to re-export them is not a cycle.
        graph[name] = {m for m in runs_imports(path) if not m.startswith(name + ".")}
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("path", sorted((RUNS / "services").rglob("*.py")), ids=relative)
def test_no_service_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


def test_no_function_in_runs_is_over_60_lines():
    long = [
        f"{relative(path)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in RUNS_MODULES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, "\n".join(long)


@pytest.mark.parametrize("path", sorted((RUNS / "services").rglob("*.py")), ids=relative)
def test_no_service_reaches_into_the_tasks(path):
    """Tasks call services; a service that enqueues names a chain in runs.services.queue."""
    assert "runs.tasks" not in runs_imports(path)
