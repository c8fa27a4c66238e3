"""The history's revision moves with every write the history pages show, and only then."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.utils import timezone

from runs.models import Agent, Orchestrator, Schedule
from runs.services.reruns import RerunInput
from runs.services.revision import revision_bump, revision_get
from runs.services.sync import orchestrator_sync, runs_store
from runs.services.sync.write import runs_mark_vanished
from runs.status import Status
from tests.emulated import emulated, failed_run, orchestrator_for, synced
from tests.factories import make_orchestrator, make_user
from tests.sending import rerun_sent
from tests.services.test_sync import _snapshots, start_run

pytestmark = pytest.mark.django_db


def history() -> int:
    return revision_get()[0]


def catalog() -> int:
    return revision_get()[1]


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what waits for the commit, as production does (tests never commit)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_it_counts_from_nothing_once_the_transaction_commits(committed):
    assert revision_get() == (0, 0)
    with committed():
        revision_bump()
        revision_bump()
        assert revision_get() == (0, 0)
    assert revision_get() == (2, 0)
    with committed():
        revision_bump(catalog=True)
    # A change of the catalog is a change of the history too (titles and names in its rows).
    assert revision_get() == (3, 1)


def test_storing_runs_moves_it_and_storing_the_same_again_does_not(committed):
    orchestrator, snapshots = make_orchestrator(), _snapshots(3, 4)
    with committed():
        runs_store(orchestrator=orchestrator, snapshots=snapshots)
    moved = revision_get()
    assert moved > (0, 0)  # new schedules and agents: the catalog moved too
    with committed():
        runs_store(orchestrator=orchestrator, snapshots=snapshots)
        runs_store(orchestrator=orchestrator, snapshots=[])
    assert revision_get() == moved
    changed = [replace(s, status=Status.PASSED, vendor_status="Passed") for s in snapshots]
    with committed():
        runs_store(orchestrator=orchestrator, snapshots=changed)
    # Runs moved, on the schedules and agents it knew: the filters stay drawn.
    assert history() > moved[0] and catalog() == moved[1]


def test_marking_runs_vanished_moves_it_only_when_a_run_was_marked(committed):
    orchestrator = make_orchestrator()
    with committed():
        runs_store(orchestrator=orchestrator, snapshots=_snapshots(2, 1))
    before = history()
    now = timezone.now()
    with committed():
        assert runs_mark_vanished(orchestrator=orchestrator, external_ids=["nope"], now=now) == 0
    assert history() == before
    with committed():
        assert runs_mark_vanished(orchestrator=orchestrator, external_ids=["run-1"], now=now) == 1
    assert history() > before


def test_a_sync_pass_moves_it_only_when_it_brings_something(committed):
    with emulated("leapwork", history=1, pace=1.0) as (_app, server):
        orchestrator = orchestrator_for(server)
        with committed():
            orchestrator_sync(orchestrator=orchestrator)
        first = history()
        assert first > 0
        with committed():
            orchestrator_sync(orchestrator=orchestrator)
        assert history() == first
        start_run(server, Schedule.objects.filter(orchestrator=orchestrator).first().external_id)
        with committed():
            orchestrator_sync(orchestrator=orchestrator)
        assert history() > first


@pytest.mark.parametrize("model", [Orchestrator, Schedule, Agent])
def test_an_edit_of_the_catalog_moves_it(committed, model):
    orchestrator = make_orchestrator()
    row = (
        orchestrator
        if model is Orchestrator
        else model.objects.create(orchestrator=orchestrator, external_id="x", title="X")
    )
    before = revision_get()
    with committed():
        row.save()
    assert revision_get() == (before[0] + 1, before[1] + 1)
    with committed():
        row.delete()
    assert revision_get() == (before[0] + 2, before[1] + 2)


def test_the_runs_a_rerun_starts_move_it(committed):
    with synced("leapwork") as (_server, orchestrator):
        source = failed_run(orchestrator)
        before = history()
        with committed():
            request, sent = rerun_sent(
                user=make_user("ana", rerunner=True),
                idempotency_key="revision-1",
                data=RerunInput(scope="failed"),
                source=source,
            )
        assert sent and request.runs.exists()
        assert history() > before
