"""docs/adding-an-orchestrator.md stays true: its paths exist, it names every method of the
interface and every capability, and every name it lists is one."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from runs.models import OrchestratorKind
from runs.orchestrators import registry
from runs.orchestrators.base import Capabilities, OrchestratorClient

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "adding-an-orchestrator.md").read_text()
NAMED = set(re.findall(r"`([^`\s]+)`", GUIDE))
# The guide's example vendor stands for any of ours: its paths are checked as Leapwork's.
EXAMPLE = {"jenkins": "leapwork", "Jenkins": "Leapwork"}


def as_leapwork(text: str) -> str:
    for example, ours in EXAMPLE.items():
        text = text.replace(example, ours)
    return text


@pytest.mark.parametrize(
    "path", sorted(n for n in NAMED if n.startswith(("runs/", "tests/", "docs/")))
)
def test_every_path_it_names_exists(path):
    assert (ROOT / as_leapwork(path).rstrip("/")).exists(), path


def interface_methods() -> set[str]:
    return {
        name
        for name, value in vars(OrchestratorClient).items()
        if callable(value) or isinstance(value, classmethod)
        if not name.startswith("_")
    }


def test_it_names_every_method_of_the_interface():
    assert interface_methods() - NAMED == set()


def test_it_names_every_capability():
    assert {f.name for f in dataclasses.fields(Capabilities)} - NAMED == set()


def test_every_row_of_its_tables_is_a_method_or_a_capability():
    rows = set(re.findall(r"^\| `(\w+)` \|", GUIDE, flags=re.MULTILINE))
    known = interface_methods() | {f.name for f in dataclasses.fields(Capabilities)}
    assert rows and rows - known == set()


def test_the_registry_and_the_model_know_the_same_kinds():
    assert set(registry.KINDS) == set(OrchestratorKind.values)
    for kind in registry.KINDS:
        assert registry.client_class(kind).kind == kind
        assert registry.emulator_class(kind).kind == kind
