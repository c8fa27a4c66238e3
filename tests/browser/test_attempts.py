"""A Conductor attempt's own page in real Chromium: its own start and duration, not the first
attempt's (a retry in place keeps the workflow's startTime)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import expect

from runs.models import Run
from runs.services.sync import orchestrator_sync
from runs.status import Status
from runs.templatetags.runboard import humanize_duration
from tests.browser.conftest import browser_db
from tests.emulated import emulated, orchestrator_for, step_clock

pytestmark = [pytest.mark.browser, browser_db]


def _iso(moment: datetime) -> str:
    """How utc_time writes a moment in <time datetime>."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_an_attempt_page_shows_its_own_start_and_duration(page, live_server, user, log_in):
    with emulated("conductor", history=2) as (app, server):
        orchestrator = orchestrator_for(server)
        assert orchestrator_sync(orchestrator=orchestrator).ok
        first = Run.objects.filter(orchestrator=orchestrator, status=Status.FAILED).first()
        step_clock(server, 90)
        now = app.now()
        retried_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # Conductor's ms
        answer = httpx.post(f"{server.base_url}/api/workflow/{first.external_id}/retry")
        assert answer.status_code == 204, answer.text
        step_clock(server, 0.5)
        assert orchestrator_sync(orchestrator=orchestrator).attempts_created == 1
        step_clock(server, 3600)
        assert orchestrator_sync(orchestrator=orchestrator).ok  # updates the attempt
        wf = httpx.get(f"{server.base_url}/api/workflow/{first.external_id}").json()
    two = Run.objects.get(orchestrator=orchestrator, external_id=first.external_id, attempt=2)
    ended = datetime.fromtimestamp(wf["endTime"] / 1000, UTC)
    own = humanize_duration(ended - retried_at)
    since_first = humanize_duration(ended - first.started_at)
    assert own != since_first

    log_in(user)
    page.goto(f"{live_server.url}/runs/{two.pk}/")
    summary = page.locator("#run-summary")
    expect(page.locator("h1")).to_contain_text("attempt 2")
    started = summary.locator("dt:text-is('Started') + dd time")
    expect(started).to_have_attribute("datetime", _iso(retried_at))
    finished = summary.locator("dt:text-is('Finished') + dd time")
    expect(finished).to_have_attribute("datetime", _iso(ended))
    expect(summary.locator("dt:text-is('Duration') + dd")).to_have_text(own)
    # The first attempt keeps its own start, listed beside this one.
    earlier = page.locator(".lineage li", has_text="attempt 1")
    expect(earlier.locator("time")).to_have_attribute("datetime", _iso(first.started_at))
