"""The pages and htmx work under the Content-Security-Policy: Chromium reports no violation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from runs.status import Status
from tests.browser.conftest import browser_db
from tests.factories import make_agent, make_result, make_run, make_test_case, make_user

pytestmark = [pytest.mark.browser, browser_db]


def test_no_page_breaks_the_content_security_policy(page, live_server):
    running = make_run(status=Status.RUNNING, finished_at=None, duration=None, total_count=1)
    make_result(
        running,
        test_case=make_test_case(running.orchestrator, title="Checkout total"),
        agent=make_agent(running.orchestrator),
        status=Status.FAILED,
        message="Expected 42.00 but saw 41.99",
        started_at=timezone.now() - timedelta(minutes=1),
    )
    make_user("root", is_staff=True, is_superuser=True)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    response = page.goto(f"{live_server.url}/accounts/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1).first).to_be_visible()

    page.goto(f"{live_server.url}/runs/")
    # An htmx request: the filter form swaps the table in place and pushes the URL.
    page.get_by_label("Status").select_option("running")
    expect(page).to_have_url(f"{live_server.url}/runs/?status=running")
    expect(page.locator("#run-table tbody tr")).to_have_count(1)
    page.goto(f"{live_server.url}{running.get_absolute_url()}")
    page.wait_for_timeout(3500)  # one poll of the running run
    for path in ("/", "/orchestrators/", "/agents/", "/admin/", "/admin/runs/orchestrator/add/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
    assert violations == []
