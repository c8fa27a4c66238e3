"""Reruns through the API with a token alone, against each vendor's emulator over loopback:
preview, send (202), the worker sends it, sync brings its runs, GET /reruns/{id} until its
verdict is over; a retry with the same Idempotency-Key answers the same single request."""

from __future__ import annotations

import pytest

from runs.models import RerunRequest, RerunState
from runs.services.sync import orchestrator_sync
from runs.status import Status
from tests.api.conftest import API
from tests.emulated import failed_run, step_clock, synced, vendor_writes
from tests.factories import (
    make_agent,
    make_orchestrator,
    make_result,
    make_run,
    make_schedule,
)
from tests.sending import deliver_pending

pytestmark = pytest.mark.django_db

POLLS = 5


@pytest.fixture
def failed_source():
    """A failed Leapwork run Runboard holds, with two failed cases (planning one opens no
    connection: the error paths need no emulator)."""
    run = make_run(status=Status.FAILED)
    agent = make_agent(run.orchestrator, title="win-1")
    for flow in ("flow-1", "flow-2"):
        make_result(run, status=Status.FAILED, case_key=flow, agent=agent)
    make_result(run, status=Status.PASSED, case_key="flow-3", agent=agent)
    return run


def poll_until_over(client, url: str, server, orchestrator) -> dict:
    """GET the request until its verdict is over, as a CI job would; between polls the
    emulated time passes and a sync pass brings the runs' news (what the periodic sync does)."""
    for _ in range(POLLS):
        body = client.get(url).json()
        if body["verdict"] and body["verdict"]["is_over"]:
            return body
        step_clock(server, 3600)
        report = orchestrator_sync(orchestrator=orchestrator)
        assert report.ok, report.error
    raise AssertionError(f"the verdict is not over after {POLLS} polls: {body}")


@pytest.mark.parametrize("kind", ["leapwork", "conductor", "testsigma"])
def test_a_token_previews_sends_and_polls_a_failed_only_rerun_to_its_verdict(rerunner_api, kind):
    with synced(kind) as (server, orchestrator):
        source = failed_run(orchestrator)
        url = f"{API}/runs/{source.pk}/rerun"

        preview = rerun_api_post(rerunner_api, url, {"scope": "failed", "preview": True})
        assert preview.status_code == 200, preview.content
        plan = preview.json()
        assert plan["scope"] == "failed" and plan["summary"].startswith("failed only")
        assert plan["calls"] and all(c["method"] and c["path"] for c in plan["calls"])
        assert len(plan["digest"]) == 64 and vendor_writes(server) == []

        body = {"scope": "failed", "digest": plan["digest"]}
        sent = rerun_api_post(rerunner_api, url, body, key="ci-build-42")
        assert sent.status_code == 202, sent.content
        request = sent.json()
        assert request["state"] == "pending" and request["verdict"] is None
        assert sent["Location"] == f"{API}/reruns/{request['id']}"
        assert len(request["calls"]) == len(plan["calls"]) and vendor_writes(server) == []

        deliver_pending()  # the rerun worker's part
        writes = len(vendor_writes(server))
        assert writes == len(plan["calls"])
        done = poll_until_over(rerunner_api, sent["Location"], server, orchestrator)
        assert done["state"] == RerunState.ACCEPTED and done["is_sent"]
        assert done["runs"] and all(r["rerun_of"] == source.pk for r in done["runs"])
        assert done["verdict"]["status"] in ("passed", "failed")
        assert all(call["state"] == "accepted" for call in done["calls"])

        again = rerun_api_post(rerunner_api, url, body, key="ci-build-42")
        assert again.status_code == 202 and again.json()["id"] == request["id"]
        assert RerunRequest.objects.count() == 1
        assert deliver_pending() == [] and len(vendor_writes(server)) == writes


def rerun_api_post(client, url: str, body: dict, *, key: str = ""):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(url, body, content_type="application/json", **headers)


def test_keys_are_scoped_to_their_user_and_bound_to_their_body(token_client):
    ana = token_client(username="ana", rerunner=True)
    bob = token_client(username="bob", rerunner=True)
    schedule = make_schedule()
    url = f"{API}/schedules/{schedule.pk}/run-now"
    first = rerun_api_post(ana, url, {"variables": {"Browser": "firefox"}}, key="nightly")
    assert first.status_code == 202
    # Another user's equal key is another request.
    other = rerun_api_post(bob, url, {"variables": {"Browser": "firefox"}}, key="nightly")
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    # The same key with another body is refused; the same body answers the first request.
    changed = rerun_api_post(ana, url, {"variables": {"Browser": "chrome"}}, key="nightly")
    assert changed.status_code == 422
    assert changed.json()["type"] == "urn:runboard:problem:key-reused"
    repeat = rerun_api_post(ana, url, {"variables": {"Browser": "firefox"}}, key="nightly")
    assert repeat.json()["id"] == first.json()["id"]
    # Without a key, every send is new.
    assert rerun_api_post(ana, url, {}).json()["id"] != rerun_api_post(ana, url, {}).json()["id"]
    assert RerunRequest.objects.count() == 4
    stored = RerunRequest.objects.get(pk=first.json()["id"])
    assert stored.idempotency_key.startswith(f"api:{stored.requested_by_id}:")
    assert len(stored.body_digest) == 64


