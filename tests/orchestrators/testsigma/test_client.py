"""TestsigmaClient against its emulator over real HTTP on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
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
    ScheduleSnapshot,
    Scope,
    Unauthorized,
    Unavailable,
)
from runs.orchestrators.emulation import Fault, ServedEmulator, served
from runs.orchestrators.failure_causes import cause_of
from runs.orchestrators.http import make_client
from runs.orchestrators.registry import client_for
from runs.orchestrators.testsigma.client import TestsigmaClient, junit_failures
from runs.orchestrators.testsigma.emulator import TestsigmaEmulator
from runs.status import Status
from tests.fixtures.testsigma import TESTSIGMA_KEY, TESTSIGMA_START, make_testsigma_client


def last_request(app: TestsigmaEmulator) -> dict[str, Any]:
    return app.requests()[-1]


def finished_run(app: TestsigmaEmulator, plan_id: int = 101) -> dict[str, Any]:
    """The newest finished original run of a plan with a failed data-driven case."""
    state = app.state()
    data_driven = {
        c["id"] for p in state["test_plans"] if p["id"] == plan_id for c in p["cases"] if c["sets"]
    }
    for run in reversed(state["runs"]):
        if run["plan_id"] != plan_id or run["rerun_parent_id"]:
            continue
        failed = [c for c in run["case_results"] if c["result"] == "FAILURE"]
        if any(c["test_case_id"] in data_driven for c in failed):
            return run
    raise AssertionError("no finished run with a failed data-driven case")


def rerun_body(run: dict[str, Any], re_run_type: str, requests: list[Any]) -> dict[str, Any]:
    return {
        "executionId": run["plan_id"],
        "executionResultId": run["id"],
        "isReRun": True,
        "reRunType": re_run_type,
        "testCaseResultRequests": requests,
    }


# The interface ---------------------------------------------------------------------------------


def test_it_checks_the_credential_with_a_bearer_key(
    testsigma_app: TestsigmaEmulator, testsigma_server: ServedEmulator, testsigma_client
) -> None:
    testsigma_client.check()
    assert last_request(testsigma_app)["path"] == "/api/v1/environments"
    assert last_request(testsigma_app)["headers"]["authorization"] == "***"
    wrong = make_testsigma_client(testsigma_server, credential="wrong")
    with pytest.raises(Unauthorized) as caught:
        wrong.check()
    assert caught.value.status_code == 401
    assert "authentication" in caught.value.message
    wrong.close()


def test_it_is_built_by_the_registry(testsigma_server: ServedEmulator) -> None:
    client = client_for("testsigma", f"{testsigma_server.base_url}/api/v1", TESTSIGMA_KEY)
    assert isinstance(client, TestsigmaClient)
    client.check()
    client.close()


def test_it_adds_the_api_prefix_to_a_bare_host(
    testsigma_app: TestsigmaEmulator, testsigma_server: ServedEmulator
) -> None:
    client = TestsigmaClient(make_client(testsigma_server.base_url), credential=TESTSIGMA_KEY)
    assert [e.name for e in client.environments()] == ["Staging", "QA", "Pre-production"]
    assert last_request(testsigma_app)["path"] == "/api/v1/environments"
    client.close()


def test_it_lists_the_configured_test_plans_and_no_agents_or_runs(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    assert testsigma_client.list_schedules()[0] == ScheduleSnapshot("101", "Test plan 101")
    assert [s.external_id for s in testsigma_client.list_schedules()] == [
        str(plan_id) for plan_id in sorted(testsigma_app.plans)
    ]
    assert testsigma_client.list_agents() == []
    assert testsigma_client.list_runs("101") == []
    assert testsigma_app.requests() == []  # none of that asks the orchestrator


def test_it_reads_a_finished_run_with_its_case_results(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    source = finished_run(testsigma_app)
    run = testsigma_client.get_run(str(source["id"]))
    assert [entry["path"] for entry in testsigma_app.requests()] == [
        f"/api/v1/execution_results/{source['id']}",
        f"/api/v1/execution_results/{source['id']}/test_case_results",
        # a run with failures: its JUnit report carries their logs
        f"/api/v1/reports/junit/{source['id']}",
    ]
    assert run.external_id == str(source["id"])
    assert run.schedule_id == "101"
    assert run.schedule_title == "Checkout regression"
    assert run.status == Status.FAILED
    assert run.vendor_status == "STATUS_COMPLETED/FAILURE"
    assert run.latest_sibling_id == str(testsigma_app.plans[101].runs[-1])
    assert run.parent_external_id == ""
    assert run.started_at is not None and run.started_at.tzinfo is not None
    assert run.finished_at is not None and run.finished_at < TESTSIGMA_START
    assert run.duration == run.finished_at - run.started_at
    assert run.trigger in ("manual", "scheduled")
    assert len(run.results) == source["counts"]["total"]
    failed = [r for r in run.results if r.status == Status.FAILED]
    assert len(failed) == source["counts"]["failed"]
    by_id = {r.external_id: r for r in run.results}
    for expected in source["case_results"]:
        result = by_id[str(expected["id"])]
        assert result.case_key == str(expected["test_case_id"])
        assert result.agent_id == str(expected["machine_id"])
        assert result.agent_title.endswith(("Windows 11", "Windows 10", "Sequoia", "Sonoma"))
        assert result.suite
        assert [i.external_id for i in result.iterations] == [
            str(i["id"]) for i in expected["iterations"]
        ]
    data_driven = next(r for r in failed if r.is_data_driven)
    assert {i.status for i in data_driven.iterations} == {Status.PASSED, Status.FAILED}
    assert {i.vendor_status for i in data_driven.iterations} == {"SUCCESS", "FAILURE"}
    assert all(i.title for i in data_driven.iterations)
    assert data_driven.message
    assert data_driven.finished_at - data_driven.started_at == timedelta(seconds=2)
    assert [r.seq for r in run.results] == list(range(len(run.results)))
    # Each failure's log comes from the JUnit report and ends with its message.
    for result in failed:
        assert len(result.log_excerpt.splitlines()) >= 2
        assert result.log_excerpt.splitlines()[-1] == f"ERROR: {result.message}"
    passed = [r for r in run.results if r.status == Status.PASSED]
    assert passed and all(not r.log_excerpt for r in passed)
    assert not {cause_of(r.message) for r in passed} - {None}


def test_it_reads_failure_logs_from_a_junit_report() -> None:
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="Plan" tests="3">
  <testsuite name="Cart" tests="3" failures="2">
    <testcase name="Apply a discount code" classname="Cart" time="2.000">
      <failure message="Assertion failed">INFO: Step 3/5
ERROR: Assertion failed</failure>
    </testcase>
    <testcase name="Remove an item" classname="Cart" time="2.000"><error message="Boom"/></testcase>
    <testcase name="Add an item" classname="Cart" time="2.000"/>
  </testsuite>
</testsuites>"""
    assert junit_failures(xml) == {
        ("Cart", "Apply a discount code"): (
            "Assertion failed",
            "INFO: Step 3/5\nERROR: Assertion failed",
        ),
        ("Cart", "Remove an item"): ("Boom", ""),
    }
    with pytest.raises(ProtocolError):
        junit_failures('<!DOCTYPE x [<!ENTITY a "b">]><testsuites/>')
    with pytest.raises(ProtocolError):
        junit_failures("<testsuites>")


