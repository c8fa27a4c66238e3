"""The done-when, over real HTTP: a CI job with a token alone, against the live server and
the rerun worker in its own thread, previews and sends a failed-only rerun on each vendor,
polls the request until its verdict is over, and gets the same single request back when it
retries with the same Idempotency-Key."""

from __future__ import annotations

import time

import httpx
import pytest

from runs.models import RerunRequest
from runs.services.api_tokens import api_token_create
from runs.services.sync import orchestrator_sync
from tests.emulated import failed_run, step_clock, synced, vendor_writes
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)
SENT_WITHIN = 30  # seconds for the worker to send every call
POLLS = 5


def poll_until_sent(api: httpx.Client, url: str) -> dict:
    deadline = time.monotonic() + SENT_WITHIN
    while not (body := api.get(url).json()).get("is_sent"):
        assert time.monotonic() < deadline and "id" in body, body
        time.sleep(0.2)
    return body


def poll_until_over(api: httpx.Client, url: str, server, orchestrator) -> dict:
    """GET the request until its verdict is over; between polls the emulated time passes and
    a sync pass brings the runs' news (what the periodic sync does)."""
    for _ in range(POLLS):
        body = api.get(url).json()
        if body["verdict"] and body["verdict"]["is_over"]:
            return body
        step_clock(server, 3600)
        assert orchestrator_sync(orchestrator=orchestrator).ok
    raise AssertionError(f"the verdict is not over after {POLLS} polls: {body}")


@pytest.mark.parametrize("kind", ["leapwork", "conductor", "testsigma"])
def test_a_ci_job_reruns_failures_and_waits_for_the_verdict(live_server, rerun_worker, kind):
    _token, raw = api_token_create(user=make_user("ci", rerunner=True), name="pipeline")
    with (
        synced(kind) as (server, orchestrator),
        httpx.Client(
            base_url=live_server.url, headers={"Authorization": f"Bearer {raw}"}, timeout=10
        ) as api,
    ):
        source = failed_run(orchestrator)
        url = f"/api/v1/runs/{source.pk}/rerun"
        preview = api.post(url, json={"scope": "failed", "preview": True})
        assert preview.status_code == 200, preview.text
        body = {"scope": "failed", "digest": preview.json()["digest"]}
        key = {"Idempotency-Key": "pipeline-7"}

        sent = api.post(url, json=body, headers=key)
        assert sent.status_code == 202, sent.text
        poll = sent.headers["Location"]  # a path, as HTTP allows
        assert poll_until_sent(api, poll)["state"] == "accepted"
        writes = len(vendor_writes(server))
        assert writes == len(preview.json()["calls"])
        verdict = poll_until_over(api, poll, server, orchestrator)["verdict"]
        assert verdict["status"] in ("passed", "failed")

        again = api.post(url, json=body, headers=key)
        assert again.status_code == 202 and again.json()["id"] == sent.json()["id"]
        assert RerunRequest.objects.count() == 1 and len(vendor_writes(server)) == writes
