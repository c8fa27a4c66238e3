"""Schedule page: its runs by key, a server-rendered SVG pass-rate trend, the run-now form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from runs.models import Trigger
from runs.status import Status
from tests.factories import make_result, make_run, make_schedule, make_test_case

pytestmark = pytest.mark.django_db


def test_it_draws_the_pass_rate_trend_as_inline_svg(viewer_client):
    schedule = make_schedule(title="Payments")
    base = datetime(2026, 5, 1, tzinfo=UTC)
    make_run(schedule, started_at=base, status=Status.FAILED, total_count=4, passed_count=2)
    make_run(
        schedule,
        started_at=base + timedelta(hours=1),
        status=Status.PASSED,
        total_count=4,
        passed_count=4,
    )
    running = make_run(
        schedule, started_at=base + timedelta(hours=2), status=Status.RUNNING, finished_at=None
    )
    response = viewer_client.get(reverse("runs:schedule", args=[schedule.pk]))
    html = response.content.decode()
    assert "<title>Schedule Payments · Runboard</title>" in html
    assert '<svg class="trend"' in html
    assert "From 50% to 100%" in html
    assert '<rect class="dot status-failed"' in html and '<circle class="dot status-passed"' in html
    assert len(response.context["trend"]) == 2  # the running run is not in the trend
    assert response.context["page"].items[0].pk == running.pk
    assert "every 3s" in html  # its running row polls


def test_it_pages_its_runs_by_key(viewer_client):
    schedule = make_schedule()
    for i in range(55):
        make_run(schedule, started_at=datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=i))
    make_run()  # another schedule's run stays out
    url = reverse("runs:schedule", args=[schedule.pk])
    first = viewer_client.get(url)
    assert len(first.context["page"].items) == 50
    second = viewer_client.get(
        url, {"after": first.context["page"].next_cursor}, HTTP_HX_REQUEST="true"
    )
    assert len(second.context["page"].items) == 5
    assert second.content.decode().lstrip().startswith('<div id="run-table"')


def test_a_schedule_without_runs_says_so(viewer_client):
    schedule = make_schedule()
    html = viewer_client.get(reverse("runs:schedule", args=[schedule.pk])).content.decode()
    assert "No finished runs yet." in html and "No runs match." in html


def test_the_trend_has_a_point_per_original_run_a_series_after_reruns_and_a_dated_axis(
    viewer_client,
):
    schedule = make_schedule(title="Checkout")
    case, other = make_test_case(schedule.orchestrator), make_test_case(schedule.orchestrator)
    base = datetime(2026, 5, 1, 22, 30, tzinfo=UTC)
    originals = []
    for day in range(3):
        run = make_run(
            schedule,
            started_at=base + timedelta(days=day),
            status=Status.FAILED,
            total_count=10,
            passed_count=8,
            failed_count=2,
        )
        make_result(run, test_case=case, status=Status.FAILED)
        make_result(run, test_case=other, status=Status.FAILED)
        originals.append(run)
    # The newest run's 2 failed cases are rerun (one run per case) and both pass: 100% after.
    reruns = []
    for rerun_case in (case, other):
        rerun = make_run(
            schedule,
            started_at=base + timedelta(days=2, hours=1),
            trigger=Trigger.RERUN,
            rerun_of=originals[-1],
            total_count=1,
            passed_count=1,
        )
        make_result(rerun, test_case=rerun_case, status=Status.PASSED)
        reruns.append(rerun)
    response = viewer_client.get(reverse("runs:schedule", args=[schedule.pk]))
    html = response.content.decode()
    assert [point.run_id for point in response.context["trend"]] == [r.pk for r in originals]
    assert html.count('<a class="point"') == 3
    for rerun in reruns:
        assert f'data-run-id="{rerun.pk}"' not in html  # never a point (no 100% "run")
        assert f'id="run-{rerun.pk}"' in html  # still listed, marked, in the table
    assert html.count('<polyline class="line after-reruns"') == 1
    assert html.count('<circle class="dot after-reruns"') == 1
    assert "80% passed · failed · 100% after 2 reruns" in html
    # Dates under the points, in UTC, with the full date and time on hover.
    for day in ("May 1", "May 2", "May 3"):
        assert f'text-anchor="middle">{day}</text>' in html
    assert 'text-anchor="middle">22:30</text>' in html
    assert "<title>2026-05-03 22:30 UTC · 80% passed" in html
    assert "Reruns are never points of their own." in html
