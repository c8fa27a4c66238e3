"""The history's revision moves with every write the history pages show, and only then."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import Agent, Orchestrator, Schedule
from runs.services.reruns import RerunInput, rerun_start
from runs.services.revision import revision_bump, revision_get
from runs.services.sync import orchestrator_sync, runs_store
from runs.services.sync.write import runs_mark_vanished
from tests.emulated import failed_run, synced
from tests.factories import make_orchestrator, make_user
from tests.services.test_sync import _closed_port, _snapshots

pytestmark = pytest.mark.django_db


def test_it_counts_from_nothing():
    assert revision_get() == 0
    revision_bump()
    revision_bump()
    assert revision_get() == 2


def test_storing_runs_moves_it_with_the_transactions_last_statement():
    orchestrator = make_orchestrator()
    before = revision_get()
    with CaptureQueriesContext(connection) as queries:
        runs_store(orchestrator=orchestrator, snapshots=_snapshots(3, 4))
    assert revision_get() == before + 1
    # Last before the commit (or the test's savepoint release): nothing waits behind its lock.
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert "runs_revision" in statements[-1] and statements[-1].startswith("UPDATE")
    runs_store(orchestrator=orchestrator, snapshots=[])
    assert revision_get() == before + 1


def test_marking_runs_vanished_moves_it_only_when_a_run_was_marked():
    orchestrator = make_orchestrator()
    runs_store(orchestrator=orchestrator, snapshots=_snapshots(2, 1))
    before = revision_get()
    now = timezone.now()
    assert runs_mark_vanished(orchestrator=orchestrator, external_ids=["nope"], now=now) == 0
    assert revision_get() == before
    assert runs_mark_vanished(orchestrator=orchestrator, external_ids=["run-1"], now=now) == 1
    assert revision_get() == before + 1


def test_a_sync_pass_moves_it_even_when_the_orchestrator_fails():
    orchestrator = Orchestrator.objects.create(
        kind="conductor", name="down", base_url=f"http://127.0.0.1:{_closed_port()}"
    )
    before = revision_get()
    report = orchestrator_sync(orchestrator=orchestrator)
    assert not report.ok
    # The history pages show an orchestrator's failing sync.
    assert revision_get() == before + 1


@pytest.mark.parametrize("model", [Orchestrator, Schedule, Agent])
def test_an_edit_of_the_catalog_moves_it(model):
    orchestrator = make_orchestrator()
    row = (
        orchestrator
        if model is Orchestrator
        else model.objects.create(orchestrator=orchestrator, external_id="x", title="X")
    )
    before = revision_get()
    row.save()
    assert revision_get() == before + 1
    row.delete()
    assert revision_get() == before + 2


def test_the_runs_a_rerun_starts_move_it():
    with synced("leapwork") as (_server, orchestrator):
        source = failed_run(orchestrator)
        before = revision_get()
        request, sent = rerun_start(
            user=make_user("ana", rerunner=True),
            idempotency_key="revision-1",
            data=RerunInput(scope="failed"),
            source=source,
        )
        assert sent and request.runs.exists()
        assert revision_get() > before
