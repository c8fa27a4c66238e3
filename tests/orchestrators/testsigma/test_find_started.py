"""Finding the run a Testsigma rerun or trigger started when its answer was lost."""

from __future__ import annotations

from typing import Any

import pytest

from runs.orchestrators.base import PlannedCall, ProtocolError, RerunSpec, Scope
from runs.orchestrators.emulation import Fault
from runs.orchestrators.testsigma.client import TestsigmaClient
from runs.orchestrators.testsigma.emulator import TestsigmaEmulator

PLAN = 101


def quiet(app: TestsigmaEmulator) -> None:
    """Let ten minutes pass, so nothing the estate did counts as begun since now."""
    app.clock.step(600)


def finished_original(app: TestsigmaEmulator) -> dict[str, Any]:
    """The plan's newest run that is not a rerun and has a failed case."""
    runs = [r for r in app.state()["runs"] if r["plan_id"] == PLAN and not r["rerun_parent_id"]]
    return next(
        r for r in reversed(runs) if any(c["result"] == "FAILURE" for c in r["case_results"])
    )


def planned(source: dict[str, Any], scope: Scope = Scope.ALL) -> PlannedCall:
    (call,) = TestsigmaClient.plan_rerun(
        str(source["id"]), RerunSpec(scope=scope), schedule_id=str(PLAN)
    )
    return call


def newest_id(app: TestsigmaEmulator) -> str:
    plan = next(p for p in app.state()["test_plans"] if p["id"] == PLAN)
    return str(plan["last_run_id"])


def send_unread(client: TestsigmaClient, app: TestsigmaEmulator, call: PlannedCall) -> None:
    """Send `call`; Testsigma starts the run but its answer cannot be read."""
    app.faults = [Fault(method="POST", path="/execution_results$", malformed=True)]
    with pytest.raises(ProtocolError):
        client.send_planned("unused", call)
    app.faults = []


def test_it_finds_the_rerun_a_lost_call_started(testsigma_client, testsigma_app):
    source = finished_original(testsigma_app)
    quiet(testsigma_app)
    call = planned(source)
    since = testsigma_app.now()
    send_unread(testsigma_client, testsigma_app, call)
    started = newest_id(testsigma_app)
    assert started != str(source["id"])
    assert testsigma_client.find_started(str(source["id"]), call, since=since) == started


def test_it_finds_nothing_for_a_call_never_sent(testsigma_client, testsigma_app):
    source = finished_original(testsigma_app)
    quiet(testsigma_app)
    since = testsigma_app.now()
    assert testsigma_client.find_started(str(source["id"]), planned(source), since=since) is None
    assert testsigma_client.find_started("999999", planned(source), since=since) is None


def test_it_finds_nothing_that_began_before_since(testsigma_client, testsigma_app):
    source = finished_original(testsigma_app)
    quiet(testsigma_app)
    call = planned(source)
    before = testsigma_app.now()
    testsigma_client.send_planned(str(source["id"]), call)
    quiet(testsigma_app)
    since = testsigma_app.now()
    assert testsigma_client.find_started(str(source["id"]), call, since=since) is None
    assert testsigma_client.find_started(str(source["id"]), call, since=before) is not None


def test_it_finds_nothing_for_a_rerun_of_another_type(testsigma_client, testsigma_app):
    source = finished_original(testsigma_app)
    quiet(testsigma_app)
    since = testsigma_app.now()
    send_unread(testsigma_client, testsigma_app, planned(source, Scope.ALL))
    failed_only = planned(source, Scope.FAILED)
    assert testsigma_client.find_started(str(source["id"]), failed_only, since=since) is None


def test_it_finds_a_lost_rerun_that_was_rerun_since(testsigma_client, testsigma_app):
    source = finished_original(testsigma_app)
    quiet(testsigma_app)
    call = planned(source)
    since = testsigma_app.now()
    send_unread(testsigma_client, testsigma_app, call)
    lost = newest_id(testsigma_app)
    testsigma_app.clock.step(120)
    testsigma_client.rerun(lost, RerunSpec(scope=Scope.ALL), schedule_id=str(PLAN))
    assert newest_id(testsigma_app) != lost
    assert testsigma_client.find_started(str(source["id"]), call, since=since) == lost


def test_it_finds_the_run_a_lost_trigger_started(testsigma_client, testsigma_app):
    known = str(finished_original(testsigma_app)["id"])
    quiet(testsigma_app)
    since = testsigma_app.now()
    assert testsigma_client.find_run_now(str(PLAN), since=since, known_run_id=known) is None
    testsigma_app.faults = [Fault(method="POST", path="/execution_results$", malformed=True)]
    with pytest.raises(ProtocolError):
        testsigma_client.run_now(str(PLAN), variables={"locale": "de"}, build="7")
    testsigma_app.faults = []
    started = newest_id(testsigma_app)
    find = testsigma_client.find_run_now
    assert find(str(PLAN), since=since, variables={"locale": "de"}, known_run_id=known) == started
    assert find(str(PLAN), since=since, variables={"locale": "fr"}, known_run_id=known) is None
    # Without a run of the plan there is nothing to ask: Testsigma lists no runs.
    assert find(str(PLAN), since=since) is None
    quiet(testsigma_app)
    assert find(str(PLAN), since=testsigma_app.now(), known_run_id=known) is None
