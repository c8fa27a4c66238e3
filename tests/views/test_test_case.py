"""Test case page: pass/fail strip, results across runs by key, flakiness, failure rate per agent."""

from __future__ import annotations

import re
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


def strip_ids(html: str) -> list[int]:
    return [
        int(pk) for pk in re.findall(r'class="strip-cell[^"]*"[^>]*data-result-id="(\d+)"', html)
    ]


def row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="case-result-(\d+)"', html)]


def test_the_strip_and_the_table_show_the_same_results_in_the_same_order(viewer_client, history):
    case = history["case"]
    response = viewer_client.get(reverse("runs:test_case", args=[case.pk]))
    html = response.content.decode()
    assert "<title>Test case Login works · Runboard</title>" in html
    items = response.context["page"].items
    assert len(items) == 30
    assert items[0].run_id == history["runs"][-1].pk  # newest first
    assert strip_ids(html) == row_ids(html) == [result.pk for result in items]
    assert 'class="strip-cell status-failed"' in html and ">F</span>" in html
    assert f'href="/runs/{history["runs"][-1].pk}/"' in html
    assert (
        "30 results, newest first: left to right in the strip, top to bottom in the table." in html
    )


def test_it_pages_results_across_runs_by_key_and_the_strip_moves_with_the_table(
    viewer_client, history
):
    case = history["case"]
    url = reverse("runs:test_case", args=[case.pk])
    first = viewer_client.get(url)
    second = viewer_client.get(url, {"after": first.context["page"].next_cursor})
    third = viewer_client.get(url, {"after": second.context["page"].next_cursor})
    assert [len(r.context["page"].items) for r in (first, second, third)] == [30, 30, 1]
    htmx = viewer_client.get(
        url, {"after": first.context["page"].next_cursor}, HTTP_HX_REQUEST="true"
    )
    fragment = htmx.content.decode()
    assert fragment.lstrip().startswith('<div id="case-results"')
    assert (
        strip_ids(fragment)
        == row_ids(fragment)
        == [result.pk for result in second.context["page"].items]
    )


def test_from_a_run_it_shows_a_window_of_results_before_and_after_it(viewer_client, history):
    case, runs = history["case"], history["runs"]
    url = reverse("runs:test_case", args=[case.pk])
    came_from = runs[30]
    response = viewer_client.get(url, {"from": came_from.pk})
    page = response.context["page"]
    run_ids = [result.run_id for result in page.items]
    assert run_ids == [run.pk for run in reversed(runs[20:41])]  # 10 newer, it, 10 older
    html = response.content.decode()
    assert strip_ids(html) == row_ids(html) == [result.pk for result in page.items]
    assert html.count('<tr id="case-result-') == 21
    assert html.count("the run you came from") == 1
    assert html.count(" is-from") == 2  # its row and its strip cell
    # The window pages on by key from either end.
    newer = viewer_client.get(url, {"from": came_from.pk, "before": page.prev_cursor})
    assert [r.run_id for r in newer.context["page"].items] == [
        run.pk for run in reversed(runs[41:60])
    ]
    older = viewer_client.get(url, {"from": came_from.pk, "after": page.next_cursor})
    older_ids = [r.run_id for r in older.context["page"].items]
    assert older_ids[0] == runs[19].pk and len(older_ids) == 21  # runs 19..0, the rerun


def test_from_the_newest_run_it_shows_the_results_before_it_not_one_row(viewer_client, history):
    case, runs = history["case"], history["runs"]
    response = viewer_client.get(reverse("runs:test_case", args=[case.pk]), {"from": runs[-1].pk})
    page = response.context["page"]
    assert [r.run_id for r in page.items] == [run.pk for run in reversed(runs[49:60])]
    assert page.prev_cursor is None and page.next_cursor


