"""Issue 15, the morning triage in real Chromium: open /failures/, see a cause that struck
on two orchestrators, tell new failures from known ones, rerun every failure of the cause,
and watch the reruns clear the flaky ones."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Count
from playwright.sync_api import expect

from runs import selectors
from runs.models import ExecutionResult, FailureGroup, RerunBatch, Run
from runs.orchestrators.failure_causes import CAUSES, TRANSIENT, cause_of
from runs.services.polling import poll_cycle_run
from tests.browser.conftest import browser_db
from tests.emulated import step_clock, synced
from tests.factories import make_user

pytestmark = [pytest.mark.browser, browser_db]


def flaky_shared_cause() -> FailureGroup:
    """A cause that fails now and then and passes when run again, seen on two orchestrators."""
    rows = (
        ExecutionResult.objects.exclude(fingerprint="")
        .values("fingerprint")
        .annotate(orchestrators=Count("run__orchestrator", distinct=True), n=Count("id"))
        .filter(orchestrators__gt=1)
        .order_by("-n", "fingerprint")
    )
    for row in rows:
        group = FailureGroup.objects.get(fingerprint=row["fingerprint"])
        example = ExecutionResult.objects.filter(fingerprint=group.fingerprint).first()
        if CAUSES[cause_of(example.message) or "locator-changed"].kind == TRANSIENT:
            return group
    raise AssertionError("the emulators share a flaky cause across vendors")


def test_the_morning_triage(page, live_server, log_in, screenshot):
    ana = make_user("ana")
    # The Rerunners group's permissions, given directly (a transactional test flushes groups).
    codenames = ["add_rerunrequest", "mute_failuregroup"]
    ana.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    with (
        synced("leapwork", history=3) as (leapwork, _l),
        synced("testsigma", history=3) as (testsigma, _t),
    ):
        group = flaky_shared_cause()
        log_in(ana)

        # What broke: the cause, once, however many runs and orchestrators it struck.
        page.goto(f"{live_server.url}/failures/?window=30d")
        row = page.locator(f"#failure-group-{group.pk}")
        expect(row).to_contain_text(group.normalized[:40])
        expect(row.locator("td").nth(5)).to_have_text("2")  # orchestrators
        screenshot("triage-1-failures")

        # New or known: a run where the cause struck a case for the first time says "new",
        # a later run where it struck the same case again says "known".
        failures = ExecutionResult.objects.filter(fingerprint=group.fingerprint).select_related(
            "run"
        )
        seen: dict[str, list[ExecutionResult]] = {"new": [], "known": []}
        for failure in failures:
            cause = selectors.failure_causes(run=failure.run, results=[failure])[failure.pk]
            seen["new" if cause.is_new else "known"].append(failure)
        assert seen["new"] and seen["known"], "the history holds both"
        for label, (failure, *_rest) in seen.items():
            page.goto(f"{live_server.url}{failure.run.get_absolute_url()}?status=failures")
            badge = page.locator(f"#result-{failure.pk} .cause .badge").first
            expect(badge).to_have_text(label)

        # Rerun the cause: a preview per orchestrator, then one send.
        page.goto(f"{live_server.url}{group.get_absolute_url()}")
        page.get_by_role("link", name="Rerun every failure of this cause…").click()
        preview = page.locator("#cause-preview")
        expect(preview.locator("table.cause-orchestrators tbody tr")).to_have_count(2)
        screenshot("triage-2-preview")
        preview.get_by_role("button", name=re.compile(r"^Send \d+ reruns?$")).click()
        expect(page).to_have_url(re.compile(rf"/failures/{group.pk}/#batch-\d+$"))
        batch = RerunBatch.objects.get()

        # The worker sends them; the reruns run to their end; the cause shows what they found.
        def over() -> bool:
            step_clock(leapwork, 3600)
            step_clock(testsigma, 3600)
            poll_cycle_run()
            runs = Run.objects.filter(rerun_request__batch=batch)
            return runs.exists() and all(run.is_terminal for run in runs)

        for _ in range(60):
            if over():
                break
            page.wait_for_timeout(500)
        else:
            raise AssertionError("the reruns did not finish")
        page.goto(f"{live_server.url}/failures/?window=30d")
        expect(page.locator(f"#failure-group-{group.pk} .rerun-outcome")).to_contain_text("passed")
        screenshot("triage-3-cleared")
    cleared = selectors.failure_groups(days=30)
    mine = next(row for row in cleared if row.group.pk == group.pk)
    assert mine.cleared > 0 and mine.rerun_verdict in ("flaky", "mostly persistent")
