"""The dashboard in real Chromium: shared links, filters in the URL, live progress, lineage."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from runs.models import Run, Trigger
from runs.status import Status
from tests.browser.conftest import browser_db
from tests.factories import make_agent, make_result, make_run, make_schedule, make_test_case

pytestmark = [pytest.mark.browser, browser_db]


@pytest.fixture
def estate():
    """Two schedules: a failed nightly run with a passed rerun, and a passing smoke run."""
    nightly = make_schedule(title="Nightly regression")
    smoke = make_schedule(nightly.orchestrator, title="Smoke")
    agent = make_agent(nightly.orchestrator, title="Agent Alpha")
    checkout = make_test_case(nightly.orchestrator, title="Checkout total")
    login = make_test_case(nightly.orchestrator, title="Login works")
    now = timezone.now()
    failed = make_run(
        nightly,
        external_id="nightly-41",
        status=Status.FAILED,
        started_at=now - timedelta(hours=3),
        total_count=2,
        passed_count=1,
        failed_count=1,
        build="7.3.0",
    )
    make_result(
        failed,
        test_case=checkout,
        agent=agent,
        status=Status.FAILED,
        message="Expected 42.00 but saw 41.99",
        log_excerpt="at Checkout.total (checkout.js:12)",
    )
    make_result(failed, test_case=login, agent=agent, status=Status.PASSED)
    rerun = make_run(
        nightly,
        external_id="nightly-41-rerun",
        status=Status.PASSED,
        trigger=Trigger.RERUN,
        rerun_of=failed,
        started_at=now - timedelta(hours=2),
        total_count=1,
        passed_count=1,
    )
    make_result(rerun, test_case=checkout, agent=agent, status=Status.PASSED)
    passing = make_run(smoke, external_id="smoke-7", started_at=now - timedelta(hours=1))
    return {"failed": failed, "rerun": rerun, "passing": passing, "checkout": checkout}


def test_it_logs_in_through_a_shared_link_and_lands_on_it(
    page, live_server, user, estate, screenshot
):
    shared = f"{live_server.url}/runs/{estate['failed'].pk}/?status=failures"
    page.goto(shared)
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    screenshot("login")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(shared)
    expect(page).to_have_title(re.compile(r"^Nightly regression · run nightly-41"))
    expect(page.locator("#run-results")).to_contain_text("Checkout total")
    expect(page.locator("#run-results")).not_to_contain_text("Login works")


def test_it_filters_the_history_and_the_url_follows(
    page, live_server, user, estate, log_in, screenshot
):
    log_in(user)
    page.goto(f"{live_server.url}/runs/")
    rows = page.locator("#run-table tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label("Status").select_option("failed")
    expect(page).to_have_url(f"{live_server.url}/runs/?status=failed")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Nightly regression")
    page.get_by_label("Search").fill("smoke")
    page.get_by_label("Status").select_option("")
    expect(page).to_have_url(f"{live_server.url}/runs/?q=smoke")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Smoke")
    screenshot("history-filtered")
    # The URL alone reopens the same view.
    page.goto(f"{live_server.url}/runs/?status=failed&sort=started")
    expect(page.get_by_label("Status")).to_have_value("failed")
    expect(page.get_by_label("Sort")).to_have_value("started")
    expect(rows).to_have_count(1)


def test_it_opens_a_failed_run_and_reads_why(page, live_server, user, estate, log_in, screenshot):
    log_in(user)
    page.goto(f"{live_server.url}/runs/?status=failed")
    page.get_by_role("link", name="Nightly regression").click()
    expect(page).to_have_url(f"{live_server.url}/runs/{estate['failed'].pk}/")
    results = page.locator("#run-results tbody tr")
    expect(results.first).to_contain_text("Checkout total")  # failures first
    expect(results.first).to_contain_text("Expected 42.00 but saw 41.99")
    page.get_by_text("Log excerpt").click()
    expect(page.get_by_text("at Checkout.total (checkout.js:12)")).to_be_visible()
    # Times are shown in the viewer's zone, UTC on hover.
    started = page.locator("#run-summary time").first
    expect(started).to_have_attribute("title", re.compile(r"UTC$"))
    expect(started).not_to_contain_text("UTC")
    # Filter the results by status; the URL keeps it.
    page.get_by_label("Status").select_option("passed")
    expect(page).to_have_url(f"{live_server.url}/runs/{estate['failed'].pk}/?status=passed")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Login works")
    page.get_by_label("Status").select_option("")
    expect(results).to_have_count(2)
    # Search them by what they say (here a failure's message); the URL keeps it too.
    page.get_by_label("Search").fill("41.99")
    page.get_by_label("Search").press("Enter")
    expect(page).to_have_url(f"{live_server.url}/runs/{estate['failed'].pk}/?q=41.99")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Checkout total")
    page.get_by_label("Search").fill("")
    page.get_by_label("Search").press("Enter")
    expect(results).to_have_count(2)
    screenshot("run-failed")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("link", name="Copy link").click()
    expect(page.get_by_role("link", name="✓ Link copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == (
        f"{live_server.url}/runs/{estate['failed'].pk}/"
    )


def test_it_watches_a_running_run_advance_to_done_without_reloading(
    page, live_server, user, log_in, screenshot
):
    run = make_run(
        status=Status.RUNNING, finished_at=None, duration=None, total_count=3, passed_count=0
    )
    log_in(user)
    polls: list[str] = []
    page.on("request", lambda request: "/poll/" in request.url and polls.append(request.url))
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    page.evaluate("window.sentinel = 'same page'")
    bar = page.locator("#run-summary progress")
    expect(bar).to_have_attribute("value", "0")
    Run.objects.filter(pk=run.pk).update(passed_count=1, failed_count=1)
    expect(bar).to_have_attribute("value", "2")
    expect(page.locator("#run-summary")).to_contain_text("2 of 3 done")
    screenshot("run-running")
    Run.objects.filter(pk=run.pk).update(
        passed_count=2, status=Status.FAILED, finished_at=timezone.now()
    )
    expect(page.locator("#run-summary .status")).to_contain_text("Failed")
    expect(bar).to_have_count(0)
    assert page.evaluate("window.sentinel") == "same page"  # never reloaded
    settled = len(polls)
    time.sleep(3.5)
    assert len(polls) == settled  # the 286 stopped the polling
    screenshot("run-finished")


def test_it_follows_the_lineage_back(page, live_server, user, estate, log_in, screenshot):
    log_in(user)
    page.goto(f"{live_server.url}/runs/{estate['rerun'].pk}/")
    screenshot("run-rerun")
    page.locator("a.lineage-source").click()
    expect(page).to_have_url(f"{live_server.url}/runs/{estate['failed'].pk}/")
    lineage = page.locator(".lineage")
    expect(lineage).to_contain_text("Its reruns")
    expect(lineage.get_by_role("link", name=re.compile("nightly-41-rerun"))).to_be_visible()


def test_it_opens_a_test_case_history(page, live_server, user, estate, log_in, screenshot):
    log_in(user)
    failed = estate["failed"]
    page.goto(f"{live_server.url}/runs/{failed.pk}/")
    page.get_by_role("link", name="Checkout total").click()
    expect(page).to_have_url(f"{live_server.url}/cases/{estate['checkout'].pk}/?from={failed.pk}")
    expect(page).to_have_title(re.compile("^Test case Checkout total"))
    expect(page.locator(".strip li")).to_have_count(2)
    expect(page.locator("#case-results tr.is-from")).to_contain_text("the run you came from")
    expect(page.locator("#flaky-title + p")).to_have_text(
        "100%"
    )  # failed once, passed on its rerun
    screenshot("test-case")
    page.goto(f"{live_server.url}/schedules/{failed.schedule_id}/")
    expect(page.locator("svg.trend")).to_be_visible()
    screenshot("schedule")
    for name, path in [
        ("overview", "/"),
        ("agents", "/agents/"),
        ("orchestrators", "/orchestrators/"),
    ]:
        page.goto(live_server.url + path)
        screenshot(name)
