"""The Testsigma emulator on its own: paths, shapes, codes, the clock, outcomes, determinism."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from runs.orchestrators.emulation import served
from runs.orchestrators.testsigma.emulator import TestsigmaEmulator
from tests.fixtures.testsigma import TESTSIGMA_KEY, TESTSIGMA_START, paused_clock


@pytest.fixture
def api(testsigma_app: TestsigmaEmulator) -> Iterator[httpx.Client]:
    """The emulator in-process, with the right bearer key."""
    with httpx.Client(
        transport=httpx.WSGITransport(app=testsigma_app),
        base_url="http://testsigma/api/v1",
        headers={"Authorization": f"Bearer {TESTSIGMA_KEY}"},
    ) as client:
        yield client


def finished_run(app: TestsigmaEmulator, plan_id: int = 101) -> dict[str, Any]:
    """The newest finished original run of a plan with a failed data-driven case."""
    state = app.state()
    plan = next(p for p in state["test_plans"] if p["id"] == plan_id)
    data_driven = {c["id"] for c in plan["cases"] if c["sets"]}
    for run in reversed(state["runs"]):
        if (
            run["plan_id"] != plan_id
            or run["rerun_parent_id"]
            or run["status"] != "STATUS_COMPLETED"
        ):
            continue
        failed = [c for c in run["case_results"] if c["result"] == "FAILURE"]
        if any(c["test_case_id"] in data_driven for c in failed):
            return run
    raise AssertionError("no finished run with a failed data-driven case")


def run_state(app: TestsigmaEmulator, run_id: int) -> dict[str, Any]:
    return next(run for run in app.state()["runs"] if run["id"] == run_id)


def step(app: TestsigmaEmulator, seconds: float) -> None:
    app.clock.step(seconds)


def finish(app: TestsigmaEmulator) -> None:
    """Step far enough for every run started so far to complete."""
    step(app, 2.0 * 50)


def rerun_body(run: dict[str, Any], re_run_type: str, requests: Any = ()) -> dict[str, Any]:
    return {
        "executionId": run["plan_id"],
        "executionResultId": run["id"],
        "isReRun": True,
        "reRunType": re_run_type,
        "testCaseResultRequests": list(requests),
    }


# The estate ------------------------------------------------------------------------------------


def test_it_builds_three_to_five_plans_of_eight_to_forty_cases(
    testsigma_app: TestsigmaEmulator,
) -> None:
    state = testsigma_app.state()
    plans = state["test_plans"]
    assert 3 <= len(plans) <= 5
    assert [p["id"] for p in plans] == list(range(101, 101 + len(plans)))
    for plan in plans:
        assert 8 <= len(plan["cases"]) <= 40
        assert len(plan["run_ids"]) == 3
        assert plan["last_run_id"] == plan["run_ids"][-1]
    first = {c["outcome"] for c in plans[0]["cases"]}
    assert {"pass", "fail", "machine", "flaky", "iteration", "iteration_flaky"} <= first
    for case in plans[0]["cases"]:
        if case["outcome"].startswith("iteration"):
            assert 2 <= len(case["sets"]) <= 5
            assert case["bad_set"] in case["sets"]
    assert state["agents"][0] == {"id": 11, "title": "Chrome 131 on Windows 11"}


def test_it_keeps_history_finished_in_the_past(testsigma_app: TestsigmaEmulator, api) -> None:
    ids = [run["id"] for run in testsigma_app.state()["runs"]]
    assert ids == sorted(ids)
    for run_id in ids:
        body = api.get(f"/execution_results/{run_id}").json()
        assert body["status"] == "STATUS_COMPLETED"
        assert body["result"] in ("SUCCESS", "FAILURE")
        ended = body["endTime"] / 1000
        assert TESTSIGMA_START.timestamp() - 30 * 86400 < ended < TESTSIGMA_START.timestamp()
        assert body["totalCount"] == body["passedCount"] + body["failedCount"]


def test_it_is_deterministic_by_seed() -> None:
    def state(seed: int) -> dict[str, Any]:
        return TestsigmaEmulator(seed=seed, history=4, clock=paused_clock()).state()

    assert state(7) == state(7)
    assert state(7) != state(8)


def test_it_answers_the_same_ids_after_a_reset(testsigma_app: TestsigmaEmulator, api) -> None:
    before = testsigma_app.state()
    api.post("/execution_results", json={"executionId": 101})
    assert testsigma_app.state() != before
    testsigma_app.reset()
    assert testsigma_app.state() == before


# Auth and errors -------------------------------------------------------------------------------


def test_it_refuses_a_missing_or_wrong_bearer_key(testsigma_app: TestsigmaEmulator) -> None:
    transport = httpx.WSGITransport(app=testsigma_app)
    with httpx.Client(transport=transport, base_url="http://testsigma/api/v1") as bare:
        missing = bare.get("/environments")
        wrong = bare.get("/environments", headers={"Authorization": "Bearer nope"})
        basic = bare.get("/environments", headers={"Authorization": f"Basic {TESTSIGMA_KEY}"})
        right = bare.get("/environments", headers={"Authorization": f"Bearer {TESTSIGMA_KEY}"})
    assert missing.status_code == wrong.status_code == basic.status_code == 401
    assert missing.json()["error"] == "Unauthorized"
    assert "authentication" in missing.json()["message"]
    assert right.status_code == 200


def test_it_answers_404_for_unknown_ids(api) -> None:
    assert api.get("/execution_results/999999").status_code == 404
    assert api.get("/execution_results/abc").status_code == 404
    assert api.get("/execution_results/999999/test_case_results").status_code == 404
    assert api.put("/execution_results/999999", json={"result": "STOPPED"}).status_code == 404
    assert api.get("/reports/junit/999999").status_code == 404
    unknown_plan = api.post("/execution_results", json={"executionId": 999})
    assert unknown_plan.status_code == 404
    assert unknown_plan.json()["message"] == "Test plan with id 999 not found"
    unknown_source = api.post(
        "/execution_results",
        json={
            "executionId": 101,
            "executionResultId": 1,
            "isReRun": True,
            "reRunType": "ALL_TESTS",
        },
    )
    assert unknown_source.status_code == 404
    unknown_environment = api.post(
        "/execution_results", json={"executionId": 101, "environmentId": 5}
    )
    assert unknown_environment.status_code == 404
    assert api.get("/test_plans").status_code == 404


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "Malformed JSON"),
        (b"[101]", "expected an object"),
        (b"{}", "executionId is required"),
        (b'{"executionId": "one"}', "executionId must be a number"),
        (b'{"executionId": 101, "runtimeData": [1]}', "runtimeData must be an object"),
        (b'{"executionId": 101, "isReRun": "yes"}', "isReRun must be true or false"),
    ],
)
def test_it_answers_400_for_malformed_trigger_bodies(api, content: bytes, message: str) -> None:
    response = api.post(
        "/execution_results", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_it_answers_400_for_values_outside_the_rerun_enums(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    run = finished_run(testsigma_app)
    case_id = run["case_results"][0]["id"]
    bad_type = api.post("/execution_results", json=rerun_body(run, "ONLY_PASSED_TESTS"))
    assert bad_type.status_code == 400
    assert "reRunType must be one of" in bad_type.json()["message"]
    missing_type = api.post("/execution_results", json=rerun_body(run, None))
    assert missing_type.status_code == 400
    bad_iteration = api.post(
        "/execution_results",
        json=rerun_body(run, "USER_PICKED", [{"id": case_id, "iterationReRunType": "SOME"}]),
    )
    assert bad_iteration.status_code == 400
    assert "iterationReRunType must be one of" in bad_iteration.json()["message"]


def test_it_answers_400_for_a_user_picked_rerun_of_case_results_not_in_the_run(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    run = finished_run(testsigma_app)
    other = next(r for r in testsigma_app.state()["runs"] if r["id"] != run["id"])
    stranger = other["case_results"][0]["id"]
    response = api.post(
        "/execution_results", json=rerun_body(run, "USER_PICKED", [{"id": stranger}])
    )
    assert response.status_code == 400
    assert response.json()["message"] == (
        f"Test case result {stranger} is not part of execution result {run['id']}"
    )
    empty = api.post("/execution_results", json=rerun_body(run, "USER_PICKED"))
    assert empty.status_code == 400
    data_driven = next(c for c in run["case_results"] if c["iterations"])
    foreign_iteration = api.post(
        "/execution_results",
        json=rerun_body(
            run,
            "USER_PICKED",
            [
                {
                    "id": data_driven["id"],
                    "iterationReRunType": "USER_PICKED",
                    "iterationResultIds": [1],
                }
            ],
        ),
    )
    assert foreign_iteration.status_code == 400
    wrong_plan = api.post(
        "/execution_results", json={**rerun_body(run, "ALL_TESTS"), "executionId": 102}
    )
    assert wrong_plan.status_code == 400
    assert "does not belong to test plan 102" in wrong_plan.json()["message"]


def test_it_answers_400_when_a_rerun_would_run_nothing(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    passed = next(r for r in testsigma_app.state()["runs"] if r["result"] == "SUCCESS")
    response = api.post("/execution_results", json=rerun_body(passed, "ONLY_FAILED_TESTS"))
    assert response.status_code == 400
    assert "no test cases to rerun" in response.json()["message"]


def test_it_answers_405_for_an_unserved_method(api) -> None:
    assert api.delete("/execution_results/5001").status_code == 405


# Trigger, poll, progression ------------------------------------------------------------------


def test_it_triggers_with_execution_null_then_fills_it_with_last_run_id(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    answer = api.post(
        "/execution_results",
        json={
            "executionId": "101",
            "environmentId": 22,
            "buildNo": "build-77",
            "runtimeData": {"locale": "de-DE"},
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["execution"] is None
    assert body["result"] == "QUEUED"
    assert body["status"] == "STATUS_CREATED"
    assert body["executionId"] == 101
    assert body["buildNo"] == "build-77"
    assert body["environmentId"] == 22
    assert body["runtimeData"] == {"locale": "de-DE"}
    assert body["triggeredType"] == "API"
    assert body["reRunParentId"] is None
    assert body["startTime"] == int(TESTSIGMA_START.timestamp() * 1000)
    polled = api.get(f"/execution_results/{body['id']}").json()
    assert polled["execution"]["id"] == 101
    assert polled["execution"]["name"] == "Checkout regression"
    assert polled["execution"]["lastRunId"] == body["id"]
    assert body["id"] == max(r["id"] for r in testsigma_app.state()["runs"])


def test_it_moves_a_run_along_the_clock_one_case_per_pace(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    run_id = api.post("/execution_results", json={"executionId": 103}).json()["id"]
    seen = []

    def poll() -> dict[str, Any]:
        body = api.get(f"/execution_results/{run_id}").json()
        seen.append(body["status"])
        return body

    total = poll()["totalCount"]
    assert seen == ["STATUS_CREATED"]
    assert poll()["queuedCount"] == total
    step(testsigma_app, 0.8)
    assert poll()["status"] == "STATUS_QUEUED"
    step(testsigma_app, 0.6)
    assert poll()["status"] == "STATUS_PRE_FLIGHT"
    step(testsigma_app, 0.6)  # 2.0 s: the first case starts
    body = poll()
    assert body["status"] == "STATUS_IN_PROGRESS"
    assert (body["runningCount"], body["queuedCount"]) == (1, total - 1)
    cases = api.get(f"/execution_results/{run_id}/test_case_results").json()["testCases"]
    assert cases[0]["status"] == "STATUS_IN_PROGRESS"
    assert cases[0]["result"] == "QUEUED"
    step(testsigma_app, 2.0 * 3)
    body = poll()
    assert body["passedCount"] + body["failedCount"] == 3
    assert body["queuedCount"] == total - 4
    assert body["result"] == "QUEUED"
    assert body["endTime"] is None
    step(testsigma_app, 2.0 * total)
    body = poll()
    assert body["status"] == "STATUS_COMPLETED"
    assert body["passedCount"] + body["failedCount"] == total
    assert body["result"] == ("FAILURE" if body["failedCount"] else "SUCCESS")
    assert body["endTime"] - body["startTime"] == int((2.0 + 2.0 * total) * 1000)
    assert body["queuedCount"] == body["runningCount"] == 0


def test_it_stops_a_running_run(testsigma_app: TestsigmaEmulator, api) -> None:
    run_id = api.post("/execution_results", json={"executionId": 101}).json()["id"]
    step(testsigma_app, 2.0 + 2.0 * 2 + 1.0)
    stopped = api.put(
        f"/execution_results/{run_id}", json={"result": "STOPPED", "canStopAll": True}
    )
    assert stopped.status_code == 200
    body = stopped.json()
    assert (body["status"], body["result"]) == ("STATUS_COMPLETED", "STOPPED")
    assert body["passedCount"] + body["failedCount"] == 2
    assert body["stoppedCount"] == body["totalCount"] - 2
    step(testsigma_app, 200)
    assert api.get(f"/execution_results/{run_id}").json()["result"] == "STOPPED"
    refused = api.put(f"/execution_results/{run_id}", json={"result": "SUCCESS"})
    assert refused.status_code == 400


def test_it_lists_environments_with_variables(api) -> None:
    environments = api.get("/environments").json()
    assert [e["id"] for e in environments] == [21, 22, 23]
    assert environments[0]["name"] == "Staging"
    keys = {v["key"]: v["isEncrypted"] for v in environments[0]["variables"]}
    assert keys == {"baseUrl": False, "adminUser": False, "adminPassword": True}


def test_it_answers_a_junit_report(testsigma_app: TestsigmaEmulator, api) -> None:
    run = finished_run(testsigma_app)
    response = api.get(f"/reports/junit/{run['id']}")
    assert response.headers["content-type"] == "application/xml"
    assert response.text.startswith('<?xml version="1.0"')
    assert response.text.count("<testcase ") == run["counts"]["total"]
    assert response.text.count("<failure ") == run["counts"]["failed"]


# Reruns --------------------------------------------------------------------------------------


def test_it_answers_every_rerun_type_with_a_new_run_of_the_chosen_cases(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    run = finished_run(testsigma_app)
    failed = [c for c in run["case_results"] if c["result"] == "FAILURE"]
    failed_iterations = {
        c["id"]: [i["set_name"] for i in c["iterations"] if i["result"] == "FAILURE"]
        for c in failed
    }
    expected_cases = {
        "ALL_TESTS": len(run["case_results"]),
        "ONLY_FAILED_TESTS": len(failed),
        "ALL_ITERATIONS": len(failed),
        "ONLY_FAILED_ITERATIONS": len(failed),
        "ONLY_FAILED_ITERATIONS_IN_FAILED_TESTS": len(failed),
    }
    for re_run_type, count in expected_cases.items():
        answer = api.post("/execution_results", json=rerun_body(run, re_run_type))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["id"] != run["id"]
        assert body["reRunParentId"] == run["id"]
        assert body["reRunType"] == re_run_type
        assert body["result"] == "QUEUED"
        assert body["totalCount"] == count
        cases = api.get(f"/execution_results/{body['id']}/test_case_results").json()["testCases"]
        if re_run_type.startswith("ONLY_FAILED_ITERATIONS"):
            by_case = {c["testCaseId"]: c for c in cases}
            for source in failed:
                sets = failed_iterations[source["id"]]
                if sets:
                    names = [
                        i["setName"] for i in by_case[source["test_case_id"]]["iterationResults"]
                    ]
                    assert names == sets
        elif re_run_type == "ALL_ITERATIONS":
            plan_sets = {
                c["id"]: c["sets"] for c in testsigma_app.state()["test_plans"][0]["cases"]
            }
            for case in cases:
                names = [i["setName"] for i in case["iterationResults"]]
                assert names == plan_sets[case["testCaseId"]]


def test_it_reruns_two_picked_case_results_with_their_iterations(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    run = finished_run(testsigma_app)
    data_driven = next(
        c for c in run["case_results"] if c["result"] == "FAILURE" and c["iterations"]
    )
    plain = next(c for c in run["case_results"] if not c["iterations"])
    picked_iteration = data_driven["iterations"][0]
    answer = api.post(
        "/execution_results",
        json=rerun_body(
            run,
            "USER_PICKED",
            [
                {
                    "id": data_driven["id"],
                    "iterationReRunType": "USER_PICKED",
                    "iterationResultIds": [picked_iteration["id"]],
                },
                {"id": plain["id"]},
            ],
        ),
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["reRunParentId"] == run["id"]
    assert body["reRunType"] == "USER_PICKED"
    assert body["totalCount"] == 2
    new = testsigma_app.state()["runs"][-1]
    assert [c["test_case_id"] for c in new["case_results"]] == [
        data_driven["test_case_id"],
        plain["test_case_id"],
    ]
    assert [i["set_name"] for i in new["case_results"][0]["iterations"]] == [
        picked_iteration["set_name"]
    ]
    assert new["case_results"][0]["machine_id"] == data_driven["machine_id"]


@pytest.mark.parametrize(
    ("kind", "wanted"), [("ALL", None), ("FAILED", "FAILURE"), ("PASSED", "SUCCESS")]
)
def test_it_picks_iterations_by_iteration_rerun_type(
    testsigma_app: TestsigmaEmulator, api, kind: str, wanted: str | None
) -> None:
    run = finished_run(testsigma_app)
    source = next(c for c in run["case_results"] if c["result"] == "FAILURE" and c["iterations"])
    body = api.post(
        "/execution_results",
        json=rerun_body(run, "USER_PICKED", [{"id": source["id"], "iterationReRunType": kind}]),
    ).json()
    new = testsigma_app.runs[body["id"]]
    expected = [i["set_name"] for i in source["iterations"] if wanted in (None, i["result"])]
    if kind == "ALL":
        plan_case = next(
            c for c in testsigma_app.plans[101].cases if c.id == source["test_case_id"]
        )
        expected = list(plan_case.sets)
    assert [i.set_name for i in new.cases[0].iterations] == expected


def test_it_passes_flaky_cases_and_iterations_when_rerun(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    plan = testsigma_app.state()["test_plans"][0]
    flaky = {c["id"] for c in plan["cases"] if c["outcome"] in ("flaky", "iteration_flaky")}
    always = {c["id"] for c in plan["cases"] if c["outcome"] in ("fail", "iteration")}
    for _ in range(3):
        run_id = api.post("/execution_results", json={"executionId": 101}).json()["id"]
        finish(testsigma_app)
        run = run_state(testsigma_app, run_id)
        failed = {c["test_case_id"] for c in run["case_results"] if c["result"] == "FAILURE"}
        if failed & flaky:
            break
    else:
        raise AssertionError("no flaky case failed in three runs")
    rerun_id = api.post("/execution_results", json=rerun_body(run, "ONLY_FAILED_TESTS")).json()[
        "id"
    ]
    finish(testsigma_app)
    rerun = run_state(testsigma_app, rerun_id)
    results = {c["test_case_id"]: c["result"] for c in rerun["case_results"]}
    assert set(results) == failed
    for case_id in failed & flaky:
        assert results[case_id] == "SUCCESS"
    for case_id in failed & always:
        assert results[case_id] == "FAILURE"
    assert all(c["attempt"] == 2 for c in rerun["case_results"])


def test_it_fails_machine_bound_cases_only_on_their_machine(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    plan = testsigma_app.state()["test_plans"][0]
    bound = next(c for c in plan["cases"] if c["outcome"] == "machine")
    outcomes = set()
    for _ in range(len(plan["machine_ids"])):
        run_id = api.post("/execution_results", json={"executionId": 101}).json()["id"]
        finish(testsigma_app)
        cases = api.get(f"/execution_results/{run_id}/test_case_results").json()["testCases"]
        case = next(c for c in cases if c["testCaseId"] == bound["id"])
        outcomes.add((case["machineId"], case["result"]))
    assert (bound["bad_machine_id"], "FAILURE") in outcomes
    assert all(
        result == ("FAILURE" if machine == bound["bad_machine_id"] else "SUCCESS")
        for machine, result in outcomes
    )
    assert len({machine for machine, _ in outcomes}) >= 2


def test_it_answers_case_results_in_the_documented_shape(
    testsigma_app: TestsigmaEmulator, api
) -> None:
    run = finished_run(testsigma_app)
    body = api.get(f"/execution_results/{run['id']}/test_case_results").json()
    assert body["executionId"] == 101
    assert body["executionResultId"] == run["id"]
    case = next(c for c in body["testCases"] if c["isDataDrivenCase"])
    assert {
        "testCaseId",
        "testCaseName",
        "testCaseResultId",
        "result",
        "isDataDrivenCase",
        "iterationResults",
        "testSuiteId",
        "testSuiteName",
        "machineId",
        "machineTitle",
    } <= set(case)
    assert set(case["iterationResults"][0]) == {"iterationResultId", "setName", "result"}
    assert (
        case["machineTitle"]
        in dict((a["id"], a["title"]) for a in testsigma_app.state()["agents"]).values()
    )


def test_it_answers_prose_results_when_asked(testsigma_prose_app: TestsigmaEmulator) -> None:
    transport = httpx.WSGITransport(app=testsigma_prose_app)
    with httpx.Client(
        transport=transport,
        base_url="http://testsigma/api/v1",
        headers={"Authorization": f"Bearer {TESTSIGMA_KEY}"},
    ) as api:
        words = set()
        for run in testsigma_prose_app.state()["runs"]:
            body = api.get(f"/execution_results/{run['id']}/test_case_results").json()
            words.add(body["result"])
            words |= {c["result"] for c in body["testCases"]}
    assert words == {"PASSED", "FAILED"}


def test_it_starts_runs_on_its_own_with_autorun() -> None:
    app = TestsigmaEmulator(seed=7, history=1, autorun=60.0, clock=paused_clock())
    before = len(app.state()["runs"])
    app.clock.step(600)
    runs = app.state()["runs"][before:]
    per_plan = {plan_id: 0 for plan_id in app.plans}
    for run in runs:
        assert run["triggered_type"] == "SCHEDULED"
        per_plan[run["plan_id"]] += 1
    assert all(5 <= count <= 15 for count in per_plan.values())
    again = TestsigmaEmulator(seed=7, history=1, autorun=60.0, clock=paused_clock())
    again.clock.step(600)
    assert again.state() == app.state()


# /_emulator/ and serving ---------------------------------------------------------------------


def test_it_serves_the_control_endpoints(testsigma_app: TestsigmaEmulator) -> None:
    with served(testsigma_app) as server, httpx.Client(base_url=server.base_url) as http:
        http.get("/api/v1/environments", headers={"Authorization": f"Bearer {TESTSIGMA_KEY}"})
        state = http.get("/_emulator/state").json()
        assert state["kind"] == "testsigma"
        assert state["clock"]["paused"] is True
        logged = http.get("/_emulator/requests").json()
        assert logged[-1]["path"] == "/api/v1/environments"
        assert logged[-1]["headers"]["authorization"] == "***"
        assert TESTSIGMA_KEY not in str(logged)
        http.post(
            "/_emulator/faults", json={"path": "environments", "status": 503, "error_rate": 1.0}
        )
        assert (
            http.get(
                "/api/v1/environments", headers={"Authorization": f"Bearer {TESTSIGMA_KEY}"}
            ).status_code
            == 503
        )
        http.delete("/_emulator/faults")
        moved = http.post("/_emulator/clock", json={"action": "step", "seconds": 90}).json()
        assert moved["now"] == (TESTSIGMA_START + timedelta(seconds=90)).isoformat()
        assert http.post("/_emulator/reset").json() == {"reset": True}
        assert http.get("/_emulator/requests").json() == []


def test_it_prints_the_base_url_and_plan_ids_in_its_banner(
    testsigma_app: TestsigmaEmulator,
) -> None:
    with served(testsigma_app) as server:
        lines = testsigma_app.banner()
    assert lines[0].startswith(f"Client base URL: {server.base_url}/api/v1")
    assert any(line.strip().startswith("101  Checkout regression") for line in lines)


def test_it_hints_how_to_connect_to_it(testsigma_app: TestsigmaEmulator) -> None:
    with served(testsigma_app) as emulator:
        hints = testsigma_app.connect_hints()
    state = testsigma_app.state()
    assert hints.base_url == f"{emulator.base_url}/api/v1"
    assert hints.credential == TESTSIGMA_KEY
    assert hints.test_plan_ids == tuple(str(plan["id"]) for plan in state["test_plans"])
    assert hints.run_ids and set(hints.run_ids) <= {str(run["id"]) for run in state["runs"]}
