"""A local Conductor server (conductor-oss semantics; Orkes token auth and rerun answers on demand).

Facts from shared/api/conductor.md. Workflow definitions are sequential pipelines of
SIMPLE tasks, each task a test case that a worker runs in `pace` seconds. Executions move on
the emulator clock, lazily, when a request arrives.

A failing task says why in `reasonForIncompletion` and leaves its worker's log in
`outputData.log` (workers write what they like into outputData): the cause comes from the shared
catalogue (failure_causes.py). Flaky tasks fail on some first attempts; worker-bound ones on
one worker; now and then a service is down for an execution's first pass.

The emulator is one class put together from a module per concern: `estate` (the seeded
world), `simulation` (the clock moving executions), `api` (routes, auth, parsing), `search`,
`rerun` (rerun, retry, restart and friends) and `overview` (`/_emulator/state`, the banner);
`model` holds the dataclasses and constants they share.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from runs.orchestrators.conductor.emulator.api import ConductorApi
from runs.orchestrators.conductor.emulator.estate import ConductorEstate
from runs.orchestrators.conductor.emulator.model import (
    Definition,
    Execution,
    TaskPlan,
    iso_ms,
)
from runs.orchestrators.conductor.emulator.overview import ConductorOverview
from runs.orchestrators.conductor.emulator.rerun import ConductorReruns
from runs.orchestrators.conductor.emulator.search import ConductorSearch
from runs.orchestrators.conductor.emulator.simulation import ConductorSimulation

__all__ = ["ConductorEmulator", "Definition", "Execution", "TaskPlan", "iso_ms"]


class ConductorEmulator(
    ConductorApi,
    ConductorSearch,
    ConductorReruns,
    ConductorOverview,
    ConductorSimulation,
    ConductorEstate,
):
    """conductor-oss semantics; `orkes=True` answers reruns as Orkes does (CANCELED attempts kept,
    ongoing workflows rerun). A credential `keyId:keySecret` turns on Orkes token auth."""

    kind = "conductor"
    estate_types: ClassVar[dict[str, Any]] = {
        "built_ms": int,
        "workers": list[str],
        "definitions": list[Definition],
        "executions": dict[str, Execution],
        "_active": set[str],
        "_order": list[str],
        "_started": int,
        "tokens": dict[str, int],
        "_issued": int,
        "_auto_next": dict[str, int],
        "_auto_count": Counter[str],
    }

    def __init__(self, *, orkes: bool = False, token_ttl: float = 3600.0, **kwargs: Any) -> None:
        self.orkes = orkes
        self.token_ttl = token_ttl
        super().__init__(**kwargs)
