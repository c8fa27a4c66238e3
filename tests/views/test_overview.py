"""Overview: failing schedules, runs in progress, recent reruns, orchestrators with sync errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import RerunRequest, RerunScope, RerunState, Trigger
from runs.status import Status
from tests.factories import make_orchestrator, make_run, make_runs, make_schedule

pytestmark = pytest.mark.django_db


def test_it_lists_schedules_whose_latest_run_failed(viewer_client):
    failing = make_schedule(title="Broken suite")
    recovered = make_schedule(title="Recovered suite")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    make_run(failing, started_at=base, status=Status.PASSED)
    make_run(failing, started_at=base + timedelta(hours=1), status=Status.ERROR)
    make_run(recovered, started_at=base, status=Status.FAILED)
    make_run(recovered, started_at=base + timedelta(hours=1), status=Status.PASSED)
    response = viewer_client.get("/")
    assert [s.title for s in response.context["overview"].failing_schedules] == ["Broken suite"]
    html = response.content.decode()
    assert "Broken suite" in html and "Recovered suite" not in html


def test_with_no_mute_in_force_failing_schedules_are_read_by_their_kept_latest_run(
    viewer_client,
):
    for n in range(3):
        schedule = make_schedule(title=f"Suite {n}")
        make_runs(5, schedule, status=Status.FAILED)
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get("/")
    assert len(response.context["overview"].failing_schedules) == 3
    (failing,) = [q["sql"] for q in queries if q["sql"].startswith('SELECT "runs_schedule"')]
    # By the key the run writer keeps, with no search of each schedule's runs nor any look
    # at their results (a mute in force would need that: tests/views/test_mutes.py).
    assert '"runs_schedule"."latest_run_id"' in failing
    assert "LIMIT 1" not in failing and "runs_executionresult" not in failing


def test_it_lists_runs_in_progress_which_poll(viewer_client):
    running = make_run(status=Status.RUNNING, finished_at=None, duration=None)
    make_run(status=Status.PASSED)
    response = viewer_client.get("/")
    assert [r.pk for r in response.context["overview"].in_progress] == [running.pk]
    assert f'hx-get="/runs/{running.pk}/row/" hx-trigger="every 3s"' in response.content.decode()


def test_it_shows_recent_rerun_requests_and_their_outcomes(viewer_client, user):
    source = make_run(status=Status.FAILED)
    request = RerunRequest.objects.create(
        orchestrator=source.orchestrator,
        source_run=source,
        requested_by=user,
        scope=RerunScope.FAILED,
        state=RerunState.ACCEPTED,
    )
    produced = make_run(
        source.schedule,
        rerun_of=source,
        rerun_request=request,
        trigger=Trigger.RERUN,
        status=Status.PASSED,
    )
    html = viewer_client.get("/").content.decode()
    assert "Failed only of" in html and "Accepted" in html
    assert f'href="/runs/{produced.pk}/"' in html and "status-passed" in html


def test_it_lists_orchestrators_with_sync_errors(viewer_client):
    make_orchestrator(
        name="lab-leapwork",
        last_sync_error="401 Unauthorized: the access key was refused",
        last_sync_error_at=timezone.now(),
    )
    make_orchestrator(name="fine-one")
    html = viewer_client.get("/").content.decode()
    assert "lab-leapwork" in html and "access key was refused" in html
    assert "fine-one" not in html


def test_a_quiet_overview_says_all_is_well(viewer_client):
    html = viewer_client.get("/").content.decode()
    assert "Nothing is running." in html and "No reruns requested yet." in html
