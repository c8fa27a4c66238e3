"""A faithful local Leapwork controller: the REST API subset in shared/api/leapwork.md.

The estate (schedules with RunListSteps, flows, agents, schedule variables, past runs) comes
from the seed. Runs move along the emulator's clock: Queued briefly, then Executing one run
item after another (each `pace` seconds: NoStatus -> Running -> its outcome), then Finished.
Outcomes: most flows pass, some always fail, some fail only on one agent, and flaky ones fail
on some first attempts and pass when run again (reRun, reRunOnAgents, Run Flow by Id); now and
then a service is down for a whole run and every flow that needs it fails. Each failing flow
has a cause from the shared catalogue (failure_causes.py), rendered into its keyframes.

`legacy_forms=True` answers the other documented forms (RunItemsIds, Pass, EnvironmentInfo,
AutomationRunId, reRunOnAgents as a bare text id, status and stop only under schedules/).

The emulator is one class put together from a module per concern: `estate` (the seeded
world), `simulation` (the clock moving runs), `api` (routes, auth, lookups), `shapes` (response
bodies), `rerun` (reRun, reRunOnAgents, Run Flow) and `overview` (`/_emulator/state`, the
banner); `model` holds the dataclasses and constants they share.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any, ClassVar

from runs.orchestrators.leapwork.emulator.api import LeapworkApi
from runs.orchestrators.leapwork.emulator.estate import LeapworkEstate
from runs.orchestrators.leapwork.emulator.model import (
    Agent,
    Flow,
    Item,
    Run,
    Schedule,
    Step,
    timespan,
    with_ids,
)
from runs.orchestrators.leapwork.emulator.overview import LeapworkOverview
from runs.orchestrators.leapwork.emulator.rerun import LeapworkReruns
from runs.orchestrators.leapwork.emulator.shapes import LeapworkShapes
from runs.orchestrators.leapwork.emulator.simulation import LeapworkSimulation

__all__ = [
    "Agent",
    "Flow",
    "Item",
    "LeapworkEmulator",
    "Run",
    "Schedule",
    "Step",
    "timespan",
    "with_ids",
]


class LeapworkEmulator(
    LeapworkApi,
    LeapworkShapes,
    LeapworkReruns,
    LeapworkOverview,
    LeapworkSimulation,
    LeapworkEstate,
):
    """The Leapwork controller API on the emulation core."""

    kind = "leapwork"
    estate_types: ClassVar[dict[str, Any]] = {
        "agents": dict[str, Agent],
        "flows": dict[str, Flow],
        "schedules": dict[str, Schedule],
        "runs": dict[str, Run],
        "active": set[str],
        "folders": dict[str, str],
    }

    def __init__(
        self, *, legacy_forms: bool = False, utc_offset_minutes: int = 60, **kwargs: Any
    ) -> None:
        # Set before the core registers routes: legacy_forms changes which paths exist.
        self.legacy_forms = legacy_forms
        self.tz = timezone(timedelta(minutes=utc_offset_minutes))
        super().__init__(**kwargs)
