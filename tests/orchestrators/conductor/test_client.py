"""ConductorClient against ConductorEmulator over real HTTP on loopback."""

from __future__ import annotations

import socket
from datetime import UTC, timedelta

import pytest

from runs.orchestrators.base import (
    BadRequest,
    CaseTarget,
    Conflict,
    NotFound,
    PlannedCall,
    ProtocolError,
    RerunSpec,
    Scope,
    Unauthorized,
    Unavailable,
)
from runs.orchestrators.conductor.client import ConductorClient, _worker_log
from runs.orchestrators.emulation import Fault, served
from runs.orchestrators.http import make_client
from runs.status import Status
from tests.fixtures.conductor import ORKES_KEY, make_conductor_app, make_conductor_client
from tests.orchestrators.conductor.estate import completed, failed_at, failed_task, run_to_end


def last_request(app, path: str = "") -> dict:
    return app.requests(path=path)[-1]


def as_logged(call: PlannedCall) -> tuple:
    return (call.method, call.path, [(k, str(v)) for k, v in call.params.items()], call.body)


def logged(entry: dict) -> tuple:
    return (entry["method"], entry["path"], [tuple(pair) for pair in entry["query"]], entry["body"])


# Capabilities ------------------------------------------------------------------------------


def test_it_declares_what_conductor_can_rerun():
    caps = ConductorClient.capabilities
    assert caps.scopes == {Scope.ALL, Scope.FAILED, Scope.FROM_TASK}
    assert caps.max_picked == 1
    assert caps.workflow_input and caps.task_input and caps.run_now and caps.run_now_variables
    assert not caps.agent_picker
    assert ConductorClient.kind == "conductor"


# Reads -------------------------------------------------------------------------------------


def test_it_lists_definitions_by_name_with_the_latest_version(conductor_client, conductor_app):
    schedules = conductor_client.list_schedules()

    names = sorted({d.name for d in conductor_app.definitions})
    assert [s.external_id for s in schedules] == names
    for schedule in schedules:
        latest = conductor_app.definition(schedule.external_id)
        assert schedule.title == schedule.external_id
        assert [(s.external_id, s.title, s.index) for s in schedule.steps] == [
            (task.ref, task.name, index) for index, task in enumerate(latest.tasks)
        ]
    # one definition has two versions: the steps are version 2's
    two = next(d for d in conductor_app.definitions if d.version == 2)
    assert len(next(s for s in schedules if s.external_id == two.name).steps) == len(two.tasks)
    assert logged(last_request(conductor_app)) == ("GET", "/api/metadata/workflow", [], None)
    assert conductor_client.list_agents() == []


def test_it_checks_the_connection(conductor_client, conductor_app):
    conductor_client.check()
    assert last_request(conductor_app)["path"] == "/api/metadata/workflow"


def test_it_lists_runs_by_workflow_type_and_start_time_newest_first(
    conductor_client, conductor_app
):
    name = conductor_app.definitions[0].name
    since = conductor_app.now() - timedelta(days=20)

    refs = conductor_client.list_runs(name, since=since, limit=50)

    expected = sorted(
        (e for e in conductor_app.executions.values() if e.wf["workflowName"] == name),
        key=lambda e: -e.wf["startTime"],
    )
    assert [r.external_id for r in refs] == [e.id for e in expected]
    assert refs[0].started_at.tzinfo is not None
    assert refs[0].started_at > refs[-1].started_at
    assert {r.status for r in refs} <= set(Status)
    assert refs[0].updated_at is not None
    since_ms = int(since.timestamp() * 1000)
    assert logged(last_request(conductor_app)) == (
        "GET",
        "/api/workflow/search",
        [
            ("start", "0"),
            ("size", "50"),
            ("sort", "startTime:DESC"),
            ("freeText", "*"),
            ("query", f"workflowType = '{name}' AND startTime > {since_ms}"),
        ],
        None,
    )


def test_it_pages_the_search(conductor_client, conductor_app):
    name = conductor_app.definitions[0].name

    summaries = conductor_client.search(name, limit=3, page_size=2)

    assert len(summaries) == 3
    pages = [dict(e["query"]) for e in conductor_app.requests(path="/api/workflow/search")]
    assert [(p["start"], p["size"]) for p in pages] == [("0", "2"), ("2", "1")]
    assert len({s.workflow_id for s in summaries}) == 3


