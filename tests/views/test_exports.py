"""CSV exports of the history and of a run's results: the pages' filters, every row, streamed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.exports import RESULT_HEADER, RUN_HEADER
from runs.models import FailureGroup, Trigger
from runs.status import Status
from tests.conftest import database_is_postgres
from tests.factories import (
    make_agent,
    make_result,
    make_results,
    make_run,
    make_runs,
    make_schedule,
    make_test_case,
    make_user,
)

pytestmark = pytest.mark.django_db

HISTORY = "/runs/"
EXPORT = "/runs/export.csv"


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.streaming
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(body)))


def exported_ids(response) -> list[int]:
    _header, *rows = read_csv(response)
    return [int(row[0]) for row in rows]


def page_ids(response) -> list[int]:
    return [run.pk for run in response.context["page"].items]


def results_url(run) -> str:
    return f"/runs/{run.pk}/results.csv"


def test_it_exports_a_run_with_every_column(viewer_client):
    schedule = make_schedule(title="Checkout nightly")
    source = make_run(schedule, status=Status.FAILED)
    started = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    run = make_run(
        schedule,
        external_id="wf-42",
        attempt=2,
        status=Status.FAILED,
        trigger=Trigger.RERUN,
        build="2.0.1",
        started_at=started,
        finished_at=started + timedelta(seconds=90, milliseconds=500),
        duration=timedelta(seconds=90, milliseconds=500),
        total_count=10,
        passed_count=7,
        failed_count=2,
        other_count=1,
        rerun_of=source,
    )
    header, *rows = read_csv(viewer_client.get(EXPORT, {"build": "2.0.1"}))
    assert tuple(header) == RUN_HEADER
    assert rows == [
        [
            *(str(run.pk), schedule.orchestrator.name, "Checkout nightly", "wf-42", "2"),
            *("failed", "rerun", "2.0.1", "2026-03-05T12:00:00+00:00"),
            *("2026-03-05T12:01:30.500000+00:00", "90.5", "10", "7", "2", "1", str(source.pk)),
            f"http://testserver/runs/{run.pk}/",
        ]
    ]


def test_it_streams_a_dated_utf8_attachment(viewer_client):
    make_run(build="Prüfung ✓")
    response = viewer_client.get(EXPORT)
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="runboard-runs-{today}.csv"'
    assert read_csv(viewer_client.get(EXPORT))[1][7] == "Prüfung ✓"


def test_it_exports_every_run_not_one_page_in_the_page_s_order(viewer_client):
    runs = make_runs(120)
    newest_first = [run.pk for run in runs]
    assert exported_ids(viewer_client.get(EXPORT)) == newest_first
    assert exported_ids(viewer_client.get(EXPORT, {"sort": "started"})) == newest_first[::-1]
    # A cursor of the page's changes nothing: the export is every row, from the first.
    page = viewer_client.get(HISTORY)
    after = page.context["page"].next_cursor
    assert exported_ids(viewer_client.get(EXPORT, {"after": after})) == newest_first


def test_it_keeps_the_rows_the_page_keeps_for_each_filter(viewer_client):
    schedule = make_schedule(title="Checkout suite")
    agent = make_agent(schedule.orchestrator)
    target = make_run(
        schedule,
        status=Status.FAILED,
        trigger=Trigger.RERUN,
        build="2.0.1",
        started_at=datetime(2026, 3, 5, 12, tzinfo=UTC),
    )
    make_result(target, agent=agent)
    other = make_run(build="1.0.0", started_at=datetime(2026, 2, 1, tzinfo=UTC))
    make_run(status=Status.ERROR, duration=None, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    cases = [
        {"orchestrator": schedule.orchestrator.name},
        {"schedule": schedule.pk},
        {"status": "failed"},
        {"status": "failures"},
        {"agent": agent.pk},
        {"trigger": "rerun"},
        {"build": "2.0"},
        {"date_from": "2026-03-05", "date_to": "2026-03-05"},
        {"date_to": "2026-02-01"},
        {"q": "checkout"},
        {"q": target.external_id},
        {"q": "2.0.1"},
        {"sort": "started"},
        {"sort": "-duration"},
        {"sort": "duration", "status": "failures"},
        # Invalid filters are ignored, as on the page.
        {"status": "bogus", "date_from": "not-a-date", "schedule": "999999"},
    ]
    for params in cases:
        expected = page_ids(viewer_client.get(HISTORY, params))
        assert exported_ids(viewer_client.get(EXPORT, params)) == expected, params
    assert exported_ids(viewer_client.get(EXPORT, {"q": "checkout"})) == [target.pk]
    assert exported_ids(viewer_client.get(EXPORT, {"date_to": "2026-02-01"}))[0] == other.pk


def test_it_makes_formulas_inert(viewer_client):
    schedule = make_schedule(title='=HYPERLINK("http://evil","x")')
    make_run(schedule, external_id="-2+3", build="@SUM(A1)")
    make_run(schedule, external_id="\tcmd", build="\rcmd")
    make_run(schedule, external_id="+1", build="plain -1")
    rows = read_csv(viewer_client.get(EXPORT, {"sort": "started"}))[1:]
    assert [row[2] for row in rows] == ['\'=HYPERLINK("http://evil","x")'] * 3
    assert [(row[3], row[7]) for row in rows] == [
        ("'-2+3", "'@SUM(A1)"),
        ("'\tcmd", "'\rcmd"),
        ("'+1", "plain -1"),
    ]


def test_it_needs_a_login(client):
    run = make_run()
    for url in (EXPORT, results_url(run)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_the_history_offers_its_export_with_its_filters(viewer_client):
    make_runs(60)
    page = viewer_client.get(HISTORY, {"status": "passed"})
    after = page.context["page"].next_cursor
    html = viewer_client.get(HISTORY, {"status": "passed", "after": after}).content.decode()
    assert '<a href="/runs/export.csv?status=passed" download>Export CSV</a>' in html
    # The table alone (what htmx swaps in when a filter changes) carries it too.
    fragment = viewer_client.get(HISTORY, {"trigger": "manual"}, HTTP_HX_REQUEST="true")
    assert 'href="/runs/export.csv?trigger=manual"' in fragment.content.decode()


def count_queries(client, url: str, params: dict | None = None) -> tuple[int, int]:
    """(queries, rows) of one export, read to its end."""
    with CaptureQueriesContext(connection) as captured:
        rows = len(read_csv(client.get(url, params or {}))) - 1
    return len(captured.captured_queries), rows


def test_the_history_export_runs_the_same_queries_for_10_or_2500_runs(
    viewer_client, django_assert_num_queries
):
    """2,500 rows cross a chunk of the iterator (2,000): still the same queries."""
    schedule = make_schedule()
    make_runs(10, schedule)
    params = {"schedule": schedule.pk, "status": "passed"}
    queries, rows = count_queries(viewer_client, EXPORT, params)
    assert rows == 10
    # The session, its user, the schedule the filter names, and the runs.
    assert queries <= 4
    make_runs(2490, schedule)
    with django_assert_num_queries(queries):
        assert len(read_csv(viewer_client.get(EXPORT, params))) - 1 == 2500


def make_failure(run, case, agent, seq: int, message: str, fingerprint: str = "", **fields):
    return make_result(
        run,
        test_case=case,
        agent=agent,
        case_key=case.external_id,
        seq=seq,
        status=Status.FAILED,
        message=message,
        fingerprint=fingerprint,
        **fields,
    )


def test_it_exports_a_run_s_results_with_every_column(viewer_client):
    run = make_run(status=Status.FAILED)
    agent = make_agent(run.orchestrator, title="Windows 11")
    case = make_test_case(run.orchestrator, title="Login works", external_id="flow-7")
    started = datetime(2026, 3, 5, 12, tzinfo=UTC)
    FailureGroup.objects.create(fingerprint="abc123", version=1, normalized="Element <n> gone")
    failed = make_failure(
        run,
        case,
        agent,
        2,
        "Element 42 gone",
        fingerprint="abc123",
        external_id="item-2",
        started_at=started,
        finished_at=started + timedelta(seconds=3),
        duration=timedelta(seconds=3),
        retry_count=1,
        iterations=[{"id": 1}, {"id": 2}],
    )
    bare = make_result(run, case_key="task_b", external_id="item-1", seq=1, started_at=None)
    response = viewer_client.get(results_url(run))
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == (
        f'attachment; filename="runboard-run-{run.pk}-results-{today}.csv"'
    )
    header, *rows = read_csv(response)
    assert tuple(header) == RESULT_HEADER
    assert rows == [
        [
            str(bare.pk),
            "task_b",
            "task_b",
            "item-1",
            "passed",
            "",
            "",
            "",
            "",
            "0",
            "0",
            "",
            "",
            "",
        ],
        [
            *(str(failed.pk), "Login works", "flow-7", "item-2", "failed", "Windows 11"),
            *("2026-03-05T12:00:00+00:00", "2026-03-05T12:00:03+00:00", "3.0", "1", "2"),
            *("Element 42 gone", "Element <n> gone", f"http://testserver/cases/{case.pk}/"),
        ],
    ]


def test_it_keeps_the_results_the_run_page_keeps(viewer_client):
    run = make_run(status=Status.FAILED)
    one, two = make_agent(run.orchestrator), make_agent(run.orchestrator)
    case = make_test_case(run.orchestrator)
    passed = make_result(run, agent=one, seq=1)
    failed = make_failure(run, case, one, 3, "=cmd|' /C calc'!A0")
    error = make_result(run, agent=two, seq=2, status=Status.ERROR, message="-boom")
    stranger = make_agent(run.orchestrator)  # ran nothing of this run: not offered, ignored

    def ids(params: dict) -> list[int]:
        return exported_ids(viewer_client.get(results_url(run), params))

    assert ids({}) == [passed.pk, error.pk, failed.pk]
    assert ids({"status": "failures"}) == [error.pk, failed.pk]
    assert ids({"status": "error"}) == [error.pk]
    assert ids({"agent": one.pk}) == [passed.pk, failed.pk]
    assert ids({"agent": one.pk, "status": "failures"}) == [failed.pk]
    assert ids({"agent": stranger.pk, "status": "bogus"}) == [passed.pk, error.pk, failed.pk]
    messages = [row[11] for row in read_csv(viewer_client.get(results_url(run)))[1:]]
    assert messages == ["", "'-boom", "'=cmd|' /C calc'!A0"]


def test_the_run_page_offers_its_results_export_with_its_filters(viewer_client):
    run = make_run()
    make_result(run)
    html = viewer_client.get(f"/runs/{run.pk}/", {"status": "passed"}).content.decode()
    assert f'href="/runs/{run.pk}/results.csv?status=passed" download>Export CSV</a>' in html


def test_an_unknown_run_has_no_results_export(viewer_client):
    assert viewer_client.get("/runs/999999/results.csv").status_code == 404


def test_the_results_export_runs_the_same_queries_for_10_or_2500_results(
    viewer_client, django_assert_num_queries
):
    run = make_run()
    agent = make_agent(run.orchestrator)
    make_results(run, 10, agent=agent)
    params = {"agent": agent.pk, "status": "passed"}
    queries, rows = count_queries(viewer_client, results_url(run), params)
    assert rows == 10
    # The session, its user, the run, its counts (the agent filter's choices), the results.
    assert queries <= 5
    make_results(run, 2490, agent=agent)
    with django_assert_num_queries(queries):
        assert len(read_csv(viewer_client.get(results_url(run), params))) - 1 == 2500


@pytest.mark.django_db(transaction=True)
def test_it_streams_outside_a_transaction_as_in_production(client):
    """Autocommit, as a request runs: on PostgreSQL the rows come through a cursor declared
    WITH HOLD, which outlives the statement's own transaction."""
    client.force_login(make_user())
    runs = make_runs(2100)
    run = runs[0]
    make_results(run, 2100)
    with CaptureQueriesContext(connection) as captured:
        assert exported_ids(client.get(EXPORT)) == [r.pk for r in runs]
        assert len(read_csv(client.get(results_url(run)))) == 2101
    if database_is_postgres():
        declared = [q["sql"] for q in captured.captured_queries if "DECLARE" in q["sql"]]
        assert len(declared) == 2, declared


@pytest.mark.postgres
def test_on_postgresql_the_export_reads_through_a_server_side_cursor(viewer_client):
    make_runs(2100)
    with CaptureQueriesContext(connection) as captured:
        assert len(read_csv(viewer_client.get(EXPORT))) == 2101
    declared = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("DECLARE")]
    assert len(declared) == 1 and "runs_run" in declared[0]
