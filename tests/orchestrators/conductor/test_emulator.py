"""ConductorEmulator's own behaviour: conductor-oss answers, progression, outcomes, Orkes."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
import pytest

from runs.orchestrators.conductor.emulator import ConductorEmulator
from runs.orchestrators.emulation import served
from tests.fixtures.conductor import ORKES_KEY, conductor_clock, make_conductor_app
from tests.orchestrators.conductor.estate import completed, failed_at, failed_task, run_to_end

ERROR_KEYS = {"status", "code", "message", "instance", "retryable", "validationErrors"}
SUMMARY_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def http(app: ConductorEmulator) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://conductor")


@pytest.fixture
def api(conductor_app) -> httpx.Client:
    return http(conductor_app)


def now_ms(app: ConductorEmulator) -> int:
    return int(app.now().timestamp() * 1000)


def start(api: httpx.Client, name: str, **body) -> str:
    response = api.post("/api/workflow", json={"name": name, **body})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


# The estate ---------------------------------------------------------------------------------


def test_it_builds_definitions_workers_and_a_finished_history(conductor_app):
    app = conductor_app
    latest = app.latest_definitions()
    assert 4 <= len(latest) <= 6
    assert all(5 <= len(d.tasks) <= 41 for d in app.definitions)
    assert 4 <= len(app.workers) <= 6 and all(w.startswith("worker-") for w in app.workers)
    assert len(app.executions) == 4 * len(latest)
    month_ago = now_ms(app) - 30 * 24 * 3600 * 1000
    statuses = set()
    for execution in app.executions.values():
        wf = execution.wf
        statuses.add(wf["status"])
        assert month_ago < wf["startTime"] < wf["endTime"] <= now_ms(app)
    assert {"COMPLETED", "FAILED"} <= statuses
    # shared reference names across definitions
    refs = [{t.ref for t in d.tasks} for d in latest]
    assert set.intersection(*refs) >= {"setup_env", "login", "teardown"}


def test_it_has_timed_out_and_terminated_executions_across_a_larger_history():
    app = make_conductor_app(history=20)
    counts = app.state()["counts"]["byStatus"]
    assert counts["TIMED_OUT"] > 0 and counts["TERMINATED"] > 0
    assert counts["COMPLETED"] > counts["TIMED_OUT"] + counts["TERMINATED"]


def test_it_is_deterministic_by_seed():
    one = make_conductor_app(seed=3).state()
    two = make_conductor_app(seed=3, clock=conductor_clock()).state()
    other = make_conductor_app(seed=4).state()
    assert one == two
    assert one["workflows"] != other["workflows"]


def test_it_decides_outcomes_regardless_of_when_requests_arrive():
    stepwise = make_conductor_app(seed=5, history=1)
    at_once = make_conductor_app(seed=5, history=1)
    ids = [start(http(app), app.definitions[2].name) for app in (stepwise, at_once)]
    assert ids[0] == ids[1]
    for _ in range(80):
        stepwise.clock.step(0.5)
        http(stepwise).get(f"/api/workflow/{ids[0]}")
    at_once.clock.step(40)
    http(at_once).get(f"/api/workflow/{ids[1]}")
    assert stepwise.state() == at_once.state()


# Reading --------------------------------------------------------------------------------------


def test_it_answers_definitions_and_one_by_version(api, conductor_app):
    body = api.get("/api/metadata/workflow").json()
    assert {(d["name"], d["version"]) for d in body} == {
        (d.name, d.version) for d in conductor_app.definitions
    }
    first = body[0]
    assert {"name", "version", "description", "tasks", "inputParameters", "restartable"} <= set(
        first
    )
    assert set(first["tasks"][0]) >= {"name", "taskReferenceName", "type"}
    two = next(d for d in conductor_app.definitions if d.version == 2)
    assert api.get(f"/api/metadata/workflow/{two.name}").json()["version"] == 2
    assert (
        api.get(f"/api/metadata/workflow/{two.name}", params={"version": 1}).json()["version"] == 1
    )
    missing = api.get("/api/metadata/workflow/nope")
    assert missing.status_code == 404 and set(missing.json()) == ERROR_KEYS


def test_it_answers_a_workflow_with_epoch_ms_times_and_its_tasks(api, conductor_app):
    execution = failed_at(conductor_app, "worker")
    body = api.get(f"/api/workflow/{execution.id}", params={"includeTasks": "true"}).json()
    assert body["workflowId"] == execution.id and body["status"] == "FAILED"
    for key in ("createTime", "updateTime", "startTime", "endTime"):
        assert isinstance(body[key], int) and body[key] > 1_600_000_000_000
    assert body["failedReferenceTaskNames"] == [failed_task(execution)["referenceTaskName"]]
    task = body["tasks"][-1]
    assert {"taskId", "taskType", "taskDefName", "referenceTaskName", "status", "inputData"} <= set(
        task
    )
    assert {"outputData", "seq", "retryCount", "scheduledTime", "startTime", "endTime"} <= set(task)
    assert task["workerId"] in conductor_app.workers
    assert [t["seq"] for t in body["tasks"]] == list(range(1, len(body["tasks"]) + 1))
    without = api.get(f"/api/workflow/{execution.id}", params={"includeTasks": "false"}).json()
    assert without["tasks"] == []


def test_it_answers_404_with_the_conductor_error_body(api):
    response = api.get("/api/workflow/nope")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["status"] == 404 and body["message"] == "No such workflow found by id: nope"
    assert body["retryable"] is False and body["validationErrors"] == []


def test_it_pages_and_filters_the_tasks_endpoint(api, conductor_app):
    execution = failed_at(conductor_app, "worker")
    page = api.get(f"/api/workflow/{execution.id}/tasks", params={"start": 1, "count": 2}).json()
    assert page["totalHits"] == len(execution.tasks)
    assert [t["seq"] for t in page["results"]] == [2, 3]
    failed = api.get(f"/api/workflow/{execution.id}/tasks?status=FAILED&status=TIMED_OUT").json()
    assert [t["status"] for t in failed["results"]] == ["FAILED"]


# Search -------------------------------------------------------------------------------------------


def test_it_answers_search_summaries_as_conductor_serializes_them(api, conductor_app):
    execution = failed_at(conductor_app, "flaky")
    body = api.get(
        "/api/workflow/search", params={"query": f"workflowId = '{execution.id}'"}
    ).json()
    assert body["totalHits"] == 1
    summary = body["results"][0]
    for key in ("startTime", "updateTime", "endTime"):
        assert SUMMARY_TIME.match(summary[key])
    assert (
        isinstance(summary["input"], str) and json.loads(summary["input"]) == execution.wf["input"]
    )
    assert isinstance(summary["output"], str)
    assert summary["failedReferenceTaskNames"] == ",".join(execution.wf["failedReferenceTaskNames"])
    assert summary["failedTaskNames"] == execution.wf["failedTaskNames"]
    assert summary["executionTime"] == execution.wf["endTime"] - execution.wf["startTime"]
    assert summary["workflowType"] == execution.wf["workflowName"]


def test_it_searches_by_type_status_and_start_time_joined_by_and(api, conductor_app):
    name = conductor_app.definitions[0].name
    executions = [e.wf for e in conductor_app.executions.values() if e.wf["workflowName"] == name]
    middle = sorted(wf["startTime"] for wf in executions)[1]

    def ids(query: str, **params) -> list[str]:
        answer = api.get("/api/workflow/search", params={"query": query, **params})
        assert answer.status_code == 200, answer.text
        return [s["workflowId"] for s in answer.json()["results"]]

    newest_first = ids(f"workflowType = '{name}'", sort="startTime:DESC")
    assert newest_first == [
        wf["workflowId"] for wf in sorted(executions, key=lambda wf: -wf["startTime"])
    ]
    assert ids(f"workflowType = '{name}'", sort="startTime:ASC") == newest_first[::-1]
    later = ids(f"workflowType = '{name}' AND startTime > {middle}", sort="startTime:DESC")
    assert later == [wf["workflowId"] for wf in executions if wf["startTime"] > middle][::-1]
    failed = ids(f"workflowType = '{name}' and status = 'FAILED'")
    assert set(failed) == {wf["workflowId"] for wf in executions if wf["status"] == "FAILED"}
    either = ids("status IN ('TIMED_OUT','TERMINATED') OR status = 'COMPLETED'")
    assert len(either) == sum(
        1
        for e in conductor_app.executions.values()
        if e.wf["status"] in ("TIMED_OUT", "TERMINATED", "COMPLETED")
    )
    paged = ids(f"workflowType = '{name}'", sort="startTime:DESC", start=1, size=2)
    assert paged == newest_first[1:3]


def test_it_refuses_a_search_size_over_5000_and_unreadable_queries(api):
    response = api.get("/api/workflow/search", params={"size": 5001})
    assert response.status_code == 400
    assert (
        response.json()["message"]
        == "Cannot return more than 5000 workflows. Please use pagination."
    )
    assert api.get("/api/workflow/search", params={"size": 5000}).status_code == 200
    assert api.get("/api/workflow/search", params={"query": "nonsense here"}).status_code == 400


# Starting and progressing -----------------------------------------------------------------------


def test_it_starts_a_workflow_and_moves_it_along_the_clock(api, conductor_app):
    definition = conductor_app.definitions[1]
    workflow_id = start(api, definition.name, input={"env": "qa"}, correlationId="c-1")
    body = api.get(f"/api/workflow/{workflow_id}").json()
    assert body["status"] == "RUNNING" and body["correlationId"] == "c-1"
    assert [t["status"] for t in body["tasks"]] == ["SCHEDULED"]
    assert body["tasks"][0]["referenceTaskName"] == definition.tasks[0].ref

    conductor_app.clock.step(0.2 * conductor_app.pace)
    task = api.get(f"/api/workflow/{workflow_id}").json()["tasks"][0]
    assert task["status"] == "IN_PROGRESS" and task["workerId"] in conductor_app.workers

    conductor_app.clock.step(0.8 * conductor_app.pace)
    tasks = api.get(f"/api/workflow/{workflow_id}").json()["tasks"]
    assert [t["status"] for t in tasks] == ["COMPLETED", "SCHEDULED"]
    assert tasks[0]["endTime"] - tasks[0]["startTime"] == int(0.8 * conductor_app.pace * 1000)


def test_it_starts_by_name_with_the_input_as_body(api, conductor_app):
    name = conductor_app.definitions[0].name
    response = api.post(f"/api/workflow/{name}", params={"correlationId": "x"}, json={"a": 1})
    body = api.get(f"/api/workflow/{response.text}").json()
    assert body["input"] == {"a": 1} and body["correlationId"] == "x"


def test_it_refuses_to_start_unknown_or_nameless_workflows(api):
    unknown = api.post("/api/workflow", json={"name": "nope"})
    assert unknown.status_code == 404 and "nope" in unknown.json()["message"]
    nameless = api.post("/api/workflow", json={"input": {}})
    assert nameless.status_code == 400 and nameless.json()["validationErrors"]
    broken = api.post(
        "/api/workflow", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and set(broken.json()) == ERROR_KEYS


# Outcomes ---------------------------------------------------------------------------------------


def test_it_fails_worker_bound_tasks_only_on_their_worker():
    app = make_conductor_app(history=12)
    seen = 0
    for execution in app.executions.values():
        for task in execution.tasks:
            plan = next(p for p in execution.plan if p.ref == task["referenceTaskName"])
            if plan.behaviour == "worker" and task["status"] in ("COMPLETED", "FAILED"):
                seen += 1
                assert (task["status"] == "FAILED") == (task["workerId"] == plan.bad_worker)
    assert seen > 5


def test_it_fails_a_broken_task_every_time(api, conductor_app):
    execution = failed_at(conductor_app, "broken")
    task = failed_task(execution)
    api.post(f"/api/workflow/{execution.id}/retry")
    run_to_end(conductor_app, execution)
    assert execution.wf["status"] == "FAILED"
    assert execution.wf["failedReferenceTaskNames"] == [task["referenceTaskName"]]


def test_it_passes_a_flaky_task_when_rerun(api, conductor_app):
    execution = failed_at(conductor_app, "flaky")
    api.post(f"/api/workflow/{execution.id}/rerun", json={})
    run_to_end(conductor_app, execution)
    assert execution.wf["status"] == "COMPLETED"


# Rerun, retry, restart, terminate, pause --------------------------------------------------------


def test_it_reruns_in_place_from_the_start(api, conductor_app):
    execution = failed_at(conductor_app, "flaky")
    correlation = execution.wf["correlationId"]
    old_ids = {t["taskId"] for t in execution.tasks}

    response = api.post(
        f"/api/workflow/{execution.id}/rerun",
        json={
            "reRunFromWorkflowId": "ignored",
            "workflowInput": {"env": "qa"},
            "taskInput": {"x": 1},
        },
    )

    assert response.status_code == 200 and response.text == execution.id
    body = api.get(f"/api/workflow/{execution.id}").json()
    assert body["status"] == "RUNNING" and body["input"] == {"env": "qa"}
    assert body["correlationId"] == correlation  # kept: not sent
    assert "reasonForIncompletion" not in body and body["failedReferenceTaskNames"] == []
    assert len(body["tasks"]) == 1 and body["tasks"][0]["taskId"] not in old_ids
    assert body["tasks"][0]["inputData"] != {"x": 1}  # taskInput is ignored without a task


def test_it_reruns_in_place_from_a_task(api, conductor_app):
    execution = failed_at(conductor_app, "worker")
    target = execution.tasks[1]
    later = [t for t in execution.tasks if t["seq"] > target["seq"]]
    assert later

    response = api.post(
        f"/api/workflow/{execution.id}/rerun",
        json={"reRunFromTaskId": target["taskId"], "taskInput": {"case": "again"}},
    )

    assert response.text == execution.id
    tasks = api.get(f"/api/workflow/{execution.id}").json()["tasks"]
    assert [t["taskId"] for t in tasks] == [execution.tasks[0]["taskId"], target["taskId"]]
    assert tasks[0]["status"] == "COMPLETED"
    reset = tasks[1]
    assert reset["status"] == "SCHEDULED" and reset["inputData"] == {"case": "again"}
    assert reset["outputData"] == {} and reset["scheduledTime"] == now_ms(conductor_app)


def test_it_answers_400_for_a_task_it_does_not_hold(api, conductor_app):
    execution = completed(conductor_app)
    response = api.post(
        f"/api/workflow/{execution.id}/rerun",
        json={"reRunFromTaskId": execution.tasks[0]["referenceTaskName"]},
    )
    assert response.status_code == 400
    assert response.json()["message"] == f"Task {execution.tasks[0]['referenceTaskName']} not found"
    assert api.post("/api/workflow/nope/rerun", json={}).status_code == 404


def test_it_refuses_to_rerun_a_running_or_paused_workflow(api, conductor_app):
    workflow_id = start(api, conductor_app.definitions[0].name)
    running = api.post(f"/api/workflow/{workflow_id}/rerun", json={})
    assert running.status_code == 409
    assert "not in terminal state, unable to rerun" in running.json()["message"]
    assert api.put(f"/api/workflow/{workflow_id}/pause").status_code == 200
    assert api.post(f"/api/workflow/{workflow_id}/rerun", json={}).status_code == 409
    conductor_app.clock.step(100)
    paused = api.get(f"/api/workflow/{workflow_id}").json()
    assert paused["status"] == "PAUSED" and len(paused["tasks"]) == 1
    assert api.put(f"/api/workflow/{workflow_id}/resume").status_code == 200
    conductor_app.clock.step(100)
    assert api.get(f"/api/workflow/{workflow_id}").json()["status"] != "PAUSED"


def test_it_retries_the_last_failed_attempt_of_each_reference(api, conductor_app):
    execution = failed_at(conductor_app, "flaky")
    old = failed_task(execution)

    assert api.post(f"/api/workflow/{execution.id}/retry").status_code == 204

    body = api.get(f"/api/workflow/{execution.id}").json()
    copy = body["tasks"][-1]
    assert body["status"] == "RUNNING" and body["lastRetriedTime"] == now_ms(conductor_app)
    assert copy["taskId"] != old["taskId"] and copy["retriedTaskId"] == old["taskId"]
    assert copy["status"] == "SCHEDULED" and copy["retryCount"] == old["retryCount"] + 1
    assert copy["referenceTaskName"] == old["referenceTaskName"]
    assert body["tasks"][-2]["taskId"] == old["taskId"] and body["tasks"][-2]["retried"] is True
    still = api.post(f"/api/workflow/{execution.id}/retry")
    assert still.status_code == 404 and "still running" in still.json()["message"]
    assert api.post(f"/api/workflow/{completed(conductor_app).id}/retry").status_code == 409


def test_it_restarts_only_terminal_workflows_from_scratch(api, conductor_app):
    execution = completed(conductor_app)
    original_input = dict(execution.wf["input"])
    assert api.post(f"/api/workflow/{execution.id}/restart").status_code == 204
    body = api.get(f"/api/workflow/{execution.id}").json()
    assert body["status"] == "RUNNING" and body["input"] == original_input
    assert len(body["tasks"]) == 1 and body["tasks"][0]["seq"] == 1
    assert api.post(f"/api/workflow/{execution.id}/restart").status_code == 409


def test_it_terminates_a_workflow_but_not_a_completed_one(api, conductor_app):
    workflow_id = start(api, conductor_app.definitions[0].name)
    assert (
        api.delete(f"/api/workflow/{workflow_id}", params={"reason": "enough"}).status_code == 200
    )
    body = api.get(f"/api/workflow/{workflow_id}").json()
    assert body["status"] == "TERMINATED" and body["reasonForIncompletion"] == "enough"
    assert body["tasks"][0]["status"] == "CANCELED"
    done = api.delete(f"/api/workflow/{completed(conductor_app).id}")
    assert done.status_code == 409


# Orkes ------------------------------------------------------------------------------------------


def test_it_keeps_canceled_attempts_and_reruns_ongoing_workflows_as_orkes():
    app = make_conductor_app(orkes=True)
    api = http(app)
    execution = failed_at(app, "flaky")
    target = failed_task(execution)
    count = len(execution.tasks)

    api.post(f"/api/workflow/{execution.id}/rerun", json={"reRunFromTaskId": target["taskId"]})

    tasks = api.get(f"/api/workflow/{execution.id}").json()["tasks"]
    assert len(tasks) == count + 1
    assert tasks[-2]["taskId"] == target["taskId"] and tasks[-2]["status"] == "CANCELED"
    assert tasks[-1]["referenceTaskName"] == target["referenceTaskName"]
    assert tasks[-1]["status"] == "SCHEDULED" and tasks[-1]["taskId"] != target["taskId"]
    # an ongoing workflow is rerun too
    again = api.post(f"/api/workflow/{execution.id}/rerun", json={})
    assert again.status_code == 200
    assert all(
        t["status"] == "CANCELED"
        for t in api.get(f"/api/workflow/{execution.id}").json()["tasks"][:-1]
    )
    run_to_end(app, execution)
    assert execution.wf["status"] == "COMPLETED"


def test_it_wants_an_orkes_token_that_has_not_expired(orkes_app):
    api = http(orkes_app)
    assert api.get("/api/metadata/workflow").status_code == 401
    assert api.post("/api/token", json={"keyId": "key", "keySecret": "nope"}).status_code == 401
    token = api.post("/api/token", json={"keyId": "key", "keySecret": "secret"}).json()["token"]
    headers = {"X-Authorization": token}
    assert api.get("/api/metadata/workflow", headers=headers).status_code == 200
    assert api.get("/api/metadata/workflow", headers={"X-Authorization": "x"}).status_code == 401
    orkes_app.clock.step(orkes_app.token_ttl)
    expired = api.get("/api/metadata/workflow", headers=headers)
    assert expired.status_code == 401 and expired.json()["message"] == "Token expired"


def test_it_starts_workflows_on_its_own_with_autorun():
    app = make_conductor_app(autorun=60)
    before = len(app.executions)
    app.clock.step(600)
    app.advance(app.now())
    started = [e for e in list(app.executions.values())[before:]]
    assert len(started) >= len(app.latest_definitions()) * 4
    assert all(
        "createdBy" not in http(app).get(f"/api/workflow/{e.id}").json() for e in started[:3]
    )
    names = {e.wf["workflowName"] for e in started}
    assert names == {d.name for d in app.latest_definitions()}


# /_emulator/ --------------------------------------------------------------------------------------


def test_it_serves_the_emulator_control_endpoints(conductor_app):
    with served(conductor_app) as server:
        api = httpx.Client(base_url=server.base_url)
        state = api.get("/_emulator/state").json()
        assert state["kind"] == "conductor" and state["clock"]["paused"] is True
        assert state["counts"]["workflows"] == len(conductor_app.executions)
        assert {"definitions", "workers", "workflows", "counts"} <= set(state)
        workflow_id = start(api, conductor_app.definitions[0].name)
        assert api.get("/_emulator/requests").json()[-1]["path"] == "/api/workflow"

        api.post(
            "/_emulator/faults", json={"path": "/api/metadata", "error_rate": 1.0, "status": 502}
        )
        assert api.get("/api/metadata/workflow").status_code == 502
        assert api.get("/_emulator/faults").json()["faults"][0]["status"] == 502
        api.delete("/_emulator/faults")
        assert api.get("/api/metadata/workflow").status_code == 200

        api.post("/_emulator/clock", json={"action": "step", "seconds": 1})
        assert api.get(f"/api/workflow/{workflow_id}").json()["tasks"][0]["status"] == "COMPLETED"

        assert api.post("/_emulator/reset").json() == {"reset": True}
        assert workflow_id not in conductor_app.executions
        assert api.get("/_emulator/requests").json() == []


def test_it_keeps_secrets_out_of_the_request_log():
    app = make_conductor_app(credential=ORKES_KEY)
    with served(app) as server:
        api = httpx.Client(base_url=server.base_url)
        token = api.post("/api/token", json={"keyId": "key", "keySecret": "secret"}).json()["token"]
        api.get("/api/metadata/workflow", headers={"X-Authorization": token})
        log = api.get("/_emulator/requests").text
    assert "secret" not in log.replace("keySecret", "") and token not in log


def test_it_prints_the_definition_names_in_its_banner(conductor_app):
    banner = "\n".join(conductor_app.banner())
    assert all(d.name in banner for d in conductor_app.definitions)


def test_it_keeps_history_within_the_last_month():
    app = make_conductor_app(history=60)
    oldest = min(e.wf["startTime"] for e in app.executions.values())
    assert now_ms(app) - oldest < timedelta(days=30).total_seconds() * 1000
