"""The SQL the ORM cannot write (runs.services.sql), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from runs.models import Agent, ExecutionResult, Run
from runs.orchestrators.base import IterationSnapshot, ResultSnapshot
from runs.services.sql import (
    advisory_xact_lock,
    agent_counts_rebuild,
    results_prune,
    results_upsert,
    run_counts_write,
)
from runs.services.sync.catalog import upsert
from runs.services.sync.classify import RESULT_COLUMNS, result_row
from runs.services.sync.write import RESULT_FIELDS
from runs.status import Status
from tests.factories import make_agent, make_result, make_run, make_runs, make_test_case

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


def test_it_writes_runs_counts_in_one_statement_of_the_same_text_however_many_runs():
    runs = make_runs(12)
    agent = make_agent(runs[0].orchestrator)
    untouched = make_run()
    Run.objects.filter(pk=untouched.pk).update(result_counts=[["passed", None, 1, 0]])
    counts = {
        run.pk: [["failed", agent.pk, n + 1, 0], ["passed", None, 2 * n, n]] if n else []
        for n, run in enumerate(runs)
    }

    statements = []
    for batch in (dict(list(counts.items())[:2]), dict(list(counts.items())[2:])):
        with CaptureQueriesContext(connection) as queries:
            assert run_counts_write(batch) == len(batch)
        statements += [q["sql"] for q in queries.captured_queries]

    assert len(statements) == 2
    # The batch travels as one parameter: the statement does not grow with it.
    first, second = (sql.split(" FROM ", 1)[0] for sql in statements)
    assert first == second
    assert dict(Run.objects.filter(pk__in=counts).values_list("pk", "result_counts")) == counts
    assert Run.objects.get(pk=untouched.pk).result_counts == [["passed", None, 1, 0]]
    assert run_counts_write({}) == 0


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


BERLIN = timezone(timedelta(hours=1))


def snapshots() -> list[ResultSnapshot]:
    """Results with every kind of value a column holds, the awkward ones included."""
    started = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=BERLIN)
    return [
        ResultSnapshot(
            external_id="plain",
            case_key="flow-1",
            case_title="Flow 1",
            status=Status.PASSED,
            agent_id="agent-1",
            started_at=started,
            finished_at=started + timedelta(seconds=3, microseconds=7),
        ),
        ResultSnapshot(
            external_id="awkward",
            case_key="flow-2",
            case_title="Flow 2",
            status=Status.FAILED,
            vendor_status="Failed",
            started_at=datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC),
            duration=timedelta(days=1, hours=2, microseconds=1),
            message="tab\there, newline\nthere, back\\slash, quote ' \" and ünïcödé ✓",
            log_excerpt="\\N is not NULL",
            seq=7,
            retry_count=2,
            input={"nested": {"list": [1, 2.5, None, True]}, "text": "a\tb", "empty": ""},
            is_data_driven=True,
            iterations=(IterationSnapshot("i-1", "Row 1", Status.ERROR, "Timeout"),),
        ),
        ResultSnapshot(
            external_id="x" * 250, case_key="", case_title="", status=Status.QUEUED, seq=3
        ),
    ]


def rows(run_id: int, case_ids: dict[str, int], agent_ids: dict[str, int]) -> list[tuple]:
    return [
        result_row(r, run_id=run_id, case_ids=case_ids, agent_ids=agent_ids) for r in snapshots()
    ]


def ids_for(orchestrator: Any) -> tuple[dict[str, int], dict[str, int]]:
    return {"flow-1": make_test_case(orchestrator).pk}, {"agent-1": make_agent(orchestrator).pk}


def stored(run_id: int) -> list[tuple]:
    """Every column but the keys as the database holds it (as text on PostgreSQL)."""
    columns = [c for c in RESULT_COLUMNS if c != "run_id"]
    if connection.vendor != "postgresql":
        values = ExecutionResult.objects.filter(run_id=run_id).order_by("external_id")
        return list(values.values_list(*columns))
    listed = ", ".join(f"{c}::text" for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {listed} FROM runs_executionresult WHERE run_id = %s ORDER BY external_id",
            [run_id],
        )
        return cursor.fetchall()


def test_it_upserts_results_by_run_and_external_id():
    run = make_run()
    ids = ids_for(run.orchestrator)
    assert results_upsert(RESULT_COLUMNS, rows(run.pk, *ids), update=RESULT_FIELDS) == 3
    changed = [(*row[:5], "failed", *row[6:]) for row in rows(run.pk, *ids)]

    written = results_upsert(RESULT_COLUMNS, changed + changed[:1], update=RESULT_FIELDS)

    assert written == 3
    assert set(run.results.values_list("status", flat=True)) == {"failed"}
    awkward = run.results.get(external_id="awkward")
    assert awkward.input["text"] == "a\tb" and awkward.duration == timedelta(
        days=1, hours=2, microseconds=1
    )
    assert run.results.get(external_id="plain").started_at == snapshots()[0].started_at


@pytest.mark.postgres
@pytest.mark.parametrize("fresh", [False, True], ids=["merged", "new run"])
def test_the_copy_path_stores_what_the_orm_stores(fresh):
    by_copy, by_orm = make_run(), make_run()
    ids = ids_for(by_copy.orchestrator)
    new_runs = {by_copy.pk} if fresh else set()
    results_upsert(RESULT_COLUMNS, rows(by_copy.pk, *ids), update=RESULT_FIELDS, new_runs=new_runs)
    dicts = [dict(zip(RESULT_COLUMNS, row, strict=True)) for row in rows(by_orm.pk, *ids)]
    upsert(ExecutionResult, dicts, unique=["run_id", "external_id"], update=RESULT_FIELDS)

    assert stored(by_copy.pk) == stored(by_orm.pk)
    assert len(stored(by_copy.pk)) == 3


@pytest.mark.postgres
def test_it_writes_results_in_three_statements_however_many_on_postgresql():
    run = make_run()
    many = [(run.pk, f"r-{n}", *row[2:]) for n in range(500) for row in rows(run.pk, {}, {})[:1]]
    with CaptureQueriesContext(connection) as few:
        results_upsert(RESULT_COLUMNS, rows(run.pk, {}, {}), update=RESULT_FIELDS)
    with CaptureQueriesContext(connection) as more:
        results_upsert(RESULT_COLUMNS, many, update=RESULT_FIELDS)

    # Make sure of the staging table, COPY into it (logged like any statement), merge.
    assert len(few.captured_queries) == len(more.captured_queries) == 3
    assert "COPY" in few.captured_queries[1]["sql"]
    assert run.results.count() == 503


@pytest.mark.postgres
def test_a_new_runs_results_go_straight_in_by_one_copy():
    new, stored_before = make_run(), make_run()
    make_result(stored_before, external_id="plain", status=Status.QUEUED)
    batch = rows(new.pk, {}, {}) + rows(stored_before.pk, {}, {})
    with CaptureQueriesContext(connection) as queries:
        written = results_upsert(RESULT_COLUMNS, batch, update=RESULT_FIELDS, new_runs={new.pk})

    statements = [q["sql"] for q in queries.captured_queries]
    assert written == 6 and len(statements) == 4
    assert statements[0].startswith('COPY "runs_executionresult"')
    assert stored_before.results.get(external_id="plain").status == Status.PASSED


def test_it_writes_a_batch_in_a_fixed_number_of_statements_on_each_database():
    run = make_run()
    with CaptureQueriesContext(connection) as queries:
        written = results_upsert(RESULT_COLUMNS, rows(run.pk, {}, {}), update=RESULT_FIELDS)
    statements = [q["sql"] for q in queries.captured_queries]
    assert written == 3
    if connection.vendor == "postgresql":
        assert len(statements) == 3 and "ON CONFLICT" in statements[-1]
    else:  # The ORM's upsert.
        assert len(statements) == 1 and "ON CONFLICT" in statements[0]


def test_it_writes_nothing_without_rows():
    with CaptureQueriesContext(connection) as queries:
        assert results_upsert(RESULT_COLUMNS, [], update=RESULT_FIELDS) == 0
    assert queries.captured_queries == []
