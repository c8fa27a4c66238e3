"""Run history: filters, sorts and keyset pages, all in the URL; rows of running runs poll."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from runs.models import Run, Schedule, Trigger
from runs.services.agent_counts import agent_counts_rebuild
from runs.services.revision import revision_bump
from runs.services.sync import orchestrator_sync
from runs.status import Status
from tests.emulated import emulated, orchestrator_for
from tests.factories import make_agent, make_result, make_run, make_schedule
from tests.services.test_sync import start_run

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
URL = "/runs/"


def run_ids(response) -> list[int]:
    return [run.pk for run in response.context["page"].items]


def test_it_lists_every_run_newest_first(viewer_client):
    old = make_run(started_at=datetime(2026, 1, 1, tzinfo=UTC))
    new = make_run(started_at=datetime(2026, 1, 2, tzinfo=UTC))
    response = viewer_client.get(URL)
    assert response.status_code == 200
    assert run_ids(response) == [new.pk, old.pk]
    assert "<title>Run history · Runboard</title>" in response.content.decode()


def test_it_filters_by_each_field(viewer_client):
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
    agent_counts_rebuild()  # factories write results directly; sync keeps RunAgent
    cases = [
        {"orchestrator": schedule.orchestrator.name},
        {"schedule": schedule.pk},
        {"status": "failed"},
        {"status": "failures"},
        {"agent": agent.pk},
        {"trigger": "rerun"},
        {"build": "2.0"},
        {"date_from": "2026-03-05", "date_to": "2026-03-05"},
        {"q": "checkout"},
        {"q": target.external_id},
        {"q": "2.0.1"},
    ]
    for params in cases:
        assert run_ids(viewer_client.get(URL, params)) == [target.pk], params
    assert run_ids(viewer_client.get(URL, {"date_to": "2026-02-01"})) == [other.pk]


def test_it_ignores_an_invalid_filter_and_says_so(viewer_client):
    run = make_run()
    response = viewer_client.get(URL, {"status": "bogus", "date_from": "not-a-date"})
    assert run_ids(response) == [run.pk]
    assert 'role="alert"' in response.content.decode()


def test_it_sorts_by_duration_both_ways_with_unknown_durations_last(viewer_client):
    short = make_run(duration=timedelta(seconds=5))
    long = make_run(duration=timedelta(minutes=5))
    running = make_run(status=Status.RUNNING, duration=None, finished_at=None)
    assert run_ids(viewer_client.get(URL, {"sort": "duration"})) == [short.pk, long.pk, running.pk]
    assert run_ids(viewer_client.get(URL, {"sort": "-duration"})) == [long.pk, short.pk, running.pk]


def test_it_pages_by_key_forward_and_back(viewer_client):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [make_run(started_at=base + timedelta(minutes=i)) for i in range(120)]
    newest_first = [run.pk for run in reversed(runs)]
    first = viewer_client.get(URL)
    assert run_ids(first) == newest_first[:50]
    page = first.context["page"]
    assert page.prev_cursor is None and page.next_cursor
    second = viewer_client.get(URL, {"after": page.next_cursor})
    assert run_ids(second) == newest_first[50:100]
    third = viewer_client.get(URL, {"after": second.context["page"].next_cursor})
    assert run_ids(third) == newest_first[100:]
    assert third.context["page"].next_cursor is None
    back = viewer_client.get(URL, {"before": third.context["page"].prev_cursor})
    assert run_ids(back) == newest_first[50:100]
    assert (
        run_ids(viewer_client.get(URL, {"before": back.context["page"].prev_cursor}))
        == (newest_first[:50])
    )


def test_the_pager_links_keep_the_filters(viewer_client):
    schedule = make_schedule()
    for _ in range(51):
        make_run(schedule, status=Status.FAILED)
    html = viewer_client.get(URL, {"status": "failed"}).content.decode()
    assert 'rel="next" href="?status=failed&amp;after=' in html
    assert 'hx-push-url="true"' in html


def test_a_bad_cursor_shows_the_first_page(viewer_client):
    run = make_run()
    assert run_ids(viewer_client.get(URL, {"after": "garbage"})) == [run.pk]
    assert run_ids(viewer_client.get(URL, {"before": "12_x"})) == [run.pk]


def test_it_answers_htmx_with_the_table_fragment(viewer_client):
    make_run()
    response = viewer_client.get(URL, {"sort": "started"}, **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="run-table"')
    assert "HX-Request" in response["Vary"]  # caches keep the page and the fragment apart
    assert "<form" not in html


def test_the_filter_form_pushes_its_url_and_labels_every_control(viewer_client):
    html = viewer_client.get(URL).content.decode()
    assert 'hx-get="/runs/" hx-target="#run-table" hx-swap="outerHTML" hx-push-url="true"' in html
    for name in ["q", "orchestrator", "schedule", "status", "agent", "trigger", "build"]:
        assert f'<label for="id_{name}">' in html
    assert '<label for="id_date_from">From</label>' in html


def test_only_rows_of_runs_in_progress_poll(viewer_client):
    done = make_run(status=Status.PASSED)
    running = make_run(status=Status.RUNNING, finished_at=None, duration=None)
    html = viewer_client.get(URL).content.decode()
    assert f'id="run-{running.pk}" class="row-running" hx-get="/runs/{running.pk}/row/"' in html
    assert f'id="run-{done.pk}" class="row-passed">' in html
    assert html.count('hx-trigger="every 3s"') == 1


def test_nothing_polls_when_nothing_runs(viewer_client):
    make_run(status=Status.FAILED)
    for url in ["/", URL]:
        assert "every 3s" not in viewer_client.get(url).content.decode()


def test_a_row_poll_stops_once_the_run_is_over(viewer_client):
    run = make_run(status=Status.RUNNING, finished_at=None, duration=None, total_count=3)
    url = reverse("runs:run_row", args=[run.pk])
    response = viewer_client.get(url, **HTMX)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith(f'<tr id="run-{run.pk}"')
    run.status = Status.FAILED
    run.save()
    response = viewer_client.get(url, **HTMX)
    assert response.status_code == 286
    assert "every 3s" not in response.content.decode()


def row_html(response, run) -> str:
    html = response.content.decode()
    start = html.index(f'<tr id="run-{run.pk}"')
    return html[start : html.index("</tr>", start)]


def test_a_finished_row_drawn_before_shows_what_changed_since(
    viewer_client, django_capture_on_commit_callbacks
):
    schedule = make_schedule(title="Checkout nightly")
    run = make_run(schedule, status=Status.FAILED, failed_count=3, total_count=10, build="7")
    assert "✗ 3" in row_html(viewer_client.get(URL), run)
    with django_capture_on_commit_callbacks(execute=True):  # the commit
        run.failed_count, run.passed_count, run.status = 1, 9, Status.PASSED
        run.save()
        revision_bump()  # as every store of runs does (runs_store)
        schedule.title = "Checkout every night"
        schedule.save()
    row = row_html(viewer_client.get(URL), run)
    assert "✗ 1" in row and "✓ 9" in row and "Checkout every night" in row
    assert "status-passed" in row


def test_a_running_row_is_drawn_afresh_each_time(viewer_client, django_capture_on_commit_callbacks):
    run = make_run(status=Status.RUNNING, total_count=10, passed_count=2)
    assert "2 of 10 done" in row_html(viewer_client.get(URL), run)
    with django_capture_on_commit_callbacks(execute=True):  # the commit
        run.passed_count = 5
        run.save()
        revision_bump()  # as every store of runs does (runs_store)
    assert "5 of 10 done" in row_html(viewer_client.get(URL), run)


def test_a_page_drawn_before_a_sync_pass_shows_what_the_pass_brought(
    viewer_client, django_capture_on_commit_callbacks
):
    with emulated("leapwork", history=1, pace=1.0) as (_app, server):
        orchestrator = orchestrator_for(server)
        orchestrator_sync(orchestrator=orchestrator)
        schedule = Schedule.objects.filter(orchestrator=orchestrator, is_temporary=False).first()
        before = viewer_client.get(URL).content.decode()
        run_id = start_run(server, schedule.external_id)
        with django_capture_on_commit_callbacks(execute=True):  # the pass commits
            orchestrator_sync(orchestrator=orchestrator)
        after = viewer_client.get(URL).content.decode()
    run = Run.objects.get(orchestrator=orchestrator, external_id=run_id)
    assert f'<tr id="run-{run.pk}"' in after and f'<tr id="run-{run.pk}"' not in before


def test_the_filters_mark_what_is_chosen(viewer_client):
    schedule = make_schedule(title="Checkout nightly")
    agent = make_agent(schedule.orchestrator, title="Agent 7")
    query = {"schedule": schedule.pk, "agent": agent.pk, "orchestrator": schedule.orchestrator.name}
    html = viewer_client.get(URL, query).content.decode()
    assert f'<option value="{schedule.pk}" selected>Checkout nightly</option>' in html
    assert f'<option value="{agent.pk}" selected>Agent 7</option>' in html
    name = schedule.orchestrator.name
    assert f'<option value="{name}" selected>{name}</option>' in html
