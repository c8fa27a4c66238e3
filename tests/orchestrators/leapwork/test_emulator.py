"""The Leapwork emulator's own behaviour: status codes, shapes, the clock, outcomes, seeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from runs.orchestrators.emulation import Clock, served
from runs.orchestrators.leapwork.emulator import LeapworkEmulator, timespan, with_ids

KEY = "test-key"
GUID = "00000000-0000-4000-a000-000000000000"


def raw(app: LeapworkEmulator, **headers: str) -> httpx.Client:
    """The emulator in-process, with the AccessKey unless headers say otherwise."""
    return httpx.Client(
        transport=httpx.WSGITransport(app=app),
        base_url="http://leapwork",
        headers=headers or {"AccessKey": KEY},
    )


def regression(app: LeapworkEmulator) -> dict[str, Any]:
    return next(s for s in app.state()["schedules"] if s["title"] == "Regression - Checkout")


def behaviour(app: LeapworkEmulator, schedule: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(
        f
        for f in app.state()["flows"]
        if f["schedule_id"] == schedule["id"] and f["behaviour"] == kind
    )


def run_state(app: LeapworkEmulator, run_id: str) -> dict[str, Any]:
    return next(run for run in app.state()["runs"] if run["id"] == run_id)


def last_run(app: LeapworkEmulator, schedule: dict[str, Any]) -> dict[str, Any]:
    runs = [r for r in app.state()["runs"] if r["schedule_id"] == schedule["id"]]
    return max(runs, key=lambda r: r["created_at"])


# Auth, status codes, shapes ---------------------------------------------------------------------


@pytest.mark.parametrize("header", ["AccessKey", "accesskey", "ACCESSKEY", "accessKey"])
def test_it_accepts_the_access_key_in_any_header_case(leapwork_app, header):
    assert raw(leapwork_app, **{header: KEY}).get("/api/v4/schedules").status_code == 200


@pytest.mark.parametrize("headers", [{"AccessKey": "nope"}, {"X-Other": "1"}])
def test_it_refuses_a_wrong_or_missing_access_key(leapwork_app, headers):
    response = raw(leapwork_app, **headers).get("/api/v4/schedules")
    assert response.status_code == 401
    assert response.json()["Message"] == "Authorization has been denied for this request."


def test_it_numbers_objects_with_reference_ids(leapwork_app):
    body = raw(leapwork_app).get("/api/v4/schedules").json()
    first = body[0]
    assert first["$id"] == "1"
    assert first["DateCreation"]["$id"] == "2"
    assert first["DateModify"]["$id"] == "3"
    assert first["RunListSteps"][0]["$id"] == "4"
    assert body[1]["$id"] == str(4 + len(first["RunListSteps"]))
    assert with_ids([{"a": {"b": 1}}, {"c": []}]) == [
        {"$id": "1", "a": {"$id": "2", "b": 1}},
        {"$id": "3", "c": []},
    ]


def test_it_answers_dates_and_durations_in_dotnet_forms(leapwork_app):
    schedule = regression(leapwork_app)
    run = raw(leapwork_app).get(f"/api/v4/run/{last_run(leapwork_app, schedule)['id']}").json()
    created = run["CreatedAt"]
    assert set(created) == {"$id", "Value", "LocalDateTime", "UtcDateTime", "Ticks"}
    value = datetime.fromisoformat(created["Value"][:26] + created["Value"][27:])
    assert value.utcoffset() == timedelta(hours=1)
    assert created["UtcDateTime"].endswith("Z")
    assert created["Value"].startswith(created["LocalDateTime"])
    assert isinstance(created["Ticks"], int)
    assert run["ExecutionTotalTime"] == timespan(
        timedelta(milliseconds=run["ExecutionMilliseconds"])
    )
    assert timespan(timedelta(seconds=2)) == "00:00:02"
    assert timespan(timedelta(days=1, seconds=3.25)) == "1.00:00:03.2500000"


def test_it_answers_the_documented_shapes(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    run_id = last_run(leapwork_app, schedule)["id"]
    listed = client.get("/api/v4/schedules").json()[0]
    assert {"Id", "Title", "IsEnabled", "IsScheduled", "Type", "DateCreation", "DateModify"} < set(
        listed
    )
    assert listed["Type"] == "ScheduleInfo"
    step = listed["RunListSteps"][0]
    assert step["StepStartCondition"] == "Always"
    assert step["EnvironmentParallelization"] == "RunAllFlows"
    assert step["ScheduleInfoId"] == listed["Id"]
    node = client.get("/api/v4/schedules/hierarchy").json()[0]
    assert set(node) == {"$id", "ScheduleHierarchy", "ScheduleInfo"}
    assert set(node["ScheduleHierarchy"]) == {"$id", "Id", "Title", "Type", "Parent"}
    run = client.get(f"/api/v4/run/{run_id}").json()
    assert run["Schedule"]["ScheduleId"] == schedule["id"]
    assert run["Status"] == "Finished"
    assert run["Total"] == len(run_state(leapwork_app, run_id)["items"])
    assert client.get(f"/api/v4/run/{run_id}/status").json() == {"$id": "1", "Status": "Finished"}
    assert client.get(f"/api/v4/schedules/{run_id}/status").json()["Status"] == "Finished"
    ids = client.get(f"/api/v3/run/{run_id}/runItemIds").json()["RunItemIds"]
    item = client.get(f"/api/v4/runItems/{ids[0]}").json()
    assert item["RunId"] == run_id
    assert set(item["FlowInfo"]) == {"$id", "FlowId", "FlowTitle", "Status"}
    assert set(item["AgentInfo"]) == {"$id", "AgentId", "AgentTitle", "ConnectionType"}
    frames = client.get(f"/api/v4/runItems/{ids[0]}/keyframes").json()
    assert {
        "AutomationRunItemId",
        "Timestamp",
        "Level",
        "Status",
        "LogMessage",
        "BlockTitle",
    } < set(frames[0])
    assert frames[0]["Level"] == "Trace"
    agent = client.get("/api/v4/agents").json()[0]
    assert (agent["Type"], agent["ConnectionType"]) == ("Environment", "RemoteAgent")
    assert client.get(f"/api/v4/agents/{agent['Id']}").json()["Title"] == agent["Title"]
    assert agent["UsedBySchedules"][0].keys() == {"$id", "ScheduleId", "ScheduleTitle"}


def test_it_answers_the_legacy_forms(leapwork_legacy_app):
    client = raw(leapwork_legacy_app)
    schedule = regression(leapwork_legacy_app)
    run_id = last_run(leapwork_legacy_app, schedule)["id"]
    body = client.get(f"/api/v4/run/{run_id}/runItemIds").json()
    assert "RunItemIds" not in body
    items = [client.get(f"/api/v4/runItems/{i}").json() for i in body["RunItemsIds"]]
    assert all(item["AutomationRunId"] == run_id and "RunId" not in item for item in items)
    assert all("EnvironmentInfo" in item and "AgentInfo" not in item for item in items)
    assert "Pass" in {item["FlowInfo"]["Status"] for item in items}
    assert client.get(f"/api/v4/run/{run_id}/status").status_code == 404
    assert client.get(f"/api/v4/schedules/{run_id}/status").status_code == 200
    steps = [{"RunListStepId": s["id"], "AgentIds": s["agent_ids"]} for s in schedule["steps"]]
    response = client.put(f"/api/v4/run/{run_id}/reRunOnAgents", json={"Steps": steps})
    assert response.headers["content-type"].startswith("text/plain")
    assert run_state(leapwork_legacy_app, response.text)["source_run_id"] == run_id


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v4/schedules/{GUID}",
        f"/api/v4/schedules/{GUID}/runIds/NoFilter",
        f"/api/v4/schedules/run/{GUID}",
        f"/api/v4/run/{GUID}",
        f"/api/v4/run/{GUID}/status",
        f"/api/v4/run/{GUID}/runItemIds",
        f"/api/v4/runItems/{GUID}",
        f"/api/v4/runItems/{GUID}/keyframes",
        f"/api/v4/agents/{GUID}",
        "/api/v4/nothing-here",
    ],
)
def test_it_answers_404_for_unknown_ids(leapwork_app, path):
    response = raw(leapwork_app).get(path)
    assert response.status_code == 404
    assert response.json()["Message"]


def test_it_answers_404_for_unknown_ids_on_writes(leapwork_app):
    client = raw(leapwork_app)
    agent = regression(leapwork_app)["agent_ids"][0]
    flow = regression(leapwork_app)["steps"][0]["flow_ids"][0]
    assert client.put(f"/api/v3/schedules/{GUID}/runNow").status_code == 404
    assert client.put(f"/api/v4/flows/{GUID}/agent/{agent}").status_code == 404
    assert client.put(f"/api/v4/flows/{flow}/agent/{GUID}").status_code == 404
    assert client.put(f"/api/v4/run/{GUID}/stop").status_code == 404
    assert client.put(f"/api/v4/run/{GUID}/reRunOnAgents", json={"Steps": []}).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v3/schedules/{s}/runNow"),
        ("POST", "/api/v4/schedules"),
        ("GET", "/api/v4/run/{r}/reRunOnAgents"),
        ("PUT", "/api/v4/run/{r}"),
        ("GET", "/api/v4/run/{r}/stop"),
        ("DELETE", "/api/v4/agents"),
    ],
)
def test_it_answers_405_on_a_wrong_method(leapwork_app, method, path):
    schedule = regression(leapwork_app)
    url = path.format(s=schedule["id"], r=last_run(leapwork_app, schedule)["id"])
    response = raw(leapwork_app).request(method, url)
    assert response.status_code == 405
    assert "does not support http method" in response.json()["Message"]


def test_it_rejects_malformed_rerun_on_agents_bodies(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    path = f"/api/v4/run/{last_run(leapwork_app, schedule)['id']}/reRunOnAgents"
    step = schedule["steps"][0]["id"]
    bodies = [
        b"not json",
        b'["Steps"]',
        b'{"Variables": []}',
        b'{"Steps": []}',
        b'{"Steps": [{"RunListStepId": "nope", "AgentIds": []}]}',
        b'{"Steps": [{"RunListStepId": "%s", "AgentIds": ["nope"]}]}' % step.encode(),
        b'{"Steps": [{"RunListStepId": "%s"}], "Variables": [{"Value": "x"}]}' % step.encode(),
    ]
    runs_before = len(leapwork_app.runs)
    for body in bodies:
        response = client.put(path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, body
        assert response.json()["Message"]
    assert len(leapwork_app.runs) == runs_before


def test_it_reruns_on_agents_the_source_runs_flows_on_the_chosen_agents(leapwork_app):
    schedule = regression(leapwork_app)
    source = last_run(leapwork_app, schedule)
    agent = next(a for a in leapwork_app.state()["agents"] if a["id"] not in schedule["agent_ids"])
    body = {
        "Variables": [{"Name": "Locale", "Value": "it-IT"}, {"Name": "Nope", "Value": "1"}],
        "Steps": [
            {
                "RunListStepId": schedule["steps"][0]["id"],
                "AgentIds": [agent["id"]],
                "EnvironmentParallelization": "runAllCases",
                "StartOrder": "defined",
            }
        ],
    }
    response = raw(leapwork_app).put(
        f"/api/v4/run/{source['id']}/reRunOnAgents",
        json=body,
        headers={"Accept": "text/plain"},
    )
    assert response.status_code == 200
    new = run_state(leapwork_app, response.json()["RunId"])
    source_flows = list(dict.fromkeys(i["flow_id"] for i in source["items"]))
    assert [i["flow_id"] for i in new["items"]] == source_flows[: len(new["items"])]
    assert {i["agent_id"] for i in new["items"]} == {agent["id"]}
    assert new["variables_sent"] == {"Locale": "it-IT", "Nope": "1"}
    assert new["variables"]["Locale"] == "it-IT" and "Nope" not in new["variables"]


def test_it_validates_variables_on_run_now(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    path = f"/api/v3/schedules/{schedule['id']}/runNow"
    duplicated = client.put(f"{path}?Locale=a&Locale=b")
    assert duplicated.status_code == 400
    assert duplicated.json()["Message"] == "Variable 'Locale' is duplicated."
    assert client.put(f"{path}?bad%20name=1").status_code == 400
    ok = client.put(f"/api/v4/schedules/{schedule['id']}/runNow?Locale=pl-PL&Other=1")
    assert ok.status_code == 200
    run = run_state(leapwork_app, ok.json()["RunId"])
    assert run["variables"] == {**schedule["variables"], "Locale": "pl-PL"}
    assert run["variables_sent"] == {"Locale": "pl-PL", "Other": "1"}


@pytest.mark.parametrize("status", [446, 455])
def test_it_answers_446_and_455_through_the_fault_switch(leapwork_app, status):
    client = raw(leapwork_app)
    fault = {"path": "runNow", "error_rate": 1.0, "status": status}
    assert client.post("/_emulator/faults", json=fault).status_code == 200
    schedule = regression(leapwork_app)
    assert client.put(f"/api/v3/schedules/{schedule['id']}/runNow").status_code == status
    assert client.get("/api/v4/schedules").status_code == 200


def test_it_filters_run_ids(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    base = f"/api/v4/schedules/{schedule['id']}/runIds"
    everything = client.get(base).json()["runIds"]
    assert len(everything) == 3
    assert client.get(f"{base}/NoFilter?count=2").json()["runIds"] == everything[:2]
    created = [run_state(leapwork_app, r)["created_at"] for r in everything]
    assert created == sorted(created, reverse=True)
    assert client.get(f"{base}/LastDays?count=30").json()["runIds"] == everything
    assert client.get(f"{base}/LastHour").json()["runIds"] == []
    assert client.get(f"{base}/LastYear").json()["runIds"] == everything
    assert client.get(f"{base}/Sometimes").status_code == 400
    assert client.get(f"{base}/NoFilter?count=many").status_code == 400
    client.put(f"/api/v3/schedules/{schedule['id']}/runNow")
    assert client.get(f"{base}/LastMinute").json()["runIds"] != []


# The clock and outcomes ----------------------------------------------------------------------


def test_it_moves_a_run_along_the_clock_item_by_item(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    run_id = client.put(f"/api/v3/schedules/{schedule['id']}/runNow").json()["RunId"]
    n = len(run_state(leapwork_app, run_id)["items"])

    def look() -> tuple[str, list[str]]:
        run = run_state(leapwork_app, run_id)
        return run["status"], [i["status"] for i in run["items"]]

    assert look() == ("Queued", ["NoStatus"] * n)
    leapwork_app.clock.step(leapwork_app.queue_seconds + 0.5)
    status, items = look()
    assert (status, items[0], items[1]) == ("Executing", "Running", "NoStatus")
    leapwork_app.clock.step(leapwork_app.pace)
    status, items = look()
    assert items[0] != "Running" and items[1] == "Running"
    item_id = run_state(leapwork_app, run_id)["items"][1]["id"]
    running = client.get(f"/api/v4/runItems/{item_id}").json()
    assert running["FlowInfo"]["Status"] == "Running"
    assert running["ElapsedMilliseconds"] == 500
    leapwork_app.clock.step(leapwork_app.pace * n)
    status, items = look()
    assert status == "Finished"
    assert "NoStatus" not in items and "Running" not in items
    run = client.get(f"/api/v4/run/{run_id}").json()
    assert run["ExecutionMilliseconds"] == int(
        (leapwork_app.queue_seconds + leapwork_app.pace * n) * 1000
    )
    assert run["RunType"] == "Manual"


def flaky_first_attempts(app: LeapworkEmulator, schedule: dict[str, Any], flow_id: str) -> dict:
    """Runs of the schedule, started until the flaky flow has both failed and passed in one."""
    client = raw(app)
    outcomes: dict[str, str] = {}
    for _ in range(30):
        for run in app.state()["runs"]:
            if run["schedule_id"] == schedule["id"] and run["status"] == "Finished":
                for item in run["items"]:
                    if item["flow_id"] == flow_id and run["id"] not in outcomes:
                        outcomes[run["id"]] = item["status"]
        if {"Failed", "Passed"} <= set(outcomes.values()):
            return outcomes
        client.put(f"/api/v3/schedules/{schedule['id']}/runNow")
        app.clock.step(600)
    raise AssertionError(f"the flaky flow never both failed and passed: {outcomes}")


def test_it_fails_flaky_flows_first_and_passes_them_when_run_again(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    flaky = behaviour(leapwork_app, schedule, "flaky")
    # Flaky: some first attempts fail and others pass, so its runs' counts differ.
    outcomes = flaky_first_attempts(leapwork_app, schedule, flaky["id"])
    source = run_state(leapwork_app, next(r for r, s in outcomes.items() if s == "Failed"))
    agent = schedule["steps"][0]["agent_ids"][0]
    again = client.put(f"/api/v4/flows/{flaky['id']}/agent/{agent}").json()["RunId"]
    rerun = client.put(f"/api/v3/run/{source['id']}/reRun").json()["RunId"]
    leapwork_app.clock.step(600)
    assert [i["status"] for i in run_state(leapwork_app, again)["items"]] == ["Passed"]
    assert {
        i["status"] for i in run_state(leapwork_app, rerun)["items"] if i["flow_id"] == flaky["id"]
    } == {"Passed"}


def test_it_fails_agent_bound_flows_only_on_their_agent(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    bound = behaviour(leapwork_app, schedule, "agent")
    source = last_run(leapwork_app, schedule)
    by_agent = {i["agent_id"]: i["status"] for i in source["items"] if i["flow_id"] == bound["id"]}
    assert by_agent[bound["fails_on"]] == "Failed"
    assert {s for a, s in by_agent.items() if a != bound["fails_on"]} == {"Passed"}
    runs = {
        agent: client.put(f"/api/v4/flows/{bound['id']}/agent/{agent}").json()["RunId"]
        for agent in schedule["agent_ids"]
    }
    leapwork_app.clock.step(600)
    for agent, run_id in runs.items():
        expected = "Failed" if agent == bound["fails_on"] else "Passed"
        assert run_state(leapwork_app, run_id)["items"][0]["status"] == expected


def test_it_always_fails_broken_flows(leapwork_app):
    schedule = regression(leapwork_app)
    broken = behaviour(leapwork_app, schedule, "fail")
    for run in leapwork_app.state()["runs"]:
        statuses = {i["status"] for i in run["items"] if i["flow_id"] == broken["id"]}
        assert statuses <= {"Failed", "Error"}


def test_it_keeps_the_report_of_a_deleted_temporary_schedule(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    flow = schedule["steps"][0]["flow_ids"][4]
    agent = schedule["steps"][0]["agent_ids"][0]
    run_id = client.put(f"/api/v4/flows/{flow}/agent/{agent}?isDelete=true&Locale=x").json()[
        "RunId"
    ]
    temp = client.get(f"/api/v4/schedules/run/{run_id}").json()
    titles = {
        x["id"]: x["title"] for x in leapwork_app.state()["flows"] + leapwork_app.state()["agents"]
    }
    assert temp["Title"] == f"Run flow {titles[flow]} on {titles[agent]}"
    assert temp["IsScheduled"] is False
    assert temp["Id"] in [s["Id"] for s in client.get("/api/v4/schedules").json()]
    leapwork_app.clock.step(60)
    assert temp["Id"] not in [s["Id"] for s in client.get("/api/v4/schedules").json()]
    assert client.get(f"/api/v4/schedules/{temp['Id']}").status_code == 404
    assert client.get(f"/api/v4/schedules/run/{run_id}").json()["Id"] == temp["Id"]
    assert client.get(f"/api/v4/run/{run_id}").json()["Status"] == "Finished"
    state = next(s for s in leapwork_app.state()["schedules"] if s["id"] == temp["Id"])
    assert (state["temporary"], state["delete_after"], state["deleted"]) == (True, True, True)
    assert run_state(leapwork_app, run_id)["variables_sent"] == {"Locale": "x"}


def test_it_keeps_a_temporary_schedule_without_is_delete(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    flow = schedule["steps"][0]["flow_ids"][4]
    agent = schedule["steps"][0]["agent_ids"][0]
    run_id = client.put(f"/api/v3/flows/{flow}/environment/{agent}").json()["RunId"]
    temp_id = client.get(f"/api/v4/schedules/run/{run_id}").json()["Id"]
    leapwork_app.clock.step(60)
    assert client.get(f"/api/v4/schedules/{temp_id}").status_code == 200


def test_it_stops_a_run_and_cancels_what_has_not_finished(leapwork_app):
    client = raw(leapwork_app)
    schedule = regression(leapwork_app)
    run_id = client.put(f"/api/v3/schedules/{schedule['id']}/runNow").json()["RunId"]
    leapwork_app.clock.step(leapwork_app.queue_seconds + leapwork_app.pace + 0.5)
    stopped = client.put(f"/api/v4/schedules/{run_id}/stop").json()
    assert stopped == {"$id": "1", "OperationCompleted": True}
    items = [i["status"] for i in run_state(leapwork_app, run_id)["items"]]
    assert items[0] != "Cancelled" and set(items[1:]) == {"Cancelled"}
    assert client.put(f"/api/v4/run/{run_id}/stop").json()["OperationCompleted"] is False


# Estate and determinism --------------------------------------------------------------------------


def test_it_builds_the_same_estate_and_outcomes_from_the_same_seed():
    def paused() -> Clock:
        clock = Clock(start=datetime(2026, 11, 1, 12, 0, tzinfo=UTC), speed=0)
        clock.pause()
        return clock

    one = LeapworkEmulator(seed=11, history=4, clock=paused())
    two = LeapworkEmulator(seed=11, history=4, clock=paused())
    other = LeapworkEmulator(seed=12, history=4, clock=paused())
    assert one.state() == two.state()
    assert one.state()["schedules"] != other.state()["schedules"]


def test_it_builds_a_realistic_estate(leapwork_app):
    state = leapwork_app.state()
    schedules = [s for s in state["schedules"] if not s["temporary"]]
    assert 4 <= len(schedules) <= 6
    assert 4 <= len([a for a in state["agents"] if not a["temporary"]]) <= 6
    for schedule in schedules:
        flows = sum(len(step["flow_ids"]) for step in schedule["steps"])
        assert 5 <= flows <= 60
        assert 1 <= len(schedule["steps"]) <= 3
        assert 1 <= len(schedule["agent_ids"]) <= 3
        assert schedule["variables"]
        assert len(schedule["run_ids"]) == 3
    kinds = [f["behaviour"] for f in state["flows"]]
    assert kinds.count("pass") > len(kinds) * 0.6
    assert {"fail", "flaky", "agent"} <= set(kinds)


def test_it_keeps_history_finished_and_within_30_days():
    app = LeapworkEmulator(seed=3, history=25)
    now = app.now()
    for run in app.state()["runs"]:
        created = datetime.fromisoformat(run["created_at"])
        assert now - timedelta(days=30) < created < now
        assert run["status"] == "Finished"
        assert datetime.fromisoformat(run["finished_at"]) < now
    assert app.state()["counts"]["active_runs"] == 0
    assert {r["run_type"] for r in app.state()["runs"]} == {"Scheduled", "Manual"}


def test_it_starts_runs_on_its_own_with_autorun():
    app = LeapworkEmulator(seed=7, history=1, autorun=60)
    app.clock.pause()
    before = app.state()["counts"]["runs"]
    app.clock.step(200)
    runs = app.state()["runs"]
    started = [r for r in runs if r["trigger"] == "scheduled"]
    assert len(runs) > before and len(started) == len(runs) - before
    assert {r["run_type"] for r in started} == {"Scheduled"}
    again = LeapworkEmulator(seed=7, history=1, autorun=60, clock=Clock(start=app.clock.now()))
    assert again.state()["counts"]["runs"] == before


# /_emulator/ -----------------------------------------------------------------------------------


def test_it_serves_its_control_endpoints(leapwork_server, leapwork_app):
    control = httpx.Client(base_url=leapwork_server.base_url, timeout=2.0)
    vendor = httpx.Client(
        base_url=leapwork_server.base_url, headers={"AccessKey": KEY}, timeout=2.0
    )
    state = control.get("/_emulator/state").json()
    assert state["kind"] == "leapwork" and state["clock"]["paused"] is True
    assert state["counts"]["schedules"] == len(vendor.get("/api/v4/schedules").json())
    logged = control.get("/_emulator/requests").json()
    assert logged[-1]["path"] == "/api/v4/schedules"
    assert logged[-1]["headers"]["accesskey"] == "***"
    assert KEY not in str(logged)
    fault = control.post(
        "/_emulator/faults", json={"path": "agents", "error_rate": 1, "status": 503}
    )
    assert fault.status_code == 200
    assert vendor.get("/api/v4/agents").status_code == 503
    assert control.delete("/_emulator/faults").json() == {"faults": []}
    schedule = regression(leapwork_app)
    run_id = vendor.put(f"/api/v3/schedules/{schedule['id']}/runNow").json()["RunId"]
    control.post("/_emulator/clock", json={"action": "step", "seconds": 3600})
    assert vendor.get(f"/api/v4/run/{run_id}/status").json()["Status"] == "Finished"
    assert control.post("/_emulator/reset").json() == {"reset": True}
    assert vendor.get(f"/api/v4/run/{run_id}").status_code == 404
    assert control.get("/_emulator/state").json()["counts"] == state["counts"]


def test_it_hints_how_to_connect_to_it(leapwork_app):
    with served(leapwork_app) as emulator:
        hints = leapwork_app.connect_hints()
    assert hints.base_url == emulator.base_url
    assert hints.credential == leapwork_app.credential
    assert hints.test_plan_ids == () and hints.run_ids == ()
