"""Issue 14, points 2 and 3: a call whose answer never came is "outcome unknown", never sent
again, and reconciled: the periodic sync (and "check again") asks the orchestrator what it
started, by what was sent, and links the runs it finds.

The emulator stands in for a slow vendor: a latency fault holds the call past Runboard's
timeout, then starts the run anyway, after Runboard gave up on the answer; a timeout fault
holds it and starts nothing.
"""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from runs.models import Orchestrator, RerunCallState, RerunRequest, RerunState, Run
from runs.services import polling
from runs.services.reruns import RerunInput
from runs.services.sync import orchestrator_sync
from tests.emulated import (
    emulator_control,
    emulator_state,
    failed_run,
    step_clock,
    synced,
    vendor_writes,
)
from tests.factories import make_user
from tests.sending import rerun_sent

pytestmark = pytest.mark.django_db

# Runboard gives up on an answer after this long; the slow vendor answers after HELD seconds.
TIMEOUT = 0.3
HELD = 2.0

TESTSIGMA_RERUN = r"/execution_results$"

# (vendor, scope, the method and path of the call that starts the rerun)
SLOW = [
    # Run Flow by Id, one call per case: two picked, so both are sent before either starts.
    ("leapwork", "picked", "PUT", r"/api/v4/flows/.*/agent/"),
    ("conductor", "failed", "POST", r"/retry$"),  # in place: the same workflow id
    ("testsigma", "failed", "POST", TESTSIGMA_RERUN),
]


def served_out(server) -> None:
    """Wait until the emulator has served every request it holds (its late answers included)."""
    deadline = time.monotonic() + 30
    while server.app.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.app.in_flight == 0


def made_due(orchestrator: Orchestrator) -> None:
    Orchestrator.objects.filter(pk=orchestrator.pk).update(next_sync_after=None)


def sent_too_slowly(
    server, orchestrator, fault, key, *, scope="failed", method="POST", path=TESTSIGMA_RERUN
) -> RerunRequest:
    """A rerun (Testsigma's failed-only unless told) whose every call is held by `fault` past
    Runboard's timeout."""
    emulator_control(server, "faults", {"path": path, "method": method, **fault})
    source = failed_run(orchestrator)
    picked = ()
    if scope == "picked":
        failed = source.results.filter(status="failed").order_by("pk")
        picked = tuple(failed.values_list("pk", flat=True)[:2])
        assert len(picked) == 2
    request, recorded = rerun_sent(
        user=make_user(f"ana-{key}", rerunner=True),
        idempotency_key=key,
        data=RerunInput(scope=scope, result_ids=picked),
        source=source,
    )
    assert recorded
    return request


@pytest.mark.parametrize(("kind", "scope", "method", "path"), SLOW)
def test_a_call_answered_too_late_is_unknown_then_found_by_the_periodic_sync(
    settings, kind, scope, method, path
):
    settings.RUNBOARD_HTTP_TIMEOUT = TIMEOUT
    with synced(kind) as (server, orchestrator):
        if kind == "conductor":
            step_clock(server, 90)  # its retry is stamped after the send, as on a real clock
        runs_before = len(emulator_state(server).get("runs", ()))
        request = sent_too_slowly(
            server,
            orchestrator,
            {"latency": HELD},
            f"late-{kind}",
            scope=scope,
            method=method,
            path=path,
        )
        calls = request.calls.count()
        # Runboard gave up waiting: it cannot say what ran, and says so.
        assert request.state == RerunState.UNKNOWN
        assert set(request.calls.values_list("state", flat=True)) == {RerunCallState.UNKNOWN}
        assert "unknown" in request.message.lower() and "refused" not in request.message
        assert request.runs.count() == 0

        served_out(server)  # ... and the vendor started the runs after all
        emulator_control(server, "faults")
        if kind != "conductor":  # Conductor reruns in place: the same execution again
            assert len(emulator_state(server)["runs"]) == runs_before + calls

        made_due(orchestrator)
        polling.sync_cycle_run()
        writes = vendor_writes(server)

    request.refresh_from_db()
    assert request.state == RerunState.ACCEPTED
    assert request.runs.count() == calls
    assert all(c.state == RerunCallState.ACCEPTED and c.reconciled_at for c in request.calls.all())
    # Found, never resent: one write per call, all of them the slow ones.
    rerun_writes = [w for w in writes if w["method"] == method]
    assert len(rerun_writes) == calls