def test_a_rerun_inside_the_window_is_shown_and_marked(viewer_client, history):
    case, runs = history["case"], history["runs"]
    response = viewer_client.get(reverse("runs:test_case", args=[case.pk]), {"from": runs[3].pk})
    run_ids = [result.run_id for result in response.context["page"].items]
    rerun = history["rerun"].pk
    assert run_ids.index(rerun) == run_ids.index(runs[3].pk) - 1  # just after it, above it
    html = response.content.decode()
    assert html.count('<span class="tag tag-rerun">rerun</span>') == 1
    assert html.count(" is-rerun") == 1


def test_it_measures_flakiness_in_results_of_original_runs(viewer_client, history):
    # A rerun whose source Runboard never saw (Leapwork Run Flow by Id) is no original run.
    orphan = make_run(history["runs"][0].schedule, trigger=Trigger.RERUN, status=Status.FAILED)
    make_result(orphan, test_case=history["case"], status=Status.FAILED)
    response = viewer_client.get(reverse("runs:test_case", args=[history["case"].pk]))
    flakiness = response.context["stats"].flakiness
    assert (flakiness.results, flakiness.failed, flakiness.flaky) == (60, 20, 1)
    html = response.content.decode()
    assert "Of the <strong>60</strong> results in original runs, <strong>20</strong> failed" in html
    assert "The 2 results in reruns and later attempts are not counted here." in html


def test_every_count_on_the_page_counts_results_and_they_add_up(viewer_client, history):
    response = viewer_client.get(reverse("runs:test_case", args=[history["case"].pk]))
    stats = response.context["stats"]
    assert stats.results == 61 == sum(agent.results for agent in stats.agents)
    assert stats.results == stats.flakiness.results + stats.rerun_results
    assert stats.failed == 20
    html = response.content.decode()
    assert "<strong>61</strong> results: a result is one execution of this case in a run." in html
    assert "60 in original runs, 1 in reruns and later attempts;" in html
    assert '<th scope="row">Every agent</th><td>61</td><td>20</td>' in html


def test_it_shows_the_failure_rate_per_agent_coloured_by_meaning(viewer_client, history):
    response = viewer_client.get(reverse("runs:test_case", args=[history["case"].pk]))
    agents = response.context["stats"].agents
    assert [(a.title, a.failed, a.results) for a in agents] == [
        ("Agent B", 20, 20),
        ("Agent A", 0, 41),
    ]
    html = response.content.decode()
    # 100% is red (and the meter's optimum is 0, so even its native colour is not green).
    assert (
        '<meter class="rate rate-high" min="0" max="100" low="10" high="50" optimum="0" '
        'value="100.0" aria-label="failure rate">100%</meter> '
        '<span class="rate-value rate-high">100%</span>'
    ) in html
    assert '<meter class="rate rate-none"' in html and 'value="0.0"' in html
    assert '<p class="big rate-low">2%</p>' in html  # flakiness 1 of 60
    assert "style=" not in html.split("<main", 1)[1]  # colours by class, never inline


def test_an_unknown_case_is_a_404(viewer_client):
    assert viewer_client.get(reverse("runs:test_case", args=[424242])).status_code == 404


def test_the_page_of_the_oldest_run_has_no_next_page(viewer_client, history):
    case, oldest = history["case"], history["runs"][0]
    response = viewer_client.get(reverse("runs:test_case", args=[case.pk]), {"from": oldest.pk})
    page = response.context["page"]
    assert page.items[-1].run_id == oldest.pk
    assert page.next_cursor is None and page.prev_cursor


def test_it_orders_results_by_their_own_start_newest_first_and_unstarted_last(viewer_client):
    schedule = make_schedule()
    case = make_test_case(schedule.orchestrator)
    long_run = make_run(schedule, started_at=BASE)
    short_run = make_run(schedule, started_at=BASE + timedelta(hours=1))
    late = make_result(long_run, test_case=case, started_at=BASE + timedelta(hours=2))
    early = make_result(short_run, test_case=case)
    queued = make_result(short_run, test_case=case, started_at=None, status=Status.QUEUED)

    response = viewer_client.get(reverse("runs:test_case", args=[case.pk]))

    assert [r.pk for r in response.context["page"].items] == [late.pk, early.pk, queued.pk]
