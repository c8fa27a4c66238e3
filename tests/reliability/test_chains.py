"""Issue 14, point 4: periodic sync and polling survive a worker's death, and only the
periodic pass backs off.

A worker killed mid-link (kill -9) leaves its task RUNNING and enqueues no next link: before,
nothing synced again until someone typed `sync --periodic`. Here the link is left exactly as a
dead worker leaves it (claimed, RUNNING, its lease no longer renewed).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runs.models import ChainLease, Orchestrator
from runs.services.queue import chain_heartbeat
from runs.services.sync import orchestrator_sync
from runs.tasks import sync_cycle, sync_cycle_ensure, watch_cycle
from tests.emulated import emulated, orchestrator_for
from tests.test_tasks import _closed_port, waiting


def die_mid_link(task, *, lease_age: timedelta) -> DBTaskResult:
    """What kill -9 of the worker running `task`'s waiting link leaves behind."""
    (link,) = waiting(task)
    DBTaskResult.objects.filter(pk=link.pk).update(
        status="RUNNING", started_at=timezone.now() - lease_age, worker_ids=["killed"]
    )
    ChainLease.objects.update_or_create(
        name="sync", defaults={"renewed_at": timezone.now() - lease_age}
    )
    return link


@pytest.mark.django_db(transaction=True)
def test_the_watch_starts_again_a_sync_chain_whose_worker_died(settings):
    settings.RUNBOARD_CHAIN_LEASE = 60
    with emulated("conductor", history=1) as (_app, server):
        orchestrator = orchestrator_for(server)
        sync_cycle_ensure()
        dead = die_mid_link(sync_cycle, lease_age=timedelta(seconds=61))
        assert not waiting(sync_cycle)  # the chain is dead: nothing would sync again

        assert watch_cycle.call() == ["sync"]
        # A later worker runs the new link: the orchestrator syncs again.
        call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)

    dead.refresh_from_db()
    assert dead.status == "FAILED" and dead.exception_class_path.endswith("LeaseExpired")
    orchestrator.refresh_from_db()
    assert orchestrator.last_synced_at is not None
    assert DBTaskResult.objects.filter(task_path=sync_cycle.module_path, status="SUCCESSFUL")
    assert len(waiting(sync_cycle)) == 1 and len(waiting(watch_cycle)) == 1


@pytest.mark.django_db
def test_a_link_still_renewing_its_lease_is_left_to_run(settings):
    settings.RUNBOARD_CHAIN_LEASE = 60
    sync_cycle_ensure()
    link = die_mid_link(sync_cycle, lease_age=timedelta(seconds=600))
    chain_heartbeat("sync")  # a long pass, alive: it renewed its lease just now

    assert watch_cycle.call() == []
    link.refresh_from_db()
    assert link.status == "RUNNING" and not waiting(sync_cycle)


@pytest.mark.django_db
def test_each_sync_link_keeps_the_watch_going():
    assert sync_cycle.call() == []
    assert len(waiting(watch_cycle)) == 1
    assert watch_cycle.call() == []
    assert len(waiting(watch_cycle)) == 1


@pytest.mark.django_db
def test_only_the_periodic_pass_backs_off_and_the_first_success_ends_it():
    with emulated("conductor", history=1) as (_app, server):
        orchestrator = orchestrator_for(server)
        good = orchestrator.base_url
        Orchestrator.objects.filter(pk=orchestrator.pk).update(
            base_url=f"http://127.0.0.1:{_closed_port()}"
        )
        orchestrator.refresh_from_db()
        for _ in range(3):  # someone presses "sync now" during a fault storm
            assert not orchestrator_sync(orchestrator=orchestrator).ok
        manual = Orchestrator.objects.get(pk=orchestrator.pk)
        assert manual.last_sync_error and manual.consecutive_failures == 0
        assert manual.next_sync_after is None

        assert not orchestrator_sync(orchestrator=orchestrator, periodic=True).ok
        parked = Orchestrator.objects.get(pk=orchestrator.pk)
        assert parked.consecutive_failures == 1 and parked.next_sync_after > timezone.now()

        Orchestrator.objects.filter(pk=orchestrator.pk).update(base_url=good)
        orchestrator.refresh_from_db()
        assert orchestrator_sync(orchestrator=orchestrator).ok
    healthy = Orchestrator.objects.get(pk=orchestrator.pk)
    assert healthy.consecutive_failures == 0 and healthy.next_sync_after is None


@pytest.mark.django_db
def test_a_link_that_never_renewed_a_lease_counts_from_its_start(settings):
    settings.RUNBOARD_CHAIN_LEASE = 60
    sync_cycle_ensure()
    link = die_mid_link(sync_cycle, lease_age=timedelta(seconds=61))
    ChainLease.objects.all().delete()  # started by a version without leases

    assert watch_cycle.call() == ["sync"]
    link.refresh_from_db()
    assert link.status == "FAILED" and len(waiting(sync_cycle)) == 1
