"""Agents page with per-agent counts; orchestrators status page; /go/ links."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.services.agent_counts import agent_counts_rebuild
from runs.status import Status
from tests.factories import make_agent, make_orchestrator, make_result, make_run, make_schedule

pytestmark = pytest.mark.django_db


def test_it_counts_runs_results_and_failures_per_agent(viewer_client):
    schedule = make_schedule()
    agent = make_agent(schedule.orchestrator, title="Windows 11 agent")
    idle = make_agent(schedule.orchestrator, title="Idle agent")
    for status in [Status.PASSED, Status.FAILED]:
        run = make_run(schedule)
        make_result(run, agent=agent, status=status)
        make_result(run, agent=agent, status=Status.PASSED)
    # Factories write results directly; sync keeps the counts (tests/services/test_sync.py).
    agent_counts_rebuild()
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get("/agents/")
    assert not any("runs_executionresult" in q["sql"] for q in queries.captured_queries)
    rows = {a.pk: a for a in response.context["agents"]}
    assert (rows[agent.pk].run_count, rows[agent.pk].result_count, rows[agent.pk].failed_count) == (
        2,
        4,
        1,
    )
    assert rows[idle.pk].result_count == 0
    html = response.content.decode()
    assert f'href="/runs/?agent={agent.pk}">2</a>' in html and "25%" in html


def test_it_shows_each_orchestrator_sync_state_and_counts(viewer_client):
    broken = make_orchestrator(
        name="broken", last_sync_error="timed out", last_sync_error_at=timezone.now()
    )
    healthy = make_orchestrator(name="healthy", last_synced_at=timezone.now())
    schedule = make_schedule(healthy)
    make_run(schedule)
    make_run(schedule, status=Status.RUNNING)
    agent_counts_rebuild()  # the factories write runs without the counts sync keeps
    response = viewer_client.get("/orchestrators/")
    rows = {o.name: o for o in response.context["orchestrators"]}
    assert (rows["healthy"].run_count, rows["healthy"].schedule_count) == (2, 1)
    assert rows["healthy"].has_running and not rows["broken"].has_running
    assert rows["broken"].run_count == 0
    html = response.content.decode()
    assert "timed out" in html and "status-error" in html and "status-passed" in html
    assert broken.name in html


def test_go_opens_the_newest_attempt(viewer_client):
    run = make_run(external_id="wf-123")
    newer = make_run(run.schedule, external_id="wf-123", attempt=2, rerun_of=run)
    response = viewer_client.get(f"/go/{run.orchestrator.name}/wf-123")
    assert response.status_code == 302 and response["Location"] == f"/runs/{newer.pk}/"


def test_go_explains_an_unknown_run(viewer_client):
    make_orchestrator(name="lab")
    response = viewer_client.get("/go/lab/nope-42")
    assert response.status_code == 404
    html = response.content.decode()
    assert "does not know this run yet" in html and "nope-42" in html
