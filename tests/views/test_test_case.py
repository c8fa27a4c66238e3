"""Test case page: pass/fail strip, results across runs by key, flakiness, failure rate per agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from runs.models import Trigger
from runs.status import Status
from tests.factories import make_agent, make_result, make_run, make_schedule, make_test_case

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def history():
    """A case over 60 runs: it fails on agent B every third run, and one failure passes on rerun."""
    schedule = make_schedule(title="Smoke")
    orchestrator = schedule.orchestrator
    case = make_test_case(orchestrator, title="Login works")
    agent_a = make_agent(orchestrator, title="Agent A")
    agent_b = make_agent(orchestrator, title="Agent B")
    runs, results = [], []
    for i in range(60):
        failing = i % 3 == 0
        run = make_run(
            schedule,
            started_at=BASE + timedelta(hours=i),
            status=Status.FAILED if failing else Status.PASSED,
        )
        runs.append(run)
        results.append(
            make_result(
                run,
                test_case=case,
                agent=agent_b if failing else agent_a,
                status=Status.FAILED if failing else Status.PASSED,
                message="boom" if failing else "",
            )
        )
    rerun = make_run(
        schedule,
        rerun_of=runs[3],
        trigger=Trigger.RERUN,
        started_at=BASE + timedelta(hours=3, minutes=30),
    )
    make_result(rerun, test_case=case, agent=agent_a, status=Status.PASSED)
    return {"case": case, "runs": runs, "rerun": rerun, "agent_a": agent_a, "agent_b": agent_b}


def test_it_shows_the_newest_results_as_a_strip_with_letters_and_links(viewer_client, history):
    case = history["case"]
    response = viewer_client.get(reverse("runs:test_case", args=[case.pk]))
    html = response.content.decode()
    assert "<title>Test case Login works · Runboard</title>" in html
    strip = response.context["strip"]
    assert len(strip) == 30
    assert strip[-1].run_id == history["runs"][-1].pk  # newest on the right
    assert 'class="strip-cell status-failed"' in html and ">F</span>" in html
    assert f'href="/runs/{history["runs"][-1].pk}/"' in html


def test_it_pages_results_across_runs_by_key(viewer_client, history):
    case = history["case"]
    url = reverse("runs:test_case", args=[case.pk])
    first = viewer_client.get(url)
    items = first.context["page"].items
    assert len(items) == 50 and items[0].run_id == history["runs"][-1].pk
    second = viewer_client.get(url, {"after": first.context["page"].next_cursor})
    assert len(second.context["page"].items) == 11
    htmx = viewer_client.get(
        url, {"after": first.context["page"].next_cursor}, HTTP_HX_REQUEST="true"
    )
    assert htmx.content.decode().lstrip().startswith('<div id="case-results"')


def test_it_highlights_the_run_you_came_from_with_the_runs_after_it(viewer_client, history):
    case, runs = history["case"], history["runs"]
    came_from = runs[3]
    response = viewer_client.get(reverse("runs:test_case", args=[case.pk]), {"from": came_from.pk})
    items = response.context["page"].items
    run_ids = [result.run_id for result in items]
    assert came_from.pk in run_ids
    assert run_ids.index(came_from.pk) == len(items) - 1  # everything above it came later
    assert history["rerun"].pk in run_ids
    assert "the run you came from" in response.content.decode()


def test_it_measures_flakiness_through_reruns(viewer_client, history):
    response = viewer_client.get(reverse("runs:test_case", args=[history["case"].pk]))
    flakiness = response.context["flakiness"]
    assert (flakiness.runs, flakiness.failed, flakiness.flaky) == (60, 20, 1)
    assert "in <strong>1</strong> of 60 runs" in response.content.decode()


def test_it_shows_the_failure_rate_per_agent(viewer_client, history):
    response = viewer_client.get(reverse("runs:test_case", args=[history["case"].pk]))
    rates = response.context["agent_rates"]
    assert [(row["agent__title"], row["failed"], row["total"]) for row in rates] == [
        ("Agent B", 20, 20),
        ("Agent A", 0, 41),
    ]
    assert "100%" in response.content.decode()


def test_an_unknown_case_is_a_404(viewer_client):
    assert viewer_client.get(reverse("runs:test_case", args=[424242])).status_code == 404


def test_the_page_of_the_oldest_run_has_no_next_page(viewer_client, history):
    case, oldest = history["case"], history["runs"][0]
    response = viewer_client.get(reverse("runs:test_case", args=[case.pk]), {"from": oldest.pk})
    page = response.context["page"]
    assert page.items[-1].run_id == oldest.pk
    assert page.next_cursor is None and page.prev_cursor