def test_a_send_whose_plan_changed_since_its_preview_is_a_409(rerunner_api, failed_source):
    url = f"{API}/runs/{failed_source.pk}/rerun"
    previewed = rerun_api_post(rerunner_api, url, {"preview": True}).json()
    assert [c["title"] for c in previewed["cases"]] == ["flow-1", "flow-2"]
    other = make_agent(failed_source.orchestrator)
    changed = {"agents": [other.pk], "digest": previewed["digest"]}
    response = rerun_api_post(rerunner_api, url, changed, key="k")
    assert response.status_code == 409
    assert response.json()["type"] == "urn:runboard:problem:plan-changed"
    assert not RerunRequest.objects.exists()
    same = rerun_api_post(rerunner_api, url, {"digest": previewed["digest"]}, key="k")
    assert same.status_code == 202


def test_a_run_still_running_or_rerun_in_place_is_a_409(rerunner_api, failed_source):
    failed_source.status = Status.RUNNING
    failed_source.save()
    url = f"{API}/runs/{failed_source.pk}/rerun"
    for body in ({"preview": True}, {}):
        response = rerun_api_post(rerunner_api, url, body)
        assert response.status_code == 409
        assert response.json()["type"] == "urn:runboard:problem:source-running"
    failed_source.status, failed_source.is_frozen = Status.FAILED, True
    failed_source.save()
    assert rerun_api_post(rerunner_api, url, {}).status_code == 409
    assert not RerunRequest.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "from_task"}, "scope"),  # Leapwork cannot
        ({"scope": "picked", "cases": [999999]}, "cases"),
        ({"scope": "all", "inputs": {"env": "qa"}}, "workflow_input"),
        ({"agents": [999999]}, "agents"),
    ],
)
def test_a_plan_that_cannot_be_made_is_a_422_with_its_field(
    rerunner_api, failed_source, body, field
):
    response = rerun_api_post(rerunner_api, f"{API}/runs/{failed_source.pk}/rerun", body)
    assert response.status_code == 422, response.content
    problem = response.json()
    assert problem["type"] == "urn:runboard:problem:invalid-plan"
    assert field in problem["errors"]
    assert not RerunRequest.objects.exists()


def test_agents_of_another_orchestrator_are_refused(rerunner_api, failed_source):
    stranger = make_agent(make_orchestrator())
    body = {"agents": [stranger.pk], "preview": True}
    response = rerun_api_post(rerunner_api, f"{API}/runs/{failed_source.pk}/rerun", body)
    assert response.status_code == 422 and "agents" in response.json()["errors"]


def test_a_run_with_no_failures_has_nothing_to_rerun_failed_only(rerunner_api):
    passed = make_run(status=Status.PASSED)
    response = rerun_api_post(rerunner_api, f"{API}/runs/{passed.pk}/rerun", {})
    assert response.status_code == 422 and "scope" in response.json()["errors"]


def test_a_conductor_rerun_from_a_task_takes_its_input(rerunner_api):
    with synced("conductor") as (server, orchestrator):
        source = failed_run(orchestrator)
        task = source.results.filter(status="failed").first()
        body = {"scope": "from_task", "task": task.pk, "task_input": {"retries": 3}}
        sent = rerun_api_post(rerunner_api, f"{API}/runs/{source.pk}/rerun", body)
        assert sent.status_code == 202, sent.content
        deliver_pending()
        (write,) = vendor_writes(server)
        assert write["body"]["reRunFromTaskId"] == task.external_id
        assert write["body"]["taskInput"] == {"retries": 3}


def test_run_now_previews_and_sends_with_variables_and_a_build(rerunner_api):
    with synced("testsigma") as (server, orchestrator):
        schedule = orchestrator.schedules.first()
        url = f"{API}/schedules/{schedule.pk}/run-now"
        body = {"variables": {"user": "qa"}, "build": "1.2.3"}
        plan = rerun_api_post(rerunner_api, url, {**body, "preview": True})
        assert plan.json()["summary"] == "run now with user=qa"
        sent = rerun_api_post(rerunner_api, url, body, key="now")
        assert sent.status_code == 202 and sent.json()["schedule"] == schedule.pk
        deliver_pending()
        (write,) = vendor_writes(server)
        assert write["body"]["runtimeData"] == {"user": "qa"}
        assert write["body"]["buildNo"] == "1.2.3"
        refused = rerun_api_post(rerunner_api, url, {"inputs": {"a": 1}})
        assert refused.status_code == 422 and "inputs" in refused.json()["errors"]


def test_a_rerun_request_is_readable_by_everyone(reader, rerunner_api):
    schedule = make_schedule()
    sent = rerun_api_post(rerunner_api, f"{API}/schedules/{schedule.pk}/run-now", {})
    body = reader.get(f"{API}/reruns/{sent.json()['id']}").json()
    assert body["scope"] == "run_now" and body["requested_by"] == "ci-bot"
    assert body["state"] == "pending" and not body["is_sent"] and body["verdict"] is None
    assert reader.get(f"{API}/reruns/999999").status_code == 404
