"""The poll chain's link: the runs still going, refreshed side by side."""

from __future__ import annotations

import pytest

from runs.models import Run, Schedule
from runs.orchestrators.emulation.faults import Fault
from runs.services.polling import poll_cycle_run
from runs.services.sync import orchestrator_sync
from runs.status import IN_PROGRESS
from tests.emulated import emulated, emulator_control, orchestrator_for
from tests.services.test_sync import start_run

pytestmark = pytest.mark.django_db

STARTED = 6


@pytest.mark.parametrize("width", [1, 3])
def test_it_refreshes_the_running_runs_at_most_the_setting_at_a_time(settings, width):
    settings.RUNBOARD_FETCH_CONCURRENCY = width
    with emulated("conductor", history=1, pace=1.0) as (app, server):
        orchestrator = orchestrator_for(server)
        assert orchestrator_sync(orchestrator=orchestrator).ok
        schedules = Schedule.objects.filter(orchestrator=orchestrator).order_by("external_id")
        started = [
            start_run(server, schedules[i % len(schedules)].external_id) for i in range(STARTED)
        ]
        assert orchestrator_sync(orchestrator=orchestrator).ok
        running = Run.objects.filter(external_id__in=started, status__in=IN_PROGRESS)
        assert running.count() == STARTED
        Run.objects.filter(external_id__in=started).update(synced_at=None)
        # Every call is held long enough for the next ones to overlap it, if they are sent.
        app.faults = [Fault(path=".*", latency=0.05)]
        emulator_control(server, "in-flight")  # its peak starts again

        still_running = poll_cycle_run()
        peak = app.in_flight_peak
        app.clock.step(3600)  # every run ends
        app.faults = []
        assert poll_cycle_run() == 0

    assert still_running >= STARTED
    assert peak == 1 if width == 1 else 1 < peak <= width
    refreshed = Run.objects.filter(external_id__in=started)
    assert all(run.synced_at is not None and run.is_terminal for run in refreshed)
