"""The done-when, over real HTTP: a CI job with a token alone, against the live server and
the rerun worker in its own thread, reruns the failures of a Conductor run and polls the
request until its verdict is over; retrying with the same key gets the same request."""

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


def test_a_ci_job_reruns_failures_and_waits_for_the_verdict(live_server, rerun_worker):
    _token, raw = api_token_create(user=make_user("ci", rerunner=True), name="pipeline")
    headers = {"Authorization": f"Bearer {raw}", "Idempotency-Key": "pipeline-7"}
    with (
        synced("conductor") as (server, orchestrator),
        httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=10) as api,
    ):
        source = failed_run(orchestrator)
        sent = api.post(f"/runs/{source.pk}/rerun", json={"scope": "failed"})
        assert sent.status_code == 202, sent.text
        poll = live_server.url + sent.headers["Location"]  # a path, as HTTP allows
        deadline = time.monotonic() + 30
        while not (body := api.get(poll).json()).get("is_sent"):  # the worker sends it
            assert time.monotonic() < deadline and "id" in body, body
            time.sleep(0.2)
        assert body["state"] == "accepted" and body["verdict"]["is_over"] is False
        step_clock(server, 3600)  # the retried workflow finishes; the periodic sync sees it
        assert orchestrator_sync(orchestrator=orchestrator).ok
        verdict = api.get(poll).json()["verdict"]
        assert verdict["is_over"] and verdict["status"] in ("passed", "failed")

        again = api.post(f"/runs/{source.pk}/rerun", json={"scope": "failed"})
        assert again.status_code == 202 and again.json()["id"] == sent.json()["id"]
        assert RerunRequest.objects.count() == 1 and len(vendor_writes(server)) == 1
