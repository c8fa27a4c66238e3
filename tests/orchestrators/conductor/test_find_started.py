"""Finding the run a Conductor rerun, retry or start started when its answer was lost."""

from __future__ import annotations

import time

import httpx
import pytest

from runs.orchestrators.base import (
    CaseTarget,
    PlannedCall,
    ProtocolError,
    RerunSpec,
    Scope,
    Unavailable,
)
from runs.orchestrators.conductor.client import ConductorClient
from runs.orchestrators.conductor.emulator import ConductorEmulator, Execution
from runs.orchestrators.emulation import Fault
from tests.fixtures.conductor import make_conductor_client
from tests.orchestrators.conductor.estate import failed_at, failed_task, run_to_end


def quiet(app: ConductorEmulator) -> None:
    """Let a minute pass, so nothing the estate did counts as begun since now."""
    app.clock.step(60)
    app.advance(app.now())


def planned(execution: Execution, scope: Scope) -> PlannedCall:
    spec = RerunSpec(scope=scope, workflow_input={"env": "qa"})
    if scope == Scope.FROM_TASK:
        task = failed_task(execution)
        spec = RerunSpec(
            scope=scope, cases=(CaseTarget(task["taskId"], task["referenceTaskName"]),)
        )
    (call,) = ConductorClient.plan_rerun(
        execution.id, spec, schedule_id=execution.wf["workflowName"]
    )
    return call


def send_unread(
    client: ConductorClient, app: ConductorEmulator, run_id: str, call: PlannedCall
) -> None:
    """Send `call`; the cluster acts on it but its answer cannot be read (a retry answers 204,
    with no body to spoil: its answer is simply forgotten)."""
    if call.path.endswith("/retry"):
        client.send_planned(run_id, call)
        return
    app.faults = [Fault(path="/rerun$", malformed=True)]
    with pytest.raises(ProtocolError):
        client.send_planned(run_id, call)
    app.faults = []


@pytest.mark.parametrize("scope", [Scope.ALL, Scope.FAILED, Scope.FROM_TASK])
def test_it_finds_the_execution_a_lost_rerun_or_retry_reopened(
    conductor_client, conductor_app, scope
):
    execution = failed_at(conductor_app, "flaky")
    quiet(conductor_app)
    call = planned(execution, scope)
    since = conductor_app.now()
    assert conductor_client.find_started(execution.id, call, since=since) is None
    send_unread(conductor_client, conductor_app, execution.id, call)
    assert execution.wf["status"] == "RUNNING"
    assert conductor_client.find_started(execution.id, call, since=since) == execution.id
    # Still found once the new attempt is over: its tasks were scheduled since.
    run_to_end(conductor_app, execution)
    assert execution.wf["status"] != "RUNNING"
    assert conductor_client.find_started(execution.id, call, since=since) == execution.id


def test_it_finds_an_orkes_rerun(orkes_client, orkes_app):
    execution = failed_at(orkes_app, "flaky")
    quiet(orkes_app)
    call = planned(execution, Scope.ALL)
    since = orkes_app.now()
    send_unread(orkes_client, orkes_app, execution.id, call)
    assert orkes_client.find_started(execution.id, call, since=since) == execution.id


def test_it_finds_a_rerun_whose_answer_timed_out(conductor_server, conductor_app):
    client = make_conductor_client(conductor_server, timeout=httpx.Timeout(0.3, connect=1.0))
    execution = failed_at(conductor_app, "flaky")
    quiet(conductor_app)
    call = planned(execution, Scope.ALL)
    since = conductor_app.now()
    conductor_app.faults = [Fault(path="/rerun", latency=0.6)]
    with pytest.raises(Unavailable) as caught:
        client.send_planned(execution.id, call)
    assert caught.value.outcome_unknown
    deadline = time.monotonic() + 5
    while execution.wf["status"] != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)  # the cluster handles the call after the client gave up on it
    conductor_app.faults = []
    assert client.find_started(execution.id, call, since=since) == execution.id
    client.close()


def test_it_finds_nothing_for_a_call_never_sent(conductor_client, conductor_app):
    execution = failed_at(conductor_app, "flaky")
    quiet(conductor_app)
    since = conductor_app.now()
    for scope in (Scope.ALL, Scope.FAILED, Scope.FROM_TASK):
        assert (
            conductor_client.find_started(execution.id, planned(execution, scope), since=since)
            is None
        )
    # A call refused before it reached the cluster leaves nothing either.
    conductor_app.faults = [Fault(path="/rerun", error_rate=1.0, status=503)]
    call = planned(execution, Scope.ALL)
    with pytest.raises(Unavailable):
        conductor_client.send_planned(execution.id, call)
    assert conductor_client.find_started(execution.id, call, since=since) is None
    assert conductor_client.find_started("no-such-workflow", call, since=since) is None


def test_it_finds_nothing_that_began_before_since(conductor_client, conductor_app):
    execution = failed_at(conductor_app, "flaky")
    quiet(conductor_app)
    call = planned(execution, Scope.FAILED)
    before = conductor_app.now()
    conductor_client.send_planned(execution.id, call)
    run_to_end(conductor_app, execution)
    quiet(conductor_app)
    assert conductor_client.find_started(execution.id, call, since=conductor_app.now()) is None
    assert conductor_client.find_started(execution.id, call, since=before) == execution.id


def test_it_finds_the_execution_a_lost_start_made(conductor_client, conductor_app):
    name = failed_at(conductor_app, "flaky").wf["workflowName"]
    quiet(conductor_app)
    assert conductor_client.find_run_now(name, since=conductor_app.now()) is None
    since = conductor_app.now()
    conductor_app.faults = [Fault(path="/api/workflow$", malformed=True)]
    with pytest.raises(ProtocolError):
        conductor_client.run_now(name, variables={"env": "qa", "build": "41"})
    with pytest.raises(ProtocolError):
        conductor_client.run_now(name, variables={"env": "qa", "build": "42"})
    conductor_app.faults = []
    first, second = conductor_app._order[-2:]
    assert conductor_client.find_run_now(name, since=since, variables={"build": "42"}) == second
    assert conductor_client.find_run_now(name, since=since, variables={"env": "qa"}) == first
    assert conductor_client.find_run_now(name, since=since, variables={"build": "43"}) is None
    run_to_end(conductor_app, conductor_app.executions[second])
    quiet(conductor_app)
    assert conductor_client.find_run_now(name, since=conductor_app.now()) is None