def test_it_parses_search_summaries(conductor_client, conductor_app):
    execution = failed_at(conductor_app, "worker")
    name = execution.wf["workflowName"]

    summaries = conductor_client.search(name, status="FAILED")

    summary = next(s for s in summaries if s.workflow_id == execution.id)
    wf = execution.wf
    assert summary.workflow_type == name
    assert summary.status == Status.FAILED and summary.vendor_status == "FAILED"
    assert summary.started_at == _dt(wf["startTime"])
    assert summary.finished_at == _dt(wf["endTime"])
    assert summary.execution_time == timedelta(milliseconds=wf["endTime"] - wf["startTime"])
    assert summary.input == wf["input"]
    assert summary.output == wf["output"]
    assert summary.failed_reference_task_names == tuple(wf["failedReferenceTaskNames"])
    assert summary.failed_task_names == tuple(wf["failedTaskNames"])
    assert summary.correlation_id == wf["correlationId"]
    assert "status = 'FAILED'" in dict(last_request(conductor_app)["query"])["query"]
    assert all(s.status == Status.FAILED for s in summaries)


def _dt(ms: int):
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000, UTC)


def test_it_reads_an_execution_with_its_tasks(conductor_client, conductor_app):
    execution = failed_at(conductor_app, "worker")
    wf = execution.wf

    run = conductor_client.get_run(execution.id)

    assert run.external_id == execution.id
    assert run.schedule_id == run.schedule_title == wf["workflowName"]
    assert run.status == Status.FAILED and run.vendor_status == "FAILED"
    assert run.version == str(wf["workflowVersion"])
    assert run.correlation_id == wf["correlationId"]
    assert run.variables == wf["input"]
    assert run.message == wf["reasonForIncompletion"]
    assert run.started_at == _dt(wf["startTime"]) and run.finished_at == _dt(wf["endTime"])
    assert run.duration == run.finished_at - run.started_at
    assert [r.external_id for r in run.results] == [t["taskId"] for t in execution.tasks]
    last = run.results[-1]
    task = failed_task(execution)
    assert last.external_id == task["taskId"]
    assert last.case_key == last.case_title == task["referenceTaskName"]
    assert last.case_external_id == f"{wf['workflowName']}/{task['referenceTaskName']}"
    assert last.test_case_id == last.case_external_id
    assert last.status == Status.FAILED and last.vendor_status == "FAILED"
    assert last.agent_id == last.agent_title == task["workerId"]
    assert last.message == task["reasonForIncompletion"]
    assert last.log_excerpt.splitlines() == task["outputData"]["log"]
    assert last.log_excerpt.splitlines()[-1].endswith(last.message)
    assert all(not r.log_excerpt for r in run.results if not r.status.is_failure)
    assert last.seq == task["seq"] and last.retry_count == 0
    assert last.input == task["inputData"]
    assert last.started_at == _dt(task["startTime"])
    assert logged(last_request(conductor_app)) == (
        "GET",
        f"/api/workflow/{execution.id}",
        [("includeTasks", "true")],
        None,
    )


def test_it_reads_the_tasks_endpoint_page_by_page(conductor_client, conductor_app):
    execution = completed(conductor_app)

    results = conductor_client.tasks(execution.id, page_size=2)

    assert [r.external_id for r in results] == [t["taskId"] for t in execution.tasks]
    assert results[0].case_external_id.startswith(execution.wf["workflowName"] + "/")
    starts = [dict(e["query"])["start"] for e in conductor_app.requests(path="/tasks")]
    assert starts == [str(n) for n in range(0, len(execution.tasks), 2)]

    failed = conductor_client.tasks(failed_at(conductor_app, "worker").id, status="FAILED")
    assert [r.status for r in failed] == [Status.FAILED]
    assert dict(last_request(conductor_app)["query"])["status"] == "FAILED"


# Writes ------------------------------------------------------------------------------------


def test_it_starts_a_workflow_with_input(conductor_client, conductor_app):
    name = conductor_app.definitions[1].name

    workflow_id = conductor_client.run_now(name, variables={"env": "qa", "build": "9.9"})

    entry = last_request(conductor_app)
    assert logged(entry) == (
        "POST",
        "/api/workflow",
        [],
        {"name": name, "input": {"env": "qa", "build": "9.9"}},
    )
    run = conductor_client.get_run(workflow_id)
    assert run.status == Status.RUNNING and run.variables == {"env": "qa", "build": "9.9"}
    assert run.results[0].status == Status.QUEUED
    conductor_app.clock.step(0.5)
    assert conductor_client.get_run(workflow_id).results[0].status == Status.RUNNING


