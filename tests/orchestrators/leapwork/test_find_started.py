"""Finding the run a Leapwork rerun or run-now call started when its answer was lost."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from runs.orchestrators.base import (
    CaseTarget,
    PlannedCall,
    ProtocolError,
    RerunSpec,
    Scope,
    StepTarget,
    Unavailable,
)
from runs.orchestrators.emulation import Fault
from runs.orchestrators.http import make_client
from runs.orchestrators.leapwork.client import LeapworkClient
from runs.orchestrators.leapwork.emulator import LeapworkEmulator
from tests.fixtures.leapwork import LEAPWORK_KEY

# Helpers -----------------------------------------------------------------------------------


def regression(app: LeapworkEmulator) -> dict[str, Any]:
    """The seed-7 schedule with several flows and agents."""
    return next(s for s in app.state()["schedules"] if s["title"] == "Regression - Checkout")


def newest_run(app: LeapworkEmulator, schedule: dict[str, Any]) -> dict[str, Any]:
    runs = [r for r in app.state()["runs"] if r["schedule_id"] == schedule["id"]]
    return max(runs, key=lambda r: r["created_at"])


def runs_by_trigger(app: LeapworkEmulator, trigger: str) -> list[dict[str, Any]]:
    return [r for r in app.state()["runs"] if r["trigger"] == trigger]


def run_flow_calls(
    schedule: dict[str, Any], pairs: list[tuple[str, str]], run_id: str = "src"
) -> list[PlannedCall]:
    spec = RerunSpec(
        scope=Scope.FAILED,
        cases=tuple(CaseTarget(f"r{n}", flow, (agent,)) for n, (flow, agent) in enumerate(pairs)),
        variables={"Locale": "de-DE"},
    )
    return LeapworkClient.plan_rerun(run_id, spec, schedule_id=schedule["id"])


def send_unread(
    client: LeapworkClient, app: LeapworkEmulator, run_id: str, call: PlannedCall
) -> None:
    """Send `call`; the controller runs it but its answer cannot be read."""
    app.faults = [Fault(method="PUT", malformed=True)]
    with pytest.raises(ProtocolError):
        client.send_planned(run_id, call)
    app.faults = []


# Run Flow by Id ----------------------------------------------------------------------------


def test_it_finds_the_run_a_run_flow_call_started_when_its_answer_was_unreadable(
    leapwork_client, leapwork_app
):
    schedule = regression(leapwork_app)
    flow, agent = schedule["steps"][0]["flow_ids"][0], schedule["agent_ids"][0]
    since = leapwork_app.now()
    (call,) = run_flow_calls(schedule, [(flow, agent)])
    send_unread(leapwork_client, leapwork_app, "src", call)
    (started,) = runs_by_trigger(leapwork_app, "run_flow")
    assert leapwork_client.find_started("src", call, since=since) == started["id"]


def test_it_finds_the_run_a_run_flow_call_started_when_it_timed_out(leapwork_server, leapwork_app):
    client = LeapworkClient(
        make_client(leapwork_server.base_url, timeout=httpx.Timeout(0.3, connect=1.0)),
        credential=LEAPWORK_KEY,
    )
    schedule = regression(leapwork_app)
    flow, agent = schedule["steps"][0]["flow_ids"][1], schedule["agent_ids"][0]
    since = leapwork_app.now()
    (call,) = run_flow_calls(schedule, [(flow, agent)])
    leapwork_app.faults = [Fault(path="/flows/", latency=0.6)]
    with pytest.raises(Unavailable) as caught:
        client.send_planned("src", call)
    assert caught.value.outcome_unknown
    deadline = time.monotonic() + 5
    while not runs_by_trigger(leapwork_app, "run_flow") and time.monotonic() < deadline:
        time.sleep(0.05)  # the controller handles the call after the client gave up on it
    leapwork_app.faults = []
    (started,) = runs_by_trigger(leapwork_app, "run_flow")
    assert client.find_started("src", call, since=since) == started["id"]
    client.close()


def test_it_finds_nothing_for_a_run_flow_call_never_sent(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    flow, other = schedule["steps"][0]["flow_ids"][:2]
    agent = schedule["agent_ids"][0]
    since = leapwork_app.now()
    sent, never = run_flow_calls(schedule, [(flow, agent), (other, agent)])
    leapwork_client.send_planned("src", sent)
    assert leapwork_client.find_started("src", never, since=since) is None


def test_it_finds_nothing_that_began_before_since(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    flow, agent = schedule["steps"][0]["flow_ids"][0], schedule["agent_ids"][0]
    (call,) = run_flow_calls(schedule, [(flow, agent)])
    before = leapwork_app.now()
    # Kept (isDelete=false), so its temporary schedule stays listed after it finished.
    old = leapwork_client.run_flow(flow, agent, is_delete=False)
    assert leapwork_client.find_started("src", call, since=before) == old
    leapwork_app.clock.step(600)
    assert leapwork_client.find_started("src", call, since=leapwork_app.now()) is None


def test_it_finds_each_of_two_flows_rerun_on_different_agents_to_its_own_run(
    leapwork_client, leapwork_app
):
    schedule = regression(leapwork_app)
    first, second = schedule["steps"][0]["flow_ids"][:2]
    agent_a, agent_b = schedule["agent_ids"][:2]
    since = leapwork_app.now()
    calls = run_flow_calls(schedule, [(first, agent_a), (second, agent_b), (first, agent_b)])
    for call in calls:
        send_unread(leapwork_client, leapwork_app, "src", call)
    runs = {
        (r["items"][0]["flow_id"], r["items"][0]["agent_id"]): r["id"]
        for r in runs_by_trigger(leapwork_app, "run_flow")
    }
    found = [leapwork_client.find_started("src", call, since=since) for call in calls]
    assert found == [runs[(first, agent_a)], runs[(second, agent_b)], runs[(first, agent_b)]]
    assert len(set(found)) == 3


def test_it_looks_through_a_bounded_number_of_calls(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    flow, agent = schedule["steps"][0]["flow_ids"][0], schedule["agent_ids"][0]
    since = leapwork_app.now()
    (call,) = run_flow_calls(schedule, [(flow, agent)])
    leapwork_client.send_planned("src", call)
    leapwork_app.log.clear()
    assert leapwork_client.find_started("src", call, since=since)
    # the schedule list, then the temporary schedule's run ids, its run, item ids and item
    assert len(leapwork_app.requests()) == 5


# Re-run on Agents --------------------------------------------------------------------------


def rerun_on_agents_call(
    schedule: dict[str, Any], source: str, agent_ids: tuple[str, ...]
) -> PlannedCall:
    spec = RerunSpec(
        scope=Scope.ALL,
        steps=tuple(StepTarget(step["id"], agent_ids) for step in schedule["steps"]),
        variables={"Locale": "fr-FR"},
    )
    (call,) = LeapworkClient.plan_rerun(source, spec, schedule_id=schedule["id"])
    return call


def test_it_finds_the_run_a_rerun_on_agents_call_started(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    source = newest_run(leapwork_app, schedule)["id"]
    agent = schedule["agent_ids"][1]
    call = rerun_on_agents_call(schedule, source, (agent,))
    since = leapwork_app.now()
    # A run-now of the same schedule at the same moment runs on every agent: not the rerun's.
    leapwork_client.run_now(schedule["id"])
    send_unread(leapwork_client, leapwork_app, source, call)
    (started,) = runs_by_trigger(leapwork_app, "rerun_on_agents")
    assert started["source_run_id"] == source
    assert leapwork_client.find_started(source, call, since=since) == started["id"]


def test_it_finds_nothing_for_a_rerun_on_agents_call_never_sent(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    source = newest_run(leapwork_app, schedule)["id"]
    call = rerun_on_agents_call(schedule, source, (schedule["agent_ids"][0],))
    # The source itself and the older runs of its schedule are not this call's run.
    assert leapwork_client.find_started(source, call, since=leapwork_app.now()) is None
    leapwork_app.clock.step(600)
    since = leapwork_app.now()
    leapwork_client.send_planned(source, call)
    leapwork_app.clock.step(600)
    assert leapwork_client.find_started(source, call, since=leapwork_app.now()) is None
    assert leapwork_client.find_started(source, call, since=since) is not None


# Run now -----------------------------------------------------------------------------------


def test_it_finds_the_run_a_run_now_call_started(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    assert leapwork_client.find_run_now(schedule["id"], since=leapwork_app.now()) is None
    leapwork_app.clock.step(600)
    since = leapwork_app.now()
    leapwork_app.faults = [Fault(path="runNow", malformed=True)]
    with pytest.raises(ProtocolError):
        leapwork_client.run_now(schedule["id"], variables={"Locale": "it-IT"})
    leapwork_app.faults = []
    (started,) = runs_by_trigger(leapwork_app, "run_now")
    found = leapwork_client.find_run_now(schedule["id"], since=since, variables={"Locale": "it-IT"})
    assert found == started["id"]
    leapwork_app.clock.step(600)
    assert leapwork_client.find_run_now(schedule["id"], since=leapwork_app.now()) is None
