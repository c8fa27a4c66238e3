"""Issue 14, point 1: an unreadable success is not a refusal.

The vendor answered 2xx to a rerun (and started it) but Runboard could not read the answer:
the request is "outcome unknown", never "nothing ran", and nothing offers a fresh key that
would send it again.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import RerunRequest, RerunState
from runs.services.reruns import RerunInput
from tests.emulated import emulator_control, emulator_state, failed_run, synced, vendor_writes
from tests.factories import make_user
from tests.sending import deliver_pending, rerun_sent
from tests.views.test_rerun_views import form_data, previewed

pytestmark = pytest.mark.django_db

# (vendor, scope, the path of the call that starts the rerun)
GARBLED = [
    ("leapwork", "failed", r"/api/v4/flows/.*/agent/"),  # Run Flow by Id, one call per flow
    ("leapwork", "all", r"reRunOnAgents"),
    ("testsigma", "failed", r"/execution_results$"),
]


@pytest.mark.parametrize(("kind", "scope", "path"), GARBLED)
def test_a_garbled_answer_to_a_rerun_the_vendor_started_is_outcome_unknown(kind, scope, path):
    with synced(kind) as (server, orchestrator):
        source = failed_run(orchestrator)
        runs_before = len(emulator_state(server)["runs"])
        emulator_control(server, "faults", {"path": path, "malformed": True})
        request, sent = rerun_sent(
            user=make_user("ana", rerunner=True),
            idempotency_key=f"garbled-{kind}-{scope}",
            data=RerunInput(scope=scope),
            source=source,
        )
        started = len(emulator_state(server)["runs"]) - runs_before
    assert sent and started > 0, "the vendor accepted the call and started runs"
    # Unreadable, so unknown: never sent again, and the runs they started found by asking.
    calls = list(request.calls.all())
    assert len(vendor_writes(server)) == len(calls)
    assert all(c.state == "accepted" and c.reconciled_at for c in calls)
    assert request.state == RerunState.ACCEPTED and request.runs.count() == started
    assert "after their answer was lost" in request.message and "refused" not in request.message


def test_a_garbled_answer_whose_run_cannot_be_found_stays_unknown(settings):
    with synced("testsigma") as (server, orchestrator):
        source = failed_run(orchestrator)
        # The run it started cannot be read back either: nothing to link, nothing resent.
        emulator_control(server, "faults", {"path": "/execution_results", "malformed": True})
        request, _ = rerun_sent(
            user=make_user("ana", rerunner=True),
            idempotency_key="garbled-lost",
            data=RerunInput(scope="failed"),
            source=source,
        )
        assert len(vendor_writes(server)) == 1
    assert request.state == RerunState.UNKNOWN
    assert "unknown" in request.message and "refused" not in request.message


def test_the_form_does_not_offer_a_fresh_key_after_a_garbled_answer(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        url = reverse("runs:rerun", args=[source.pk])
        data = {**form_data(client.get(source.get_absolute_url()).content.decode()), "scope": "all"}
        data = previewed(client, url, data)
        emulator_control(server, "faults", {"path": "reRunOnAgents", "malformed": True})
        response = client.post(url, data)
        sent = len(vendor_writes(server))
        # Sending the same form again lands on the same request and sends nothing.
        again = client.post(url, data)
        assert len(vendor_writes(server)) == sent
        request = RerunRequest.objects.get(idempotency_key=data["idempotency_key"])
        # It lands on the request's page, which follows the sending, not on a form to send again.
        assert response.status_code == 302
        assert response["Location"] == f"{request.get_absolute_url()}?follow=1"
        assert again["Location"] == response["Location"]
        deliver_pending()
        assert len(vendor_writes(server)) == sent + 1, "sent once, by the worker"
        third = client.post(url, data)
        assert len(vendor_writes(server)) == sent + 1
    request.refresh_from_db()
    assert request.state == RerunState.ACCEPTED and request.calls.get().reconciled_at
    assert third["Location"] == request.runs.get().get_absolute_url()