def test_it_reruns_from_the_start_with_new_input_and_correlation_id(
    conductor_client, conductor_app
):
    execution = failed_at(conductor_app, "flaky")
    spec = RerunSpec(scope=Scope.ALL, workflow_input={"env": "qa"}, correlation_id="rb-42")
    plan = conductor_client.plan_rerun(execution.id, spec, schedule_id="")

    outcome = conductor_client.rerun(execution.id, spec, schedule_id="")

    assert outcome.run_ids == (execution.id,)
    assert [as_logged(call) for call in plan] == [logged(last_request(conductor_app))]
    assert logged(last_request(conductor_app)) == (
        "POST",
        f"/api/workflow/{execution.id}/rerun",
        [],
        {
            "reRunFromWorkflowId": execution.id,
            "workflowInput": {"env": "qa"},
            "correlationId": "rb-42",
        },
    )
    run = conductor_client.get_run(execution.id)
    assert run.status == Status.RUNNING
    assert run.variables == {"env": "qa"} and run.correlation_id == "rb-42"
    assert len(run.results) == 1 and run.results[0].status == Status.QUEUED
    run_to_end(conductor_app, execution)
    assert conductor_client.get_run(execution.id).status == Status.PASSED


def test_it_reruns_from_a_picked_task_with_task_input(conductor_client, conductor_app):
    execution = failed_at(conductor_app, "flaky")
    task = failed_task(execution)
    earlier = [t["taskId"] for t in execution.tasks if t["seq"] < task["seq"]]
    spec = RerunSpec(scope=Scope.FROM_TASK, task_id=task["taskId"], task_input={"retries": 0})
    plan = conductor_client.plan_rerun(execution.id, spec, schedule_id="")

    outcome = conductor_client.rerun(execution.id, spec, schedule_id="")

    assert outcome.run_ids == (execution.id,)
    assert outcome.calls[0].target == f"rerun from task {task['taskId']}"
    assert [as_logged(call) for call in plan] == [logged(last_request(conductor_app))]
    assert last_request(conductor_app)["body"] == {
        "reRunFromWorkflowId": execution.id,
        "reRunFromTaskId": task["taskId"],
        "taskInput": {"retries": 0},
    }
    run = conductor_client.get_run(execution.id)
    # conductor-oss: reset in place, same taskId, the earlier tasks kept
    assert [r.external_id for r in run.results] == [*earlier, task["taskId"]]
    assert run.results[-1].status == Status.QUEUED and run.results[-1].input == {"retries": 0}
    run_to_end(conductor_app, execution)
    again = conductor_client.get_run(execution.id)
    assert again.status == Status.PASSED
    assert next(r for r in again.results if r.external_id == task["taskId"]).status == Status.PASSED


def test_it_takes_the_picked_case_when_no_task_id_is_given(conductor_client, conductor_app):
    execution = failed_at(conductor_app, "flaky")
    task = failed_task(execution)
    spec = RerunSpec(
        scope=Scope.FROM_TASK,
        cases=(CaseTarget(result_id=task["taskId"], case_key=task["referenceTaskName"]),),
    )

    plan = conductor_client.plan_rerun(execution.id, spec, schedule_id="")

    assert plan[0].body == {"reRunFromWorkflowId": execution.id, "reRunFromTaskId": task["taskId"]}


def test_it_reads_orkes_rerun_answers_with_canceled_attempts(orkes_client, orkes_app):
    execution = failed_at(orkes_app, "flaky")
    task = failed_task(execution)
    spec = RerunSpec(scope=Scope.FROM_TASK, task_id=task["taskId"])

    outcome = orkes_client.rerun(execution.id, spec, schedule_id="")

    assert outcome.run_ids == (execution.id,)
    run_to_end(orkes_app, execution)
    run = orkes_client.get_run(execution.id)
    attempts = [r for r in run.results if r.case_key == task["referenceTaskName"]]
    assert [a.status for a in attempts] == [Status.CANCELLED, Status.PASSED]
    assert attempts[0].external_id == task["taskId"]
    assert attempts[1].seq > attempts[0].seq
    # the last one (highest seq) is the case's result; the run passed
    latest = {r.case_key: r for r in run.results}
    assert latest[task["referenceTaskName"]].status == Status.PASSED
    assert run.status == Status.PASSED


def test_it_retries_the_failed_tasks(conductor_client, conductor_app):
    execution = failed_at(conductor_app, "flaky")
    task = failed_task(execution)
    spec = RerunSpec(scope=Scope.FAILED)
    plan = conductor_client.plan_rerun(execution.id, spec, schedule_id="")

    outcome = conductor_client.rerun(execution.id, spec, schedule_id="")

    assert outcome.run_ids == (execution.id,) and outcome.calls[0].target == "retry"
    assert logged(last_request(conductor_app)) == (
        "POST",
        f"/api/workflow/{execution.id}/retry",
        [("resumeSubworkflowTasks", "false")],
        None,
    )
    assert [as_logged(call) for call in plan] == [logged(last_request(conductor_app))]
    run_to_end(conductor_app, execution)
    run = conductor_client.get_run(execution.id)
    attempts = [r for r in run.results if r.case_key == task["referenceTaskName"]]
    assert [(a.status, a.retry_count) for a in attempts] == [
        (Status.FAILED, 0),
        (Status.PASSED, 1),
    ]
    assert run.status == Status.PASSED


