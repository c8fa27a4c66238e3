"""Schedule page: its runs by key, a server-rendered SVG pass-rate trend, the run-now form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from runs.status import Status
from tests.factories import make_run, make_schedule

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
