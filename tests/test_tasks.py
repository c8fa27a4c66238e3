"""The background chains: sync_cycle and poll_cycle, called directly and through db_worker."""

from __future__ import annotations

import socket

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runs.models import Orchestrator, Run, Schedule
from runs.services.polling import run_is_stale, run_refresh_if_stale
from runs.status import Status
from runs.tasks import poll_cycle, sync_cycle, sync_cycle_ensure
from tests.emulated import emulated, emulator_state, orchestrator_for
from tests.services.test_sync import start_run


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def waiting(task) -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=task.module_path, status="READY"))


@pytest.mark.django_db
def test_it_syncs_the_others_when_one_orchestrator_is_broken(settings):
    settings.RUNBOARD_HTTP_TIMEOUT = 0.5
    broken = Orchestrator.objects.create(
        kind="leapwork", name="down", base_url=f"http://127.0.0.1:{_closed_port()}"
    )
    with emulated("conductor", history=1) as (_app, server):
        healthy = orchestrator_for(server)
        reports = sync_cycle.call()
        state = emulator_state(server)

    assert len(reports) == 2
    broken.refresh_from_db()
    healthy.refresh_from_db()
    assert "cannot connect" in broken.last_sync_error and broken.next_sync_after
    assert healthy.last_sync_error == "" and healthy.last_synced_at
    assert Run.objects.filter(orchestrator=healthy).count() == len(state["workflows"])
    # The chain goes on: exactly one next link waits, an interval later.
    [following] = waiting(sync_cycle)
    assert following.run_after > timezone.now()
    assert sync_cycle_ensure() is False


@pytest.mark.django_db
def test_it_skips_an_orchestrator_that_is_backing_off():
    later = timezone.now() + timezone.timedelta(minutes=5)
    Orchestrator.objects.create(
        kind="leapwork", name="resting", base_url="http://127.0.0.1:1", next_sync_after=later
    )
    assert sync_cycle.call() == []


@pytest.mark.django_db
def test_it_polls_running_runs_until_they_end():
    with emulated("leapwork", history=1, pace=1.0) as (_app, server):
        orchestrator = orchestrator_for(server)
        sync_cycle.call()
        schedule = Schedule.objects.filter(orchestrator=orchestrator, is_temporary=False).first()
        run_id = start_run(server, schedule.external_id)
        sync_cycle.call()
        assert Run.objects.get(external_id=run_id).status == Status.QUEUED
        assert waiting(poll_cycle)  # a running run starts the poller

        assert poll_cycle.call() == 1
        server.app.clock.step(3600)
        assert poll_cycle.call() == 0

    assert Run.objects.get(external_id=run_id).is_terminal


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_chain_in_db_worker():
    with emulated("conductor", history=1) as (_app, server):
        orchestrator = orchestrator_for(server)
        call_command("sync", periodic=True)
        call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)
        state = emulator_state(server)

    orchestrator.refresh_from_db()
    assert orchestrator.last_synced_at is not None
    assert Run.objects.filter(orchestrator=orchestrator).count() == len(state["workflows"])
    assert DBTaskResult.objects.filter(task_path=sync_cycle.module_path, status="SUCCESSFUL")
    # The next pass waits for its time; the batch worker left it for a later worker.
    assert len(waiting(sync_cycle)) == 1


@pytest.mark.django_db
def test_it_asks_the_poller_for_a_watched_run_whose_data_is_stale(settings):
    orchestrator = Orchestrator.objects.create(kind="leapwork", name="o", base_url="http://x")
    fresh = Run.objects.create(
        orchestrator=orchestrator, external_id="a", status=Status.RUNNING, synced_at=timezone.now()
    )
    stale = Run.objects.create(
        orchestrator=orchestrator,
        external_id="b",
        status=Status.RUNNING,
        synced_at=timezone.now() - timezone.timedelta(seconds=settings.RUNBOARD_POLL_INTERVAL + 1),
    )
    done = Run.objects.create(orchestrator=orchestrator, external_id="c", status=Status.PASSED)

    assert not run_is_stale(run=fresh) and not run_is_stale(run=done)
    assert run_refresh_if_stale(run=stale) is True
    assert len(waiting(poll_cycle)) == 1
    assert run_refresh_if_stale(run=stale) is True
    assert len(waiting(poll_cycle)) == 1  # one poller waits, however many pages ask
