"""The Leapwork client against its emulator over real HTTP on loopback."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from runs.orchestrators.base import (
    BadRequest,
    CaseTarget,
    NotFound,
    PlannedCall,
    ProtocolError,
    RerunSpec,
    Scope,
    StepTarget,
    Unauthorized,
    Unavailable,
)
from runs.orchestrators.emulation import Fault
from runs.orchestrators.http import make_client
from runs.orchestrators.leapwork.client import (
    Keyframe,
    LeapworkClient,
    log_excerpt,
    parse_date,
    parse_timespan,
)
from runs.status import Status
from tests.fixtures.leapwork import leapwork_client_for

# Helpers -----------------------------------------------------------------------------------


def regression(app: Any) -> dict[str, Any]:
    """The seed-7 schedule sure to hold a failing, a flaky and an agent-bound flow."""
    return next(s for s in app.state()["schedules"] if s["title"] == "Regression - Checkout")


def flows_by_behaviour(app: Any, schedule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    flows = {f["behaviour"]: f for f in app.state()["flows"] if f["schedule_id"] == schedule["id"]}
    return flows


def run_state(app: Any, run_id: str) -> dict[str, Any]:
    return next(run for run in app.state()["runs"] if run["id"] == run_id)


def newest_run_id(app: Any, schedule: dict[str, Any]) -> str:
    runs = [r for r in app.state()["runs"] if r["schedule_id"] == schedule["id"]]
    return max(runs, key=lambda r: r["created_at"])["id"]


def finish_everything(app: Any) -> None:
    app.clock.step(3600)


def paths(app: Any) -> list[tuple[str, str]]:
    return [(entry["method"], entry["path"]) for entry in app.requests()]


# Reads -------------------------------------------------------------------------------------


def test_it_proves_the_credential(leapwork_client, leapwork_app):
    leapwork_client.check()
    entry = leapwork_app.requests()[-1]
    assert (entry["method"], entry["path"]) == ("GET", "/api/v4/agents")
    assert entry["headers"]["accesskey"] == "***"


def test_it_lists_schedules_with_their_steps(leapwork_client, leapwork_app):
    schedules = leapwork_client.list_schedules()
    state = leapwork_app.state()["schedules"]
    assert [s.external_id for s in schedules] == [s["id"] for s in state]
    assert [s.title for s in schedules] == [s["title"] for s in state]
    first = schedules[0]
    assert [step.external_id for step in first.steps] == [step["id"] for step in state[0]["steps"]]
    assert [step.index for step in first.steps] == list(range(len(first.steps)))
    assert not any(s.is_temporary for s in schedules)
    assert paths(leapwork_app) == [("GET", "/api/v4/schedules")]


def test_it_gets_one_schedule_the_hierarchy_and_the_schedule_of_a_run(
    leapwork_client, leapwork_app
):
    schedule = regression(leapwork_app)
    one = leapwork_client.get_schedule(schedule["id"])
    assert (one.external_id, one.title) == (schedule["id"], "Regression - Checkout")
    nodes = leapwork_client.schedule_hierarchy()
    node = next(n for n in nodes if n.schedule.external_id == schedule["id"])
    assert node.parents == ("Web",)
    assert node.schedule.steps == one.steps
    of_run = leapwork_client.schedule_of_run(newest_run_id(leapwork_app, schedule))
    assert of_run == one
    assert paths(leapwork_app)[-1][1].startswith("/api/v4/schedules/run/")


def test_it_lists_agents_temporary_agents_and_one_agent(leapwork_client, leapwork_app):
    state = leapwork_app.state()["agents"]
    agents = leapwork_client.list_agents()
    assert {a.external_id for a in agents} == {a["id"] for a in state if not a["temporary"]}
    assert all(a.host.endswith(".qa.local") for a in agents)
    temporary = leapwork_client.agents(temporary=True)
    assert [a.title for a in temporary] == ["Cloud-Chrome-temp"]
    assert leapwork_client.get_agent(agents[0].external_id) == agents[0]
    assert list(map(tuple, leapwork_app.requests()[1]["query"])) == [("temporary", "true")]


def test_it_lists_runs_newest_first_bounded_by_count(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    refs = leapwork_client.list_runs(schedule["id"], limit=2)
    runs = sorted(
        (r for r in leapwork_app.state()["runs"] if r["schedule_id"] == schedule["id"]),
        key=lambda r: r["created_at"],
        reverse=True,
    )
    assert [ref.external_id for ref in refs] == [r["id"] for r in runs[:2]]
    entry = leapwork_app.requests()[-1]
    assert entry["path"] == f"/api/v4/schedules/{schedule['id']}/runIds/NoFilter"
    assert list(map(tuple, entry["query"])) == [("count", "2")]


def test_it_lists_runs_since_a_moment_through_last_days(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    since = datetime.now(UTC) - timedelta(hours=36)
    refs = leapwork_client.list_runs(schedule["id"], since=since, limit=10)
    entry = leapwork_app.requests()[-1]
    assert entry["path"] == f"/api/v4/schedules/{schedule['id']}/runIds/LastDays"
    assert list(map(tuple, entry["query"])) == [("count", "3")]
    recent = [
        r["id"]
        for r in sorted(leapwork_app.state()["runs"], key=lambda r: r["created_at"], reverse=True)
        if r["schedule_id"] == schedule["id"]
        and datetime.fromisoformat(r["created_at"]) >= leapwork_app.now() - timedelta(days=3)
    ]
    assert [ref.external_id for ref in refs] == recent
    assert len(refs) >= 1


def test_it_gets_a_finished_run_with_results_and_logs_for_failures_only(
    leapwork_client, leapwork_app
):
    schedule = regression(leapwork_app)
    run_id = newest_run_id(leapwork_app, schedule)
    run = leapwork_client.get_run(run_id)
    state = run_state(leapwork_app, run_id)
    assert run.external_id == run_id
    assert (run.schedule_id, run.schedule_title) == (schedule["id"], schedule["title"])
    assert (run.status, run.vendor_status) == (Status.FAILED, "Finished")
    assert run.trigger in {"scheduled", "manual"}
    assert [r.external_id for r in run.results] == [i["id"] for i in state["items"]]
    assert [r.seq for r in run.results] == list(range(len(run.results)))
    assert run.started_at is not None and run.started_at.tzinfo is not None
    assert run.finished_at == max(r.finished_at for r in run.results)
    assert run.duration > timedelta(0)
    failed = [r for r in run.results if r.status.is_failure]
    assert len(failed) == state["counts"]["failed"] >= 3
    assert all(r.message and r.log_excerpt for r in failed)
    assert all(not r.log_excerpt for r in run.results if not r.status.is_failure)
    first = run.results[0]
    assert first.duration == timedelta(seconds=2)
    assert first.finished_at - first.started_at == timedelta(seconds=2)
    assert first.agent_id and first.agent_title and first.case_title
    logged = [p for _, p in paths(leapwork_app)]
    assert logged[:2] == [f"/api/v4/run/{run_id}", f"/api/v4/run/{run_id}/runItemIds"]
    keyframes = [p for p in logged if p.endswith("/keyframes")]
    # Items are fetched side by side: their logs come in any order.
    assert sorted(keyframes) == sorted(
        f"/api/v4/runItems/{r.external_id}/keyframes" for r in failed
    )


def in_flight(server: Any) -> dict[str, int]:
    response = httpx.get(f"{server.base_url}/_emulator/in-flight", timeout=5)
    response.raise_for_status()
    return response.json()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_it_fetches_run_items_at_most_concurrency_at_a_time(
    leapwork_server, leapwork_app, concurrency
):
    run_id = newest_run_id(leapwork_app, regression(leapwork_app))
    one_by_one = leapwork_client_for(leapwork_server, concurrency=1)
    expected = one_by_one.get_run(run_id)
    one_by_one.close()
    assert len(expected.results) > 2 * concurrency
    # Each item call is held long enough for the next ones to overlap it, if they are sent.
    leapwork_app.faults = [Fault(path="/api/v4/runItems/", latency=0.05)]
    httpx.delete(f"{leapwork_server.base_url}/_emulator/in-flight", timeout=5)
    client = leapwork_client_for(leapwork_server, concurrency=concurrency)

    run = client.get_run(run_id)
    client.close()

    assert run == expected  # the same data, in the same order (seq)
    peak = in_flight(leapwork_server)["peak"]
    assert peak == 1 if concurrency == 1 else 1 < peak <= concurrency


@pytest.mark.parametrize(("status", "error"), [(404, NotFound), (401, Unauthorized)])
def test_it_raises_the_first_failing_item_typed(leapwork_server, leapwork_app, status, error):
    run_id = newest_run_id(leapwork_app, regression(leapwork_app))
    item_ids = [i["id"] for i in run_state(leapwork_app, run_id)["items"]]
    leapwork_app.faults = [
        Fault(
            path=f"/api/v4/runItems/({item_ids[3]}|{item_ids[5]})$", error_rate=1.0, status=status
        )
    ]
    client = leapwork_client_for(leapwork_server, concurrency=4)
    with pytest.raises(error) as caught:
        client.get_run(run_id)
    client.close()
    assert caught.value.status_code == status


def test_it_reads_the_run_status_on_the_run_path(leapwork_client, leapwork_app):
    run_id = newest_run_id(leapwork_app, regression(leapwork_app))
    assert leapwork_client.run_status(run_id) == "Finished"
    assert paths(leapwork_app) == [("GET", f"/api/v4/run/{run_id}/status")]


def test_it_follows_a_run_along_the_clock(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    run_id = leapwork_client.run_now(schedule["id"])
    run = leapwork_client.get_run(run_id)
    assert (run.status, run.vendor_status) == (Status.QUEUED, "Queued")
    assert {r.status for r in run.results} == {Status.QUEUED}
    assert all(r.started_at is None for r in run.results)
    leapwork_app.clock.step(1.5)
    run = leapwork_client.get_run(run_id)
    assert (run.status, run.vendor_status) == (Status.RUNNING, "Executing")
    assert run.results[0].status == Status.RUNNING
    assert run.results[0].vendor_status == "Running"
    assert run.results[1].status == Status.QUEUED
    leapwork_app.clock.step(2)
    run = leapwork_client.get_run(run_id)
    assert run.results[0].status.is_terminal
    assert run.results[1].status == Status.RUNNING
    finish_everything(leapwork_app)
    run = leapwork_client.get_run(run_id)
    assert run.status == Status.FAILED
    assert run.trigger == "manual"


# Writes ------------------------------------------------------------------------------------


def test_it_runs_a_schedule_now_with_variables_as_query_parameters(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    run_id = leapwork_client.run_now(schedule["id"], variables={"Locale": "de-DE", "Unknown": "x"})
    entry = leapwork_app.requests()[-1]
    assert (entry["method"], entry["path"]) == ("PUT", f"/api/v3/schedules/{schedule['id']}/runNow")
    assert list(map(tuple, entry["query"])) == [("Locale", "de-DE"), ("Unknown", "x")]
    assert entry["body"] is None
    state = run_state(leapwork_app, run_id)
    assert state["variables_sent"] == {"Locale": "de-DE", "Unknown": "x"}
    assert state["variables"] == {**schedule["variables"], "Locale": "de-DE"}
    assert state["run_type"] == "Manual"


def test_it_reruns_all_flows_on_agents_with_variables(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    source = newest_run_id(leapwork_app, schedule)
    agent = schedule["agent_ids"][0]
    spec = RerunSpec(
        scope=Scope.ALL,
        steps=tuple(StepTarget(step["id"], (agent,)) for step in schedule["steps"]),
        variables={"Locale": "fr-FR"},
    )
    plan = leapwork_client.plan_rerun(source, spec, schedule_id=schedule["id"])
    body = {
        "Variables": [{"Name": "Locale", "Value": "fr-FR"}],
        "Steps": [
            {
                "RunListStepId": step["id"],
                "AgentIds": [agent],
                "EnvironmentParallelization": "runAllCases",
                "StartOrder": "defined",
            }
            for step in schedule["steps"]
        ],
    }
    assert plan == [PlannedCall("PUT", f"/api/v4/run/{source}/reRunOnAgents", {}, body)]
    outcome = leapwork_client.rerun(source, spec, schedule_id=schedule["id"])
    assert len(outcome.run_ids) == 1 and not outcome.errors
    assert outcome.calls[0].target == source
    entry = leapwork_app.requests()[-1]
    assert (entry["method"], entry["path"]) == ("PUT", f"/api/v4/run/{source}/reRunOnAgents")
    assert entry["body"] == body
    assert entry["query"] == []
    assert entry["headers"]["content-type"] == "application/json"
    assert entry["headers"]["accept"] == "text/plain"
    new = run_state(leapwork_app, outcome.run_ids[0])
    old = run_state(leapwork_app, source)
    assert new["source_run_id"] == source
    assert new["variables_sent"] == {"Locale": "fr-FR"}
    assert {i["agent_id"] for i in new["items"]} == {agent}
    assert [i["flow_id"] for i in new["items"]] == list(
        dict.fromkeys(i["flow_id"] for i in old["items"])
    )


def test_it_reruns_failed_flows_one_run_flow_by_id_each(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    source = newest_run_id(leapwork_app, schedule)
    run = leapwork_client.get_run(source)
    failed = [r for r in run.results if r.status.is_failure]
    spec = RerunSpec(
        scope=Scope.FAILED,
        cases=tuple(CaseTarget(r.external_id, r.case_key, (r.agent_id,)) for r in failed),
        variables={"UserName": "bob"},
    )
    plan = leapwork_client.plan_rerun(source, spec, schedule_id=schedule["id"])
    assert plan == [
        PlannedCall(
            "PUT",
            f"/api/v4/flows/{r.case_key}/agent/{r.agent_id}",
            {"isDelete": "true", "UserName": "bob"},
        )
        for r in failed
    ]
    leapwork_app.log.clear()
    outcome = leapwork_client.rerun(source, spec, schedule_id=schedule["id"])
    assert len(outcome.run_ids) == len(failed) and not outcome.errors
    assert [c.target for c in outcome.calls] == [f"{r.case_key}@{r.agent_id}" for r in failed]
    logged = leapwork_app.requests()
    assert [(e["method"], e["path"]) for e in logged] == [(c.method, c.path) for c in plan]
    assert all(
        list(map(tuple, e["query"])) == [("isDelete", "true"), ("UserName", "bob")] for e in logged
    )
    assert all(e["body"] is None for e in logged)
    finish_everything(leapwork_app)
    behaviours = flows_by_behaviour(leapwork_app, schedule)
    statuses = {}
    for result, run_id in zip(failed, outcome.run_ids, strict=True):
        rerun = leapwork_client.get_run(run_id)
        assert rerun.schedule_is_temporary
        assert rerun.schedule_title.startswith("Run flow ")
        assert [r.case_key for r in rerun.results] == [result.case_key]
        assert rerun.results[0].agent_id == result.agent_id
        statuses[(result.case_key, result.agent_id)] = rerun.status
    assert all(
        status == Status.PASSED
        for (flow, _), status in statuses.items()
        if flow == behaviours["flaky"]["id"]
    )
    assert all(
        status == Status.FAILED
        for (flow, _), status in statuses.items()
        if flow in {behaviours["fail"]["id"], behaviours["agent"]["id"]}
    )


def test_it_reruns_picked_flows_on_another_agent(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    agent_bound = flows_by_behaviour(leapwork_app, schedule)["agent"]
    other = next(a for a in schedule["agent_ids"] if a != agent_bound["fails_on"])
    spec = RerunSpec(scope=Scope.PICKED, cases=(CaseTarget("r1", agent_bound["id"], (other,)),))
    outcome = leapwork_client.rerun("any-run", spec, schedule_id=schedule["id"])
    finish_everything(leapwork_app)
    assert leapwork_client.get_run(outcome.run_ids[0]).status == Status.PASSED


def test_it_keeps_the_other_run_flow_calls_when_one_fails(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    flow = schedule["steps"][0]["flow_ids"][3]
    agent = schedule["steps"][0]["agent_ids"][0]
    spec = RerunSpec(
        scope=Scope.FAILED,
        cases=(
            CaseTarget("r1", "no-such-flow", (agent,)),
            CaseTarget("r2", flow, (agent,)),
        ),
    )
    outcome = leapwork_client.rerun("src", spec, schedule_id=schedule["id"])
    assert [c.ok for c in outcome.calls] == [False, True]
    assert isinstance(outcome.errors[0].error, NotFound)
    assert outcome.errors[0].target == f"no-such-flow@{agent}"
    assert len(outcome.run_ids) == 1


def test_it_refuses_reruns_it_cannot_plan(leapwork_client):
    with pytest.raises(BadRequest):
        leapwork_client.plan_rerun("r", RerunSpec(scope=Scope.ALL), schedule_id="s")
    with pytest.raises(BadRequest):
        leapwork_client.plan_rerun(
            "r", RerunSpec(scope=Scope.FAILED, cases=(CaseTarget("x", "f"),)), schedule_id="s"
        )
    with pytest.raises(BadRequest):
        leapwork_client.plan_rerun("r", RerunSpec(scope=Scope.FROM_TASK), schedule_id="s")


def test_it_runs_one_flow_and_the_temporary_schedule_goes_away(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    flow = schedule["steps"][0]["flow_ids"][4]
    agent = schedule["steps"][0]["agent_ids"][0]
    run_id = leapwork_client.run_flow(flow, agent, variables={"Locale": "nl-NL"})
    temporary = leapwork_client.schedule_of_run(run_id)
    assert temporary.is_temporary
    assert temporary.external_id in {s.external_id for s in leapwork_client.list_schedules()}
    finish_everything(leapwork_app)
    assert temporary.external_id not in {s.external_id for s in leapwork_client.list_schedules()}
    assert leapwork_client.schedule_of_run(run_id) == temporary
    assert leapwork_client.get_run(run_id).status == Status.PASSED


def test_it_reruns_a_run_with_the_plain_re_run(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    source = newest_run_id(leapwork_app, schedule)
    same = leapwork_client.rerun_run(source, variables={"Locale": "sv-SE"})
    agent = schedule["agent_ids"][0]
    one = leapwork_client.rerun_run(source, agent_id=agent)
    logged = leapwork_app.requests()
    assert (logged[-2]["method"], logged[-2]["path"]) == ("PUT", f"/api/v3/run/{source}/reRun")
    assert list(map(tuple, logged[-2]["query"])) == [("Locale", "sv-SE")]
    assert logged[-1]["path"] == f"/api/v4/run/{source}/reRun/{agent}"
    assert len(run_state(leapwork_app, same)["items"]) == len(
        run_state(leapwork_app, source)["items"]
    )
    assert {i["agent_id"] for i in run_state(leapwork_app, one)["items"]} == {agent}


def test_it_stops_a_run_on_the_run_path(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    run_id = leapwork_client.run_now(schedule["id"])
    leapwork_app.clock.step(1.5)
    leapwork_client.stop_run(run_id)
    assert paths(leapwork_app)[-1] == ("PUT", f"/api/v4/run/{run_id}/stop")
    run = leapwork_client.get_run(run_id)
    assert run.vendor_status == "Finished"
    assert {r.vendor_status for r in run.results} == {"Cancelled"}
    assert {r.status for r in run.results} == {Status.CANCELLED}


# The other documented forms -------------------------------------------------------------------


def test_it_reads_the_legacy_forms(leapwork_legacy_client, leapwork_legacy_app):
    schedule = regression(leapwork_legacy_app)
    run_id = newest_run_id(leapwork_legacy_app, schedule)
    run = leapwork_legacy_client.get_run(run_id)
    assert run.status == Status.FAILED
    passed = [r for r in run.results if r.status == Status.PASSED]
    assert passed and {r.vendor_status for r in passed} == {"Pass"}
    assert all(r.agent_id and r.agent_title for r in run.results)
    assert len(run.results) == len(run_state(leapwork_legacy_app, run_id)["items"])


def test_it_falls_back_to_the_schedules_path_for_status_and_stop(
    leapwork_legacy_client, leapwork_legacy_app
):
    schedule = regression(leapwork_legacy_app)
    run_id = leapwork_legacy_client.run_now(schedule["id"])
    leapwork_legacy_app.log.clear()
    assert leapwork_legacy_client.run_status(run_id) == "Queued"
    leapwork_legacy_client.stop_run(run_id)
    assert paths(leapwork_legacy_app) == [
        ("GET", f"/api/v4/run/{run_id}/status"),
        ("GET", f"/api/v4/schedules/{run_id}/status"),
        ("PUT", f"/api/v4/run/{run_id}/stop"),
        ("PUT", f"/api/v4/schedules/{run_id}/stop"),
    ]
    assert run_state(leapwork_legacy_app, run_id)["status"] == "Finished"


def test_it_reads_a_bare_text_run_id_from_rerun_on_agents(
    leapwork_legacy_client, leapwork_legacy_app
):
    schedule = regression(leapwork_legacy_app)
    source = newest_run_id(leapwork_legacy_app, schedule)
    steps = {step["id"]: step["agent_ids"] for step in schedule["steps"]}
    run_id = leapwork_legacy_client.rerun_on_agents(source, steps)
    assert run_state(leapwork_legacy_app, run_id)["source_run_id"] == source


def mock_client(handler: Any) -> LeapworkClient:
    transport = httpx.MockTransport(handler)
    return LeapworkClient(make_client("http://leapwork", transport=transport), credential="k")


def test_it_reads_a_quoted_text_run_id():
    client = mock_client(lambda request: httpx.Response(200, text='"abc-123"'))
    spec = RerunSpec(scope=Scope.ALL, steps=(StepTarget("s", ("a",)),))
    assert client.rerun("r", spec, schedule_id="s").run_ids == ("abc-123",)


# Errors ------------------------------------------------------------------------------------


def test_it_raises_unauthorized_on_a_wrong_key(leapwork_server):
    client = leapwork_client_for(leapwork_server, credential="wrong")
    with pytest.raises(Unauthorized) as caught:
        client.list_schedules()
    assert caught.value.status_code == 401


def test_it_raises_not_found_for_an_unknown_run(leapwork_client):
    with pytest.raises(NotFound) as caught:
        leapwork_client.get_run("00000000-0000-4000-a000-000000000000")
    assert "was not found" in caught.value.message


def test_it_raises_bad_request_with_the_vendor_message(leapwork_client, leapwork_app):
    schedule = regression(leapwork_app)
    source = newest_run_id(leapwork_app, schedule)
    spec = RerunSpec(scope=Scope.ALL, steps=(StepTarget("no-such-step", ()),))
    with pytest.raises(BadRequest) as caught:
        leapwork_client.rerun(source, spec, schedule_id=schedule["id"])
    assert caught.value.status_code == 400
    assert "RunListStepId 'no-such-step'" in caught.value.message


@pytest.mark.parametrize(
    ("status", "error"),
    [(405, BadRequest), (446, Unavailable), (455, Unavailable), (500, Unavailable)],
)
def test_it_types_fault_statuses(leapwork_client, leapwork_app, status, error):
    schedule = regression(leapwork_app)
    leapwork_app.faults = [Fault(path="runNow", error_rate=1.0, status=status)]
    with pytest.raises(error) as caught:
        leapwork_client.run_now(schedule["id"])
    assert caught.value.status_code == status
    assert len(leapwork_app.requests(path="runNow")) == 1  # writes never retry


def test_it_retries_reads_while_unavailable(leapwork_client, leapwork_app):
    leapwork_app.faults = [
        Fault(path="/api/v4/schedules$", error_rate=1.0, status=503, remaining=2)
    ]
    assert leapwork_client.list_schedules()
    assert len(leapwork_app.requests(path="/api/v4/schedules")) == 3


def test_it_raises_unavailable_on_a_timeout(leapwork_server, leapwork_app):
    client = LeapworkClient(
        make_client(leapwork_server.base_url, timeout=httpx.Timeout(0.3, connect=1.0)),
        credential="test-key",
    )
    client.http.retries = 0
    leapwork_app.faults = [Fault(path="agents", timeout=0.8)]
    with pytest.raises(Unavailable) as caught:
        client.list_agents()
    assert caught.value.outcome_unknown


def test_it_raises_protocol_error_on_malformed_json(leapwork_client, leapwork_app):
    leapwork_app.faults = [Fault(path="schedules", malformed=True)]
    with pytest.raises(ProtocolError):
        leapwork_client.list_schedules()


def test_it_raises_unavailable_when_the_connection_is_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = LeapworkClient(make_client(f"http://127.0.0.1:{port}", timeout=1.0), credential="k")
    client.http.retries = 0
    with pytest.raises(Unavailable) as caught:
        client.list_schedules()
    assert not caught.value.outcome_unknown


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {"RunId": "r", "Status": "Finished", "CreatedAt": {"Value": "yesterday"}},
        {"RunId": "r", "Status": "Finished", "Schedule": "not an object"},
    ],
)
def test_it_raises_protocol_error_on_unexpected_shapes(answer):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/runItemIds"):
            return httpx.Response(200, json={"RunItemIds": []})
        return httpx.Response(200, json=answer)

    with pytest.raises(ProtocolError):
        mock_client(handler).get_run("r")


def test_it_raises_protocol_error_on_a_run_item_without_flow_info():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/runItemIds"):
            return httpx.Response(200, json={"RunItemIds": ["i"]})
        if "/runItems/" in request.url.path:
            return httpx.Response(200, json={"RunItemId": "i"})
        return httpx.Response(200, json={"RunId": "r", "Status": "Finished"})

    with pytest.raises(ProtocolError):
        mock_client(handler).get_run("r")


def test_it_raises_protocol_error_when_no_run_id_comes_back():
    client = mock_client(lambda request: httpx.Response(200, json={"$id": "1"}))
    with pytest.raises(ProtocolError):
        client.run_now("s")


# Parsing -----------------------------------------------------------------------------------


def test_it_parses_leapwork_dates():
    value = {
        "Value": "2026-11-22T11:19:10.1234567+01:00",
        "LocalDateTime": "2026-11-22T11:19:10.1234567",
        "UtcDateTime": "2026-11-22T10:19:10.1234567Z",
        "Ticks": 639319967501234567,
    }
    expected = datetime(2026, 11, 22, 10, 19, 10, 123456, tzinfo=UTC)
    assert parse_date(value) == expected
    assert parse_date({"UtcDateTime": value["UtcDateTime"]}) == expected
    assert parse_date({"Ticks": 621355968000000000}) == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_date(None) is None


def test_it_parses_dotnet_durations():
    assert parse_timespan("00:00:02") == timedelta(seconds=2)
    assert parse_timespan("01:02:03.5000000") == timedelta(hours=1, minutes=2, seconds=3.5)
    assert parse_timespan("2.00:00:01.0000001") == timedelta(days=2, seconds=1)
    assert parse_timespan("garbage", 1500) == timedelta(milliseconds=1500)
    assert parse_timespan(None) is None


def test_it_keeps_failure_lines_in_the_log_excerpt():
    frames = [
        Keyframe(None, "Trace", "Running", "Flow started", "Start"),
        Keyframe(None, "Info", "Running", "Connected", "Start"),
        Keyframe(None, "Error", "Failed", "Element not found", "Click"),
        Keyframe(None, "Info", "Failed", "Flow failed", "Fail"),
    ]
    message, excerpt = log_excerpt(frames)
    assert message == "Element not found"
    assert excerpt == "[Error] Click: Element not found\n[Info] Fail: Flow failed"
    message, excerpt = log_excerpt(frames[:2])
    assert (message, excerpt) == ("", "[Info] Start: Connected")


def test_it_keeps_the_warnings_that_led_to_a_failure_in_the_log_excerpt():
    frames = [
        Keyframe(None, "Info", "Running", "Connected", "Start"),
        Keyframe(None, "Warning", "Running", "ECONNREFUSED (attempt 1/3)", "Call web service"),
        Keyframe(None, "Warning", "Running", "ECONNREFUSED (attempt 2/3)", "Call web service"),
        Keyframe(None, "Error", "Failed", "Connection refused after 3 retries", "Call web service"),
        Keyframe(None, "Info", "Failed", "Flow failed", "Fail"),
    ]
    message, excerpt = log_excerpt(frames)
    assert message == "Connection refused after 3 retries"
    assert excerpt.splitlines() == [
        "[Warning] Call web service: ECONNREFUSED (attempt 1/3)",
        "[Warning] Call web service: ECONNREFUSED (attempt 2/3)",
        "[Error] Call web service: Connection refused after 3 retries",
        "[Info] Fail: Flow failed",
    ]