def test_it_triggers_a_test_plan_with_build_environment_and_runtime_data(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    run_id = testsigma_client.run_now(
        "102", variables={"locale": "de-DE"}, build="build-4711", environment="22"
    )
    trigger = last_request(testsigma_app)
    assert (trigger["method"], trigger["path"]) == ("POST", "/api/v1/execution_results")
    assert trigger["body"] == {
        "executionId": 102,
        "environmentId": 22,
        "buildNo": "build-4711",
        "runtimeData": {"locale": "de-DE"},
    }
    assert run_id == str(testsigma_app.plans[102].runs[-1])
    run = testsigma_client.get_run(run_id)
    assert run.status == Status.QUEUED
    assert run.vendor_status == "STATUS_CREATED/QUEUED"
    assert (run.build, run.environment) == ("build-4711", "22")
    assert run.variables == {"locale": "de-DE"}
    assert run.trigger == "manual"
    assert run.triggered_by == testsigma_app.plans[102].owner
    assert run.latest_sibling_id == run_id
    assert run.started_at == TESTSIGMA_START
    assert all(r.status == Status.QUEUED for r in run.results)


def test_it_sends_only_the_plan_id_when_run_now_has_no_options(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    testsigma_client.run_now("103")
    assert last_request(testsigma_app)["body"] == {"executionId": 103}


def test_it_follows_a_run_from_queued_to_finished(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    run_id = testsigma_client.run_now("103")
    testsigma_app.clock.step(2.0 + 1.0)
    running = testsigma_client.get_run(run_id)
    assert running.status == Status.RUNNING
    assert running.results[0].status == Status.RUNNING
    assert running.results[0].vendor_status == "STATUS_IN_PROGRESS/QUEUED"
    assert running.results[1].status == Status.QUEUED
    testsigma_app.clock.step(2.0 * 40)
    done = testsigma_client.get_run(run_id)
    assert done.status in (Status.PASSED, Status.FAILED)
    assert all(r.status in (Status.PASSED, Status.FAILED) for r in done.results)
    assert done.finished_at is not None


def test_it_stops_a_run(testsigma_app: TestsigmaEmulator, testsigma_client) -> None:
    run_id = testsigma_client.run_now("101")
    testsigma_app.clock.step(5.0)
    stopped = testsigma_client.stop(run_id)
    request = last_request(testsigma_app)
    assert (request["method"], request["path"]) == ("PUT", f"/api/v1/execution_results/{run_id}")
    assert request["body"] == {"result": "STOPPED", "canStopAll": True}
    assert stopped.status == Status.CANCELLED
    assert stopped.vendor_status == "STATUS_COMPLETED/STOPPED"
    testsigma_client.stop_run(run_id)  # stopping a finished run is harmless
    assert testsigma_client.get_run(run_id).status == Status.CANCELLED


def test_it_lists_environments(testsigma_client) -> None:
    environments = testsigma_client.environments()
    assert [(e.external_id, e.name) for e in environments] == [
        ("21", "Staging"),
        ("22", "QA"),
        ("23", "Pre-production"),
    ]
    assert environments[0].variables["baseUrl"] == "https://staging.shop.example"
    assert environments[0].encrypted == frozenset({"adminPassword"})


def test_it_reads_the_junit_report(testsigma_app: TestsigmaEmulator, testsigma_client) -> None:
    source = finished_run(testsigma_app)
    xml = testsigma_client.junit(str(source["id"]))
    assert last_request(testsigma_app)["path"] == f"/api/v1/reports/junit/{source['id']}"
    assert xml.count("<testcase ") == source["counts"]["total"]


def test_it_reads_the_prose_result_words(testsigma_prose_app: TestsigmaEmulator) -> None:
    with served(testsigma_prose_app) as server:
        client = make_testsigma_client(server)
        source = finished_run(testsigma_prose_app)
        run = client.get_run(str(source["id"]))
        client.close()
    assert run.status == Status.FAILED
    assert run.vendor_status == "STATUS_COMPLETED/FAILED"
    assert {r.status for r in run.results} == {Status.PASSED, Status.FAILED}
    assert {r.vendor_status for r in run.results} == {
        "STATUS_COMPLETED/PASSED",
        "STATUS_COMPLETED/FAILED",
    }
    iterations = {i.status for r in run.results for i in r.iterations}
    assert iterations == {Status.PASSED, Status.FAILED}


# Reruns ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "re_run_type"),
    [
        (RerunSpec(scope=Scope.ALL), "ALL_TESTS"),
        (RerunSpec(scope=Scope.FAILED), "ONLY_FAILED_TESTS"),
        (RerunSpec(scope=Scope.FAILED, only_failed_iterations=True), "ONLY_FAILED_ITERATIONS"),
    ],
)
def test_it_reruns_all_or_failed_with_the_matching_rerun_type(
    testsigma_app: TestsigmaEmulator, testsigma_client, spec: RerunSpec, re_run_type: str
) -> None:
    source = finished_run(testsigma_app)
    planned = testsigma_client.plan_rerun(str(source["id"]), spec, schedule_id="101")
    assert planned == [
        PlannedCall(
            method="POST",
            path="/execution_results",  # relative to the base URL, which ends in /api/v1
            body=rerun_body(source, re_run_type, []),
        )
    ]
    outcome = testsigma_client.rerun(str(source["id"]), spec, schedule_id="101")
    request = last_request(testsigma_app)
    assert (request["method"], request["path"], request["body"]) == (
        planned[0].method,
        "/api/v1" + planned[0].path,
        planned[0].body,
    )
    assert len(outcome.calls) == 1 and outcome.calls[0].ok
    (new_id,) = outcome.run_ids
    assert new_id != str(source["id"])
    rerun = testsigma_client.get_run(new_id)
    assert rerun.parent_external_id == str(source["id"])
    assert rerun.trigger == "rerun"
    assert rerun.latest_sibling_id == new_id
    expected = (
        source["counts"]["total"] if re_run_type == "ALL_TESTS" else source["counts"]["failed"]
    )
    assert len(rerun.results) == expected


def test_it_reruns_two_picked_case_results_with_their_iterations(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    source = finished_run(testsigma_app)
    data_driven = [c for c in source["case_results"] if c["iterations"]]
    picked_iterations = next(c for c in data_driven if c["result"] == "FAILURE")
    all_iterations = next(c for c in data_driven if c is not picked_iterations)
    failed_iteration = next(i for i in picked_iterations["iterations"] if i["result"] == "FAILURE")
    spec = RerunSpec(
        scope=Scope.PICKED,
        cases=(
            CaseTarget(
                result_id=str(picked_iterations["id"]),
                case_key=str(picked_iterations["test_case_id"]),
                iteration_ids=(str(failed_iteration["id"]),),
                is_data_driven=True,
            ),
            CaseTarget(
                result_id=str(all_iterations["id"]),
                case_key=str(all_iterations["test_case_id"]),
                is_data_driven=True,
            ),
        ),
    )
    outcome = testsigma_client.rerun(str(source["id"]), spec, schedule_id="101")
    assert last_request(testsigma_app)["body"] == rerun_body(
        source,
        "USER_PICKED",
        [
            {
                "id": picked_iterations["id"],
                "iterationReRunType": "USER_PICKED",
                "iterationResultIds": [failed_iteration["id"]],
            },
            {"id": all_iterations["id"], "iterationReRunType": "ALL"},
        ],
    )
    rerun = testsigma_client.get_run(outcome.run_ids[0])
    assert rerun.parent_external_id == str(source["id"])
    assert [r.case_key for r in rerun.results] == [
        str(picked_iterations["test_case_id"]),
        str(all_iterations["test_case_id"]),
    ]
    assert [i.title for i in rerun.results[0].iterations] == [failed_iteration["set_name"]]
    assert len(rerun.results[1].iterations) == len(
        testsigma_app.plans[101]
        .cases[[c.id for c in testsigma_app.plans[101].cases].index(all_iterations["test_case_id"])]
        .sets
    )


def test_it_sends_a_plain_picked_case_without_iteration_fields(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    source = finished_run(testsigma_app)
    plain = next(c for c in source["case_results"] if not c["iterations"])
    spec = RerunSpec(
        scope=Scope.PICKED,
        cases=(CaseTarget(result_id=str(plain["id"]), case_key=str(plain["test_case_id"])),),
    )
    testsigma_client.rerun(str(source["id"]), spec, schedule_id="101")
    requests = last_request(testsigma_app)["body"]["testCaseResultRequests"]
    assert requests == [{"id": plain["id"]}]


@pytest.mark.parametrize(
    "re_run_type",
    ["ALL_ITERATIONS", "ONLY_FAILED_ITERATIONS_IN_FAILED_TESTS", "ONLY_FAILED_TESTS"],
)
def test_it_reruns_with_any_rerun_type(
    testsigma_app: TestsigmaEmulator, testsigma_client, re_run_type: str
) -> None:
    source = finished_run(testsigma_app)
    new_id = testsigma_client.rerun_with_type(str(source["id"]), "101", re_run_type)
    assert last_request(testsigma_app)["body"] == rerun_body(source, re_run_type, [])
    rerun = testsigma_client.get_run(new_id)
    assert rerun.parent_external_id == str(source["id"])
    assert len(rerun.results) == source["counts"]["failed"]


def test_it_refuses_specs_it_cannot_send(testsigma_client) -> None:
    with pytest.raises(BadRequest, match="at least one case"):
        testsigma_client.plan_rerun("5001", RerunSpec(scope=Scope.PICKED), schedule_id="101")
    with pytest.raises(BadRequest, match="scope"):
        testsigma_client.plan_rerun("5001", RerunSpec(scope=Scope.FROM_TASK), schedule_id="101")
    with pytest.raises(BadRequest, match="reRunType"):
        testsigma_client.rerun_with_type("5001", "101", "EVERYTHING")


def test_it_declares_its_capabilities() -> None:
    capabilities = TestsigmaClient.capabilities
    assert capabilities.scopes == frozenset({Scope.ALL, Scope.FAILED, Scope.PICKED})
    assert capabilities.iterations and capabilities.run_now and capabilities.run_now_variables
    assert capabilities.build_and_environment
    assert not (capabilities.agent_picker or capabilities.variables)
    assert TestsigmaClient.kind == "testsigma"


# Errors ----------------------------------------------------------------------------------------


def test_it_raises_not_found_for_an_unknown_run(testsigma_client) -> None:
    with pytest.raises(NotFound) as caught:
        testsigma_client.get_run("999999")
    assert caught.value.message == "Execution result with id 999999 not found"
    with pytest.raises(NotFound):
        testsigma_client.run_now("999")


def test_it_raises_bad_request_with_the_vendor_message(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    source = finished_run(testsigma_app)
    spec = RerunSpec(scope=Scope.PICKED, cases=(CaseTarget(result_id="1", case_key="1"),))
    with pytest.raises(BadRequest) as caught:
        testsigma_client.rerun(str(source["id"]), spec, schedule_id="101")
    assert caught.value.status_code == 400
    assert caught.value.message == (
        f"Test case result 1 is not part of execution result {source['id']}"
    )


def test_it_raises_unavailable_on_5xx_and_retries_reads_only(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    testsigma_app.faults = [Fault(path="environments", status=503, error_rate=1.0, remaining=1)]
    assert testsigma_client.environments()  # the read retried past one 503
    assert len(testsigma_app.requests(path="environments")) == 2
    testsigma_app.faults = [Fault(method="POST", status=500, error_rate=1.0)]
    with pytest.raises(Unavailable) as caught:
        testsigma_client.run_now("101")
    assert caught.value.status_code == 500
    assert len(testsigma_app.requests(path="execution_results")) == 1  # writes never retry


def test_it_raises_unavailable_with_unknown_outcome_on_a_timeout(
    testsigma_app: TestsigmaEmulator, testsigma_server: ServedEmulator
) -> None:
    testsigma_app.faults = [Fault(method="POST", timeout=1.0)]
    client = make_testsigma_client(testsigma_server, timeout=httpx.Timeout(0.2, connect=1.0))
    with pytest.raises(Unavailable) as caught:
        client.run_now("101")
    assert caught.value.outcome_unknown
    client.close()


def test_it_raises_protocol_error_on_malformed_json(
    testsigma_app: TestsigmaEmulator, testsigma_client
) -> None:
    testsigma_app.faults = [Fault(path="execution_results", malformed=True)]
    with pytest.raises(ProtocolError):
        testsigma_client.get_run(str(testsigma_app.plans[101].runs[0]))
    with pytest.raises(ProtocolError):
        testsigma_client.run_now("101")


def test_it_raises_unavailable_when_the_connection_is_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = TestsigmaClient(
        make_client(f"http://127.0.0.1:{port}/api/v1", timeout=1.0), credential="k"
    )
    with pytest.raises(Unavailable) as caught:
        client.run_now("101")
    assert not caught.value.outcome_unknown
    client.close()


@contextmanager
def shaped(answers: dict[str, Any]) -> Iterator[TestsigmaClient]:
    """A client whose every answer is canned: shapes the emulator never answers."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers[request.url.path])

    client = TestsigmaClient(
        make_client("http://ts/api/v1", transport=httpx.MockTransport(handler)), credential="k"
    )
    yield client
    client.close()


GOOD_RUN = {
    "id": 1,
    "executionId": 101,
    "execution": None,
    "status": "STATUS_COMPLETED",
    "result": "SUCCESS",
    "startTime": 1_767_000_000_000,
}


@pytest.mark.parametrize(
    ("run", "cases"),
    [
        ([GOOD_RUN], {"testCases": []}),
        ({**GOOD_RUN, "id": None}, {"testCases": []}),
        ({**GOOD_RUN, "execution": "plan"}, {"testCases": []}),
        ({**GOOD_RUN, "startTime": "yesterday"}, {"testCases": []}),
        ({**GOOD_RUN, "status": 3}, {"testCases": []}),
        (GOOD_RUN, {"testCases": "none"}),
        (GOOD_RUN, {"testCases": [{"testCaseId": 1}]}),
        (
            GOOD_RUN,
            {"testCases": [{"testCaseResultId": 9, "testCaseId": 1, "iterationResults": 2}]},
        ),
        (GOOD_RUN, {"testCases": [{"testCaseResultId": 9, "testCaseId": {}}]}),
    ],
)
def test_it_raises_protocol_error_on_unexpected_shapes(run: Any, cases: Any) -> None:
    answers = {
        "/api/v1/execution_results/1": run,
        "/api/v1/execution_results/1/test_case_results": cases,
    }
    with shaped(answers) as client, pytest.raises(ProtocolError):
        client.get_run("1")


def test_it_reads_unknown_words_as_unknown_and_iso_times() -> None:
    answers = {
        "/api/v1/execution_results/1": {
            **GOOD_RUN,
            "status": "STATUS_SOMETHING_NEW",
            "startTime": "2026-03-01T10:00:00",
            "triggeredType": "SCHEDULED",
        },
        "/api/v1/execution_results/1/test_case_results": [
            {"testCaseResultId": 9, "testCaseId": 1, "result": "EXPLODED"}
        ],
    }
    with shaped(answers) as client:
        run = client.get_run("1")
    assert run.status == Status.UNKNOWN
    assert run.started_at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert run.trigger == "scheduled"
    assert run.schedule_title == "Test plan 101"
    assert run.results[0].status == Status.UNKNOWN
    assert run.results[0].vendor_status == "EXPLODED"
