"""A tracked run id stays one path segment (issue 14, point 9): "Track a run" never makes
Runboard send its credential to another endpoint of the vendor, nor show what it answered."""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import Run
from tests.emulated import emulated, orchestrator_for

pytestmark = pytest.mark.django_db

# Where each vendor's "one run" read starts (the path a tracked id must stay under).
RUN_PATHS = {
    "leapwork": "/api/v4/run/",
    "conductor": "/api/workflow/",
    "testsigma": "/api/v1/execution_results/",
}
# Endpoints the ids below aim at, and what their answers hold.
ELSEWHERE = ["../agents", "x/../../agents", "../metadata/workflow", "../../v4/agents"]
DOTS = ["..", ".", "../", "./..", "%2e%2e", "..%2fagents", "..\\agents", "x?y=1", "x#y"]


def tracked(client, kind: str, run_id: str):
    with emulated(kind) as (app, server):
        orchestrator = orchestrator_for(server)
        if kind == "testsigma":
            orchestrator.base_url = f"{server.base_url}/api/v1"
            orchestrator.save()
        response = client.post(
            reverse("runs:track_run"), {"orchestrator": orchestrator.pk, "run_id": run_id}
        )
        return response, app.requests(), app.state()


@pytest.mark.parametrize("run_id", ELSEWHERE + DOTS)
@pytest.mark.parametrize("kind", ["leapwork", "conductor", "testsigma"])
def test_it_sends_a_tracked_id_only_to_the_run_endpoint(viewer_client, kind, run_id):
    response, requests, _state = tracked(viewer_client, kind, run_id)
    assert response.status_code == 422
    assert not Run.objects.exists()
    assert requests, "the vendor was asked"
    for request in requests:
        assert request["path"].startswith(RUN_PATHS[kind]), request["path"]
        # The emulator sees the path decoded: the id is all of what follows, in one piece.
        assert request["path"][len(RUN_PATHS[kind]) :].split("/")[0] != ""


@pytest.mark.parametrize(
    ("kind", "run_id"), [("leapwork", "../agents"), ("conductor", "../metadata/workflow")]
)
def test_the_error_never_shows_another_endpoints_answer(viewer_client, kind, run_id):
    response, _requests, state = tracked(viewer_client, kind, run_id)
    page = response.content.decode()
    assert response.status_code == 422
    for secret in _answers_elsewhere(kind, state):
        assert secret not in page


def _answers_elsewhere(kind: str, state: dict) -> list[str]:
    """Words only another endpoint's answer holds: agents, workflow definitions."""
    if kind == "leapwork":
        return [value for agent in state["agents"] for value in (agent["id"], agent["title"])]
    return [definition["name"] for definition in state["definitions"]]


@pytest.mark.parametrize("kind", ["leapwork", "conductor", "testsigma"])
def test_a_real_run_id_is_still_tracked(viewer_client, kind):
    """The escaping changes nothing for the ids the vendors hand out."""
    with emulated(kind) as (app, server):
        orchestrator = orchestrator_for(server)
        if kind == "testsigma":
            orchestrator.base_url = f"{server.base_url}/api/v1"
            orchestrator.save()
        run_id = _a_run_id(kind, app.state())
        response = viewer_client.post(
            reverse("runs:track_run"), {"orchestrator": orchestrator.pk, "run_id": run_id}
        )
        assert response.status_code == 302
        assert Run.objects.filter(external_id=run_id).exists()


def _a_run_id(kind: str, state: dict) -> str:
    if kind == "conductor":
        return state["workflows"][0]["workflowId"]
    return str(state["runs"][0]["id"])
