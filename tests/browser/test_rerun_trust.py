"""The rerun journey a QA engineer can trust, in real Chromium: progress that tells the truth,
a preview that is what is sent, agents that move the rerun, one verdict per rerun, and a
rerun action in the run page's header."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from runs.models import RerunRequest, Run
from runs.services.sync import orchestrator_sync
from runs.status import Status
from tests.browser.conftest import SCREENSHOTS, browser_db
from tests.emulated import failed_run, step_clock, synced, vendor_writes
from tests.factories import make_run, make_user

pytestmark = [pytest.mark.browser, browser_db]


def test_progress_advances_only_as_results_finish(page, live_server, user, log_in, screenshot):
    run = make_run(
        status=Status.RUNNING, finished_at=None, duration=None, total_count=8, queued_count=8
    )
    log_in(user)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    summary = page.locator("#run-summary")
    expect(summary.locator("progress")).to_have_attribute("value", "0")
    expect(summary).to_contain_text("0 of 8 done")
    expect(summary).to_contain_text("8 queued")
    Run.objects.filter(pk=run.pk).update(
        passed_count=2, failed_count=1, running_count=2, queued_count=3
    )
    expect(summary.locator("progress")).to_have_attribute("value", "3")
    expect(summary).to_contain_text("3 of 8 done, 1 failed")
    expect(summary).to_contain_text("2 running, 3 queued")
    screenshot("trust-progress")
    # The history row and the overview say the same.
    for path in ("/runs/", "/"):
        page.goto(live_server.url + path)
        row = page.locator(f"#run-{run.pk}")
        expect(row.locator("progress")).to_have_attribute("value", "3")
        expect(row).to_contain_text("3 of 8 done")


def test_a_preview_is_what_is_sent_and_the_rerun_has_one_verdict(
    page, live_server, log_in, screenshot
):
    rerunner = make_user("ana")
    # The Rerunners group's permission, given directly (a transactional test flushes groups).
    rerunner.user_permissions.add(Permission.objects.get(codename="add_rerunrequest"))
    with synced("leapwork", pace=1.0) as (server, orchestrator):
        source = failed_run(orchestrator)
        failed_flows = set(
            source.results.filter(status__in=["failed", "error"]).values_list("case_key", flat=True)
        )
        other = orchestrator.agents.exclude(pk__in=source.results.values("agent")).first()
        log_in(rerunner)
        page.goto(f"{live_server.url}/runs/{source.pk}/")

        # The header's Rerun… brings the panel into view.
        page.get_by_role("link", name="Rerun…").click()
        expect(page).to_have_url(re.compile(r"#rerun-panel$"))
        expect(page.locator("#rerun-panel")).to_be_in_viewport()

        form = page.locator("#rerun-form")
        expect(form.get_by_label("Each case on the agent it ran on")).to_be_checked()
        form.get_by_role("button", name="Preview").click()
        expect(form.locator("#preview-title")).to_contain_text("each case on the agent it ran on")
        send = form.get_by_role("button", name="Send rerun")
        expect(send).to_be_visible()

        # Any change after the preview hides Send until the next preview.
        form.get_by_label(other.title).check()
        expect(form.get_by_label("On these agents")).to_be_checked()
        expect(send).to_be_hidden()
        expect(form.get_by_text("Changed since the preview")).to_be_visible()
        screenshot("trust-stale-preview")
        page.locator("#rerun-panel").screenshot(path=SCREENSHOTS / "trust-rerun-panel.png")
        form.get_by_role("button", name="Preview").click()
        expect(form.locator("#preview-title")).to_have_text(
            re.compile(rf"Preview: failed only, on {re.escape(other.title)}, \d+ cases?")
        )
        for item in form.locator(".planned-cases li").all():
            expect(item).to_contain_text(f"on {other.title}")
        form.get_by_role("button", name="Send rerun").click()

        # Recorded at once; the worker sends it call by call while its page shows the progress.
        expect(page).to_have_url(re.compile(r"/reruns/\d+/\?follow=1$"))
        expect(page.locator("#request-outcome .rerun-state")).to_have_text(
            "Accepted", timeout=60_000
        )
        # One call per failed flow, every one on the agent chosen: what the preview said.
        assert {w["path"] for w in vendor_writes(server)} == {
            f"/api/v4/flows/{flow}/agent/{other.external_id}" for flow in failed_flows
        }
        request = RerunRequest.objects.get()
        page.goto(f"{live_server.url}{request.get_absolute_url()}")
        outcome = page.locator("#request-outcome")
        expect(outcome).to_contain_text("Accepted")
        expect(outcome.locator(".request-verdict")).to_contain_text(
            re.compile("done so far|starting")
        )
        screenshot("trust-request-running")

        expect(outcome).to_have_attribute("hx-trigger", "every 3s")  # it follows its runs

        # The runs finish upstream and a sync brings them home. (Away from the page meanwhile:
        # on SQLite the live server shares the test's connection, and a poll in the middle of
        # the sync's transaction would lose the session.)
        page.goto("about:blank")
        step_clock(server, 3600)
        assert orchestrator_sync(orchestrator=orchestrator).ok
        runs = list(request.runs.all())
        passed = sum(r.passed_count for r in runs)
        failing = sum(r.failed_count for r in runs)
        verdict = (
            f"all {passed} passed" if not failing else f"{passed} passed, {failing} still failing"
        )
        page.goto(f"{live_server.url}{request.get_absolute_url()}")
        expect(outcome.locator(".request-verdict")).to_contain_text(verdict)
        expect(outcome).not_to_have_attribute("hx-trigger", "every 3s")  # over: no more polling
        screenshot("trust-request-verdict")
        assert {r.schedule_id for r in runs} == {source.schedule_id}

        # The source run says how its rerun ended.
        page.goto(f"{live_server.url}/runs/{source.pk}/")
        expect(page.locator(".reruns-outcome")).to_contain_text(verdict)
        # The rerun's runs are shown under the source's schedule, marked as reruns.
        page.goto(f"{live_server.url}/schedules/{source.schedule_id}/")
        expect(page.locator(".tag", has_text="rerun")).to_have_count(min(len(runs), 50))


def test_labels_sit_above_their_fields_and_names_do_not_wrap(page, live_server, log_in):
    from tests.factories import make_agent, make_orchestrator, make_result, make_schedule

    rerunner = make_user("ana")
    rerunner.user_permissions.add(Permission.objects.get(codename="add_rerunrequest"))
    schedule = make_schedule(make_orchestrator("testsigma"), title="Web regression")
    agent = make_agent(schedule.orchestrator, title="Chrome-Win11-Enterprise-Build-01")
    run = make_run(schedule, status=Status.FAILED, total_count=1, failed_count=1)
    make_result(run, agent=agent, status=Status.FAILED, message="x " * 200)
    log_in(rerunner)
    page.set_viewport_size({"width": 800, "height": 900})

    page.goto(f"{live_server.url}/schedules/{schedule.pk}/")
    label = page.get_by_text("Build number", exact=True).bounding_box()
    field = page.get_by_label("Build number").bounding_box()
    assert label["y"] + label["height"] <= field["y"] + 1, (label, field)

    page.goto(f"{live_server.url}/runs/{run.pk}/")
    cell = page.get_by_role("cell", name=agent.title, exact=True)
    assert cell.evaluate("el => getComputedStyle(el).whiteSpace") == "nowrap"
    lines = "el => { const r = document.createRange(); r.selectNodeContents(el); return r.getClientRects().length; }"
    assert cell.evaluate(lines) == 1  # one line box: the name is not broken