def test_it_restarts_and_terminates(conductor_client, conductor_app):
    execution = completed(conductor_app)

    conductor_client.restart(execution.id)

    assert logged(last_request(conductor_app)) == (
        "POST",
        f"/api/workflow/{execution.id}/restart",
        [("useLatestDefinitions", "false")],
        None,
    )
    assert conductor_client.get_run(execution.id).status == Status.RUNNING

    conductor_client.terminate(execution.id, "wrong build")

    assert logged(last_request(conductor_app)) == (
        "DELETE",
        f"/api/workflow/{execution.id}",
        [("reason", "wrong build")],
        None,
    )
    run = conductor_client.get_run(execution.id)
    assert run.status == Status.CANCELLED and run.message == "wrong build"


def test_it_stops_a_run_by_terminating_it(conductor_client, conductor_app):
    workflow_id = conductor_client.run_now(conductor_app.definitions[0].name)

    conductor_client.stop_run(workflow_id)

    assert dict(last_request(conductor_app)["query"]) == {"reason": "Stopped from Runboard"}
    assert conductor_client.get_run(workflow_id).vendor_status == "TERMINATED"


def test_it_refuses_reruns_conductor_cannot_do(conductor_client, conductor_app):
    conductor_app.log.clear()
    with pytest.raises(BadRequest):
        conductor_client.rerun("x", RerunSpec(scope=Scope.PICKED), schedule_id="")
    with pytest.raises(BadRequest):
        conductor_client.plan_rerun("x", RerunSpec(scope=Scope.FROM_TASK), schedule_id="")
    two = tuple(CaseTarget(result_id=str(n), case_key="a") for n in range(2))
    with pytest.raises(BadRequest):
        conductor_client.plan_rerun(
            "x", RerunSpec(scope=Scope.FROM_TASK, cases=two), schedule_id=""
        )
    assert conductor_app.requests() == []


# Orkes token auth --------------------------------------------------------------------------


def test_it_exchanges_the_orkes_key_for_a_token(orkes_client, orkes_app):
    orkes_client.list_schedules()

    token_request, definitions = orkes_app.requests()
    assert token_request["method"] == "POST" and token_request["path"] == "/api/token"
    # the secret reached the server but the log keeps it masked
    assert token_request["body"] == {"keyId": "key", "keySecret": "***"}
    assert definitions["headers"]["x-authorization"] == "***"
    assert len(orkes_app.tokens) == 1


def test_it_fetches_a_new_token_when_the_old_one_expires(orkes_client, orkes_app):
    orkes_client.list_schedules()
    first = orkes_client._token
    orkes_app.clock.step(orkes_app.token_ttl + 1)

    schedules = orkes_client.list_schedules()

    assert schedules
    paths = [(e["method"], e["path"]) for e in orkes_app.requests()]
    assert paths == [
        ("POST", "/api/token"),
        ("GET", "/api/metadata/workflow"),
        ("GET", "/api/metadata/workflow"),  # refused: 401, token expired
        ("POST", "/api/token"),
        ("GET", "/api/metadata/workflow"),
    ]
    assert orkes_client._token != first and len(orkes_app.tokens) == 2


def test_it_sends_a_write_again_once_after_a_new_token(orkes_client, orkes_app):
    orkes_client.list_schedules()
    orkes_app.clock.step(orkes_app.token_ttl + 1)
    before = len(orkes_app.executions)

    workflow_id = orkes_client.run_now(orkes_app.definitions[0].name)

    starts = orkes_app.requests(path="/api/workflow")
    assert len(starts) == 2  # the refused one and the one that started it
    assert len(orkes_app.executions) == before + 1 and workflow_id in orkes_app.executions
    assert orkes_client.get_run(workflow_id).triggered_by == "key"


def test_it_raises_unauthorized_for_a_wrong_orkes_key(orkes_server, orkes_app):
    client = make_conductor_client(orkes_server, credential="key:wrong")

    with pytest.raises(Unauthorized) as caught:
        client.list_schedules()

    assert caught.value.status_code == 401
    assert [e["path"] for e in orkes_app.requests()] == ["/api/token"]


