"""Agents page with per-agent counts; orchestrators status page; /go/ links."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import Agent
from runs.selectors import PAGE_SIZE
from runs.services.agent_counts import agent_counts_rebuild
from runs.status import Status
from tests.factories import (
    make_agent,
    make_agents,
    make_orchestrator,
    make_result,
    make_run,
    make_schedule,
)

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


def many_agents(count: int) -> list:
    """`count` agents, each seen a minute before the last, and one never seen."""
    orchestrator = make_orchestrator()
    make_agents(count, orchestrator)
    make_agent(orchestrator, title="never seen")
    return list(Agent.objects.order_by(F("last_seen_at").desc(nulls_last=True), "-id"))


def test_the_agents_come_a_page_at_a_time_the_most_recently_seen_first(viewer_client):
    agents = many_agents(PAGE_SIZE + 10)

    first = viewer_client.get("/agents/")
    listed = first.context["agents"]
    assert listed == agents[:PAGE_SIZE]
    html = first.content.decode()
    after = html[html.index('href="?after=') + 6 :].split('"')[0].replace("&amp;", "&")

    second = viewer_client.get(f"/agents/{after}")

    assert second.context["agents"] == agents[PAGE_SIZE:]
    assert second.context["agents"][-1].title == "never seen"
    assert 'rel="prev"' in second.content.decode()


def test_the_agents_page_reads_the_same_queries_for_three_agents_or_thousands(viewer_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer_client.get("/agents/").status_code == 200
        return len(captured)

    many_agents(2)
    few = queries()
    many_agents(2000)

    assert queries() == few
    assert len(viewer_client.get("/agents/").context["agents"]) == PAGE_SIZE


def test_agents_are_found_by_title_or_host(viewer_client):
    many_agents(120)

    by_title = viewer_client.get("/agents/", {"q": "WORKER-011"}).context["agents"]
    by_host = viewer_client.get("/agents/", {"q": "pod-7.cluster"}).context["agents"]
    fragment = viewer_client.get("/agents/", {"q": "nobody"}, HTTP_HX_REQUEST="true")

    assert [a.title for a in by_title] == [f"worker-{i:04d}" for i in range(110, 120)]
    assert [a.title for a in by_host] == ["worker-0007"]
    html = fragment.content.decode()
    assert html.strip().startswith('<section id="agent-list"') and "<h1>" not in html
    assert "No agent has “nobody” in its title or host." in html


def test_a_cursor_that_is_not_one_of_ours_shows_the_first_page(viewer_client):
    agents = many_agents(3)

    response = viewer_client.get("/agents/", {"after": "not-a-cursor"})

    assert response.status_code == 200 and response.context["agents"] == agents


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
