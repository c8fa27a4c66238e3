"""The SQL the ORM cannot write (runs.services.sql), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from runs.models import Agent, ExecutionResult
from runs.services.sql import advisory_xact_lock, agent_counts_rebuild, results_prune
from runs.status import Status
from tests.factories import make_agent, make_result, make_run

pytestmark = pytest.mark.django_db


def test_it_prunes_the_results_not_kept_in_one_statement():
    run, other = make_run(), make_run()
    kept = [make_result(run, external_id=f"keep-{n}") for n in range(3)]
    make_result(run, external_id="gone")
    untouched = make_result(other, external_id="gone")

    with CaptureQueriesContext(connection) as queries:
        results_prune([run.pk], [(run.pk, r.external_id) for r in kept])

    assert len(queries.captured_queries) == 1
    assert set(run.results.values_list("external_id", flat=True)) == {r.external_id for r in kept}
    assert ExecutionResult.objects.filter(pk=untouched.pk).exists()


def test_it_keeps_a_pair_only_for_its_own_run():
    run, other = make_run(), make_run()
    make_result(run, external_id="same")
    make_result(other, external_id="same")

    results_prune([run.pk, other.pk], [(other.pk, "same")])

    assert not run.results.exists() and other.results.count() == 1


def test_it_prunes_nothing_without_runs():
    with CaptureQueriesContext(connection) as queries:
        results_prune([], [])
    assert queries.captured_queries == []


def test_the_advisory_lock_holds_inside_a_transaction_and_is_a_no_op_on_sqlite():
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        advisory_xact_lock(1, 2)
        advisory_xact_lock(3)
    expected = 2 if connection.vendor == "postgresql" else 0
    assert len(queries.captured_queries) == expected


def test_it_recounts_every_agent_in_one_statement():
    run = make_run()
    later = make_run(run.schedule, started_at=run.started_at + timedelta(hours=1))
    busy = make_agent(run.orchestrator)
    idle = make_agent(run.orchestrator)
    Agent.objects.filter(pk=idle.pk).update(
        run_count=5, result_count=5, last_seen_at=later.started_at
    )
    make_result(run, agent=busy, status=Status.ERROR)
    make_result(run, agent=busy, status=Status.PASSED)
    make_result(later, agent=busy, status=Status.FAILED)
    make_result(later, agent=None)

    with CaptureQueriesContext(connection) as queries:
        updated = agent_counts_rebuild(failure_statuses=["failed", "error"])

    assert len(queries.captured_queries) == 1 and updated == 2
    busy.refresh_from_db()
    idle.refresh_from_db()
    assert (busy.run_count, busy.result_count, busy.failed_count) == (2, 3, 2)
    assert busy.last_seen_at == later.started_at
    assert (idle.run_count, idle.result_count, idle.failed_count, idle.last_seen_at) == (
        0,
        0,
        0,
        None,
    )