def test_it_raises_unauthorized_without_a_credential_on_orkes(orkes_server):
    client = make_conductor_client(orkes_server)

    with pytest.raises(Unauthorized):
        client.get_run("anything")


# Errors ------------------------------------------------------------------------------------


def test_it_raises_not_found_for_an_unknown_workflow(conductor_client):
    with pytest.raises(NotFound) as caught:
        conductor_client.get_run("nope")
    assert caught.value.message == "No such workflow found by id: nope"


def test_it_raises_conflict_when_rerunning_a_running_workflow(conductor_client, conductor_app):
    workflow_id = conductor_client.run_now(conductor_app.definitions[0].name)

    with pytest.raises(Conflict) as caught:
        conductor_client.rerun(workflow_id, RerunSpec(scope=Scope.ALL), schedule_id="")

    assert "not in terminal state, unable to rerun" in caught.value.message
    with pytest.raises(NotFound, match="still running"):
        conductor_client.rerun(workflow_id, RerunSpec(scope=Scope.FAILED), schedule_id="")


def test_it_raises_bad_request_with_the_vendor_message_for_an_unknown_task(
    conductor_client, conductor_app
):
    execution = completed(conductor_app)
    spec = RerunSpec(scope=Scope.FROM_TASK, task_id="no-such-task")

    with pytest.raises(BadRequest) as caught:
        conductor_client.rerun(execution.id, spec, schedule_id="")

    assert caught.value.status_code == 400 and caught.value.message == "Task no-such-task not found"


def test_it_raises_conflict_when_nothing_can_be_retried(conductor_client, conductor_app):
    with pytest.raises(Conflict, match="no retryable tasks"):
        conductor_client.rerun(
            completed(conductor_app).id, RerunSpec(scope=Scope.FAILED), schedule_id=""
        )


def test_it_raises_unavailable_on_a_server_error_and_never_resends_a_write(
    conductor_client, conductor_app
):
    execution = failed_at(conductor_app, "flaky")
    conductor_app.faults = [Fault(path="/rerun", error_rate=1.0, status=503)]

    with pytest.raises(Unavailable) as caught:
        conductor_client.rerun(execution.id, RerunSpec(scope=Scope.ALL), schedule_id="")

    assert caught.value.status_code == 503
    assert len(conductor_app.requests(path="/rerun")) == 1
    assert execution.wf["status"] == "FAILED"


def test_it_retries_a_read_after_a_server_error(conductor_client, conductor_app):
    conductor_app.faults = [Fault(path="/api/metadata", error_rate=1.0, status=500, remaining=1)]

    assert conductor_client.list_schedules()
    assert len(conductor_app.requests(path="/api/metadata")) == 2


def test_it_raises_unavailable_with_unknown_outcome_on_a_timeout(conductor_server, conductor_app):
    client = make_conductor_client(conductor_server, timeout=0.2)
    conductor_app.faults = [Fault(path="/api/workflow$", timeout=0.5)]

    with pytest.raises(Unavailable) as caught:
        client.run_now(conductor_app.definitions[0].name)

    assert caught.value.outcome_unknown


def test_it_raises_protocol_error_on_malformed_json(conductor_client, conductor_app):
    conductor_app.faults = [Fault(path="/api/workflow/search", malformed=True)]

    with pytest.raises(ProtocolError):
        conductor_client.list_runs(conductor_app.definitions[0].name)


def test_it_raises_unavailable_when_the_connection_is_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ConductorClient(make_client(f"http://127.0.0.1:{port}", timeout=1.0))

    with pytest.raises(Unavailable) as caught:
        client.run_now("anything")

    assert not caught.value.outcome_unknown


def test_it_works_against_a_separately_served_orkes_flavour_without_auth():
    """Orkes rerun answers with no token auth: both switches are independent."""
    app = make_conductor_app(orkes=True)
    with served(app) as server:
        client = make_conductor_client(server)
        execution = failed_at(app, "flaky")
        client.rerun(execution.id, RerunSpec(scope=Scope.ALL), schedule_id="")
        run = client.get_run(execution.id)
    assert all(r.status == Status.CANCELLED for r in run.results[:-1])
    assert run.results[-1].status == Status.QUEUED
    assert ORKES_KEY not in str(app.requests())


def test_it_reads_a_worker_log_given_as_text_or_as_lines():
    lines = [f"12:00:0{n}.000 WARNING attempt {n}" for n in range(10)]
    assert _worker_log({"log": lines}) == "\n".join(lines[-8:])
    assert _worker_log({"logs": "one\ntwo\n"}) == "one\ntwo"
    assert _worker_log({"passed": False, "error": "boom"}) == ""
    assert _worker_log(None) == ""