def test_a_call_that_started_nothing_stays_unknown_and_is_never_resent(settings):
    settings.RUNBOARD_HTTP_TIMEOUT = TIMEOUT
    with synced("testsigma") as (server, orchestrator):
        runs_before = len(emulator_state(server)["runs"])
        request = sent_too_slowly(server, orchestrator, {"timeout": HELD}, "dropped")
        assert request.state == RerunState.UNKNOWN
        served_out(server)
        emulator_control(server, "faults")
        for _ in range(2):
            made_due(orchestrator)
            polling.sync_cycle_run()
        writes = [w for w in vendor_writes(server) if w["method"] == "POST"]
        runs_after = len(emulator_state(server)["runs"])

    request.refresh_from_db()
    assert request.state == RerunState.UNKNOWN and request.runs.count() == 0
    assert len(writes) == 1 and runs_after == runs_before


def test_reconciliation_looks_back_only_as_far_as_configured(settings):
    settings.RUNBOARD_HTTP_TIMEOUT = TIMEOUT
    with synced("testsigma") as (server, orchestrator):
        request = sent_too_slowly(server, orchestrator, {"latency": HELD}, "old")
        served_out(server)
        emulator_control(server, "faults")
        settings.RUNBOARD_RECONCILE_HOURS = 0  # out of the window: sync no longer asks
        made_due(orchestrator)
        polling.sync_cycle_run()
        request.refresh_from_db()
        assert request.state == RerunState.UNKNOWN
        settings.RUNBOARD_RECONCILE_HOURS = 24
        made_due(orchestrator)
        polling.sync_cycle_run()
    request.refresh_from_db()
    assert request.state == RerunState.ACCEPTED


def test_check_again_finds_the_run_a_late_answer_started(client, settings):
    settings.RUNBOARD_HTTP_TIMEOUT = TIMEOUT
    with synced("testsigma") as (server, orchestrator):
        request = sent_too_slowly(server, orchestrator, {"latency": HELD}, "check")
        client.force_login(request.requested_by)
        page = client.get(request.get_absolute_url()).content.decode()
        check = reverse("runs:rerun_check", args=[request.pk])
        assert f'action="{check}"' in page  # unknown offers "check again", not a resend

        # Asked before the vendor got to it: nothing yet, and it says Runboard keeps looking.
        early = client.post(check, follow=True).content.decode()
        assert "keeps looking" in early

        served_out(server)
        emulator_control(server, "faults")
        response = client.post(check, follow=True)
        writes = [w for w in vendor_writes(server) if w["method"] == "POST"]

    request.refresh_from_db()
    assert response.redirect_chain[-1][0] == request.get_absolute_url()
    assert "shows 1 run they started" in response.content.decode()
    assert request.state == RerunState.ACCEPTED and request.runs.count() == 1
    assert len(writes) == 1


def test_check_again_needs_the_rerun_permission(client, settings):
    settings.RUNBOARD_HTTP_TIMEOUT = TIMEOUT
    with synced("testsigma") as (server, orchestrator):
        request = sent_too_slowly(server, orchestrator, {"timeout": HELD}, "viewer")
        client.force_login(make_user("vic"))
        response = client.post(reverse("runs:rerun_check", args=[request.pk]))
        served_out(server)
    assert response.status_code == 403


def test_a_leapwork_run_flow_run_is_kept_after_its_temporary_schedule_goes():
    with synced("leapwork") as (server, orchestrator):
        request, _ = rerun_sent(
            user=make_user("ana", rerunner=True),
            idempotency_key="kept",
            data=RerunInput(scope="failed"),
            source=failed_run(orchestrator),
        )
        made = list(request.runs.values_list("pk", flat=True))
        assert made and request.state == RerunState.ACCEPTED
        # Read as soon as the call answered: the run page opens with its case and agent.
        for run in Run.objects.filter(pk__in=made):
            assert run.schedule is not None and run.results.exists()

        step_clock(server, 24 * 3600)  # the runs finish; Leapwork deletes their schedules
        temporary = [s for s in emulator_state(server)["schedules"] if s.get("temporary")]
        assert temporary and all(s["deleted"] for s in temporary)
        report = orchestrator_sync(orchestrator=orchestrator)
        assert report.ok, report.error

    kept = Run.objects.filter(pk__in=made)
    assert kept.count() == len(made)
    assert all(run.is_terminal for run in kept)
