"""Testsigma Cloud over its REST API v1 (api/testsigma.md).

The base URL is the account's API base *with* the version prefix, e.g.
`https://app.testsigma.com/api/v1` (the emulator: `http://127.0.0.1:8128/api/v1`). A bare
host (no path) gets `/api/v1` added, so `https://app.testsigma.com` works too.

Testsigma documents no list of test plans, runs or machines. Runboard discovers runs by id:
the runs it triggered, the ids it was given, each run's `reRunParentId`, and
`execution.lastRunId` (the plan's newest run), all carried on the RunSnapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from xml.etree import ElementTree

import httpx

from runs.orchestrators.base import (
    AgentSnapshot,
    BadRequest,
    CallResult,
    Capabilities,
    CaseTarget,
    IterationSnapshot,
    NotFound,
    OrchestratorClient,
    PlannedCall,
    ProtocolError,
    RerunOutcome,
    RerunSpec,
    ResultSnapshot,
    RunRef,
    RunSnapshot,
    ScheduleSnapshot,
    Scope,
)
from runs.orchestrators.http import Http, expect, parse_json, path_segment
from runs.status import (
    testsigma_result_status,
    testsigma_run_status,
    testsigma_vendor_word,
)

API_PREFIX = "/api/v1"
LOG_LINES = 8  # the last lines of a failure's log kept as its excerpt
# A lost call's run is looked for from this long before the call was sent: the clocks may
# disagree a little.
CLOCK_SLACK = timedelta(minutes=1)
# Testsigma lists no runs: a lost rerun is found from the plan's newest run, walking up its
# reRunParentId links (a rerun of the rerun, and so on) at most this many runs, each one call.
FIND_WALK = 5

# testsigma.md: reRunType (the Community Edition also knows the last one).
RE_RUN_TYPES = (
    "ALL_TESTS",
    "ONLY_FAILED_TESTS",
    "ALL_ITERATIONS",
    "ONLY_FAILED_ITERATIONS",
    "USER_PICKED",
    "ONLY_FAILED_ITERATIONS_IN_FAILED_TESTS",
)


@dataclass(frozen=True)
class EnvironmentSnapshot:
    """A Testsigma environment: the choices for a trigger's `environmentId`."""

    external_id: str
    name: str
    description: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    encrypted: frozenset[str] = frozenset()


class TestsigmaClient(OrchestratorClient):
    """A Testsigma account: test plans are schedules, test plan results are runs."""

    __test__ = False  # not a pytest class, despite the name
    kind: ClassVar[str] = "testsigma"
    capabilities: ClassVar[Capabilities] = Capabilities(
        scopes=frozenset({Scope.ALL, Scope.FAILED, Scope.PICKED}),
        agent_picker=False,
        variables=False,
        iterations=True,
        run_now=True,
        run_now_variables=True,
        build_and_environment=True,
        lists_runs=False,
        lists_schedules=False,
        schedule_titles_from_runs=True,
    )

    def __init__(
        self,
        client: httpx.Client,
        *,
        credential: str = "",
        test_plan_ids: Iterable[str | int] = (),
        concurrency: int = 8,
    ) -> None:
        self.client = client
        # One call per run (a run's results come in pages, each needing the one before).
        self.concurrency = concurrency
        self.http = Http(client)
        if credential:
            client.headers["Authorization"] = f"Bearer {credential}"
        # A bare host gets the version prefix; a base URL with a path is used as given.
        self.prefix = "" if client.base_url.path.strip("/") else API_PREFIX
        self.test_plan_ids = tuple(str(plan_id) for plan_id in test_plan_ids)

    def _path(self, path: str) -> str:
        return f"{self.prefix}{path}"

    # The interface ---------------------------------------------------------------------------

    def check(self) -> None:
        self.environments()

    def list_schedules(self) -> list[ScheduleSnapshot]:
        """The test plans this client was told about: Testsigma lists none, nor names them."""
        return [
            ScheduleSnapshot(external_id=plan_id, title=f"Test plan {plan_id}")
            for plan_id in self.test_plan_ids
        ]

    def follow_schedules(self, schedule_ids: Sequence[str]) -> None:
        self.test_plan_ids = tuple(str(plan_id) for plan_id in schedule_ids)

    def list_agents(self) -> list[AgentSnapshot]:
        """Machines are not listed by the API: they come with each case result."""
        return []

    def list_runs(
        self, schedule_id: str, *, since: datetime | None = None, limit: int = 200
    ) -> list[RunRef]:
        """Testsigma documents no run list: runs are found by id (see the module docstring)."""
        return []

    def get_run(self, run_id: str) -> RunSnapshot:
        run = self.result(run_id)
        results = self.case_results(run_id)
        if any(result.status.is_failure for result in results):
            results = self._with_report_logs(run_id, results)
        return replace(run, results=results)

    def _with_report_logs(
        self, run_id: str, results: tuple[ResultSnapshot, ...]
    ) -> tuple[ResultSnapshot, ...]:
        """Failed case results with the log their `<failure>` carries in the JUnit report: the
        case results themselves document only a message."""
        try:
            failures = junit_failures(self.junit(run_id))
        except (NotFound, BadRequest, ProtocolError):
            return results  # no report to read: the results stand without their logs
        found = []
        for result in results:
            message, log = failures.get((result.suite, result.case_title), ("", ""))
            if result.status.is_failure and (message or log):
                lines = log.splitlines()[-LOG_LINES:]
                result = replace(
                    result, message=result.message or message, log_excerpt="\n".join(lines)
                )
            found.append(result)
        return tuple(found)

    def run_now(
        self,
        schedule_id: str,
        *,
        variables: Mapping[str, Any] | None = None,
        build: str = "",
        environment: str = "",
    ) -> str:
        body: dict[str, Any] = {"executionId": _vendor_id(schedule_id)}
        if environment:
            body["environmentId"] = _vendor_id(environment)
        if build:
            body["buildNo"] = build
        if variables:
            body["runtimeData"] = dict(variables)
        # testsigma.md: trigger a test plan.
        answer = self.http.json("POST", self._path("/execution_results"), json_body=body)
        return _run_id(answer)

    @classmethod
    def plan_rerun(cls, run_id: str, spec: RerunSpec, *, schedule_id: str) -> list[PlannedCall]:
        if spec.scope == Scope.ALL:
            re_run_type, cases = "ALL_TESTS", ()
        elif spec.scope == Scope.FAILED:
            only_iterations = spec.only_failed_iterations
            re_run_type = "ONLY_FAILED_ITERATIONS" if only_iterations else "ONLY_FAILED_TESTS"
            cases = ()
        elif spec.scope == Scope.PICKED:
            if not spec.cases:
                raise BadRequest("a hand-picked Testsigma rerun needs at least one case")
            re_run_type, cases = "USER_PICKED", spec.cases
        else:
            raise BadRequest(f"Testsigma cannot rerun with scope {spec.scope.value!r}")
        return [_rerun_call(run_id, schedule_id, re_run_type, cases)]

    def rerun(self, run_id: str, spec: RerunSpec, *, schedule_id: str) -> RerunOutcome:
        calls = [
            CallResult(
                target=self.call_target(run_id, call), run_id=self.send_planned(run_id, call)
            )
            for call in self.plan_rerun(run_id, spec, schedule_id=schedule_id)
        ]
        return RerunOutcome(calls=tuple(calls))

    def send_planned(self, run_id: str, call: PlannedCall) -> str:
        # testsigma.md: rerun.
        response = self.http.request(
            call.method, self._path(call.path), params=call.params or None, json_body=call.body
        )
        return _run_id(parse_json(response))

    @classmethod
    def call_target(cls, run_id: str, call: PlannedCall) -> str:
        return f"execution result {run_id}"

    def find_started(self, run_id: str, call: PlannedCall, *, since: datetime) -> str | None:
        """The rerun of `run_id` begun since with the reRunType sent, found from the plan's
        newest run (`execution.lastRunId` of `run_id`) and, should that be a rerun of a rerun,
        the runs it derives from.

        Testsigma lists no runs: a rerun followed by a run that does not derive from it (the
        plan run again, another rerun of `run_id`) is no longer the plan's newest and is not
        found here.
        """
        threshold = since - CLOCK_SLACK
        body = call.body if isinstance(call.body, dict) else {}
        re_run_type = body.get("reRunType")
        try:
            candidate = self.result(run_id).latest_sibling_id
            for _ in range(FIND_WALK):
                if not candidate or candidate == run_id:
                    return None
                run, answer = self._result_answer(candidate)
                if run.started_at is None or run.started_at < threshold:
                    return None  # the ones it derives from began earlier still
                if run.parent_external_id == run_id:
                    shown = answer.get("reRunType")
                    return None if re_run_type and shown and shown != re_run_type else candidate
                candidate = run.parent_external_id
        except NotFound:
            return None
        return None

    def find_run_now(
        self,
        schedule_id: str,
        *,
        since: datetime,
        variables: Mapping[str, Any] | None = None,
        known_run_id: str = "",
    ) -> str | None:
        """The plan's newest run (`execution.lastRunId` of `known_run_id`, a run of the plan)
        if it began since, is not a rerun nor scheduled, and carries these variables as its
        runtimeData where it shows any. Without a known run there is nothing to ask."""
        if not known_run_id:
            return None
        try:
            known = self.result(known_run_id)
            if known.schedule_id != str(schedule_id):
                raise BadRequest(f"run {known_run_id} is not a run of test plan {schedule_id}")
            if not known.latest_sibling_id:
                return None
            run, answer = self._result_answer(known.latest_sibling_id)
        except NotFound:
            return None
        if run.parent_external_id or run.trigger == "scheduled":
            return None
        if run.started_at is None or run.started_at < since - CLOCK_SLACK:
            return None
        shown = answer.get("runtimeData")
        if isinstance(shown, dict) and any(
            key not in shown or shown[key] != value for key, value in (variables or {}).items()
        ):
            return None
        return run.external_id

    def stop_run(self, run_id: str) -> None:
        self.stop(run_id)

    def close(self) -> None:
        self.client.close()

    # Testsigma's own -------------------------------------------------------------------------

    def rerun_with_type(
        self,
        run_id: str,
        schedule_id: str,
        re_run_type: str,
        cases: Sequence[CaseTarget] = (),
    ) -> str:
        """Rerun with any reRunType (e.g. ALL_ITERATIONS); return the new run's id."""
        if re_run_type not in RE_RUN_TYPES:
            raise BadRequest(
                f"unknown reRunType {re_run_type!r} (Testsigma knows {', '.join(RE_RUN_TYPES)})"
            )
        planned = _rerun_call(run_id, schedule_id, re_run_type, tuple(cases))
        return self.send_planned(run_id, planned)

    def result(self, run_id: str) -> RunSnapshot:
        """One test plan result without its case results (a cheap poll)."""
        # testsigma.md: poll.
        answer = self.http.json("GET", self._path(f"/execution_results/{path_segment(run_id)}"))
        return _run_snapshot(answer)

    def _result_answer(self, run_id: str) -> tuple[RunSnapshot, dict[str, Any]]:
        """One test plan result, and the answer itself for the fields no snapshot keeps."""
        # testsigma.md: poll.
        answer = self.http.json("GET", self._path(f"/execution_results/{path_segment(run_id)}"))
        return _run_snapshot(answer), answer

    def case_results(self, run_id: str) -> tuple[ResultSnapshot, ...]:
        # testsigma.md: case results.
        answer = self.http.json(
            "GET", self._path(f"/execution_results/{path_segment(run_id)}/test_case_results")
        )
        cases = answer.get("testCases") if isinstance(answer, dict) else answer
        expect(cases, list, "test case results")
        return tuple(_result_snapshot(item, seq) for seq, item in enumerate(cases))

    def stop(self, run_id: str) -> RunSnapshot:
        """Stop a running test plan result; return it as the orchestrator answered."""
        # testsigma.md: stop.
        answer = self.http.json(
            "PUT",
            self._path(f"/execution_results/{path_segment(run_id)}"),
            json_body={"result": "STOPPED", "canStopAll": True},
        )
        return _run_snapshot(answer)

    def environments(self) -> list[EnvironmentSnapshot]:
        # testsigma.md: environments.
        answer = self.http.json("GET", self._path("/environments"))
        if isinstance(answer, dict) and isinstance(answer.get("content"), list):
            answer = answer["content"]  # a Spring page, should the account answer one
        expect(answer, list, "environments")
        return [_environment(item) for item in answer]

    def junit(self, run_id: str) -> str:
        """The run's JUnit XML report."""
        # testsigma.md: JUnit report.
        response = self.http.request("GET", self._path(f"/reports/junit/{path_segment(run_id)}"))
        return response.text


# Parsing at the boundary ---------------------------------------------------------------------


def _vendor_id(value: str | int) -> int | str:
    """Testsigma ids are numbers (Longs): send them as numbers when they are."""
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def _rerun_call(
    run_id: str, schedule_id: str, re_run_type: str, cases: tuple[CaseTarget, ...]
) -> PlannedCall:
    """The rerun request (testsigma.md: rerun, POST /execution_results under the API root)."""
    body = {
        "executionId": _vendor_id(schedule_id),
        "executionResultId": _vendor_id(run_id),
        "isReRun": True,
        "reRunType": re_run_type,
        "testCaseResultRequests": [_case_request(case) for case in cases],
    }
    return PlannedCall(method="POST", path="/execution_results", body=body)


def _case_request(case: CaseTarget) -> dict[str, Any]:
    request: dict[str, Any] = {"id": _vendor_id(case.result_id)}
    if case.is_data_driven:
        if case.iteration_ids:
            request["iterationReRunType"] = "USER_PICKED"
            request["iterationResultIds"] = [_vendor_id(i) for i in case.iteration_ids]
        else:
            request["iterationReRunType"] = "ALL"
    return request


def _text_id(value: Any, what: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value) == "":
        raise ProtocolError(f"{what}: expected an id, got {value!r:.120}")
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise ProtocolError(f"expected text, got {value!r:.120}")


def _moment(value: Any, what: str) -> datetime | None:
    """v1 times are epoch milliseconds; ISO strings are read too."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ProtocolError(f"{what}: {value!r} is not a time") from exc
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ProtocolError(f"{what}: {value!r} is not a time") from exc
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise ProtocolError(f"{what}: {value!r:.120} is not a time")


def _duration(value: Any) -> timedelta | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(milliseconds=value)
    return None


def _run_id(answer: Any) -> str:
    expect(answer, dict, "execution result")
    return _text_id(answer.get("id"), "execution result id")


def _run_snapshot(answer: Any) -> RunSnapshot:
    expect(answer, dict, "execution result")
    run_id = _text_id(answer.get("id"), "execution result id")
    execution = answer.get("execution")
    if execution is not None:
        expect(execution, dict, "execution")
    execution = execution or {}
    plan_id = _text_id(
        answer.get("executionId", execution.get("id")), f"execution result {run_id} executionId"
    )
    status, result = answer.get("status"), answer.get("result")
    if not isinstance(status, str | None) or not isinstance(result, str | None):
        raise ProtocolError(f"execution result {run_id}: status {status!r}, result {result!r}")
    parent = _text_id(answer.get("reRunParentId"), "reRunParentId", required=False)
    if parent:
        trigger = "rerun"
    elif answer.get("triggeredType") == "SCHEDULED" or answer.get("scheduledId") is not None:
        trigger = "scheduled"
    else:
        trigger = "manual"  # API or MANUAL: somebody asked for it
    runtime_data = answer.get("runtimeData")
    return RunSnapshot(
        external_id=run_id,
        schedule_id=plan_id,
        schedule_title=_text(execution.get("name")) or f"Test plan {plan_id}",
        status=testsigma_run_status(status, result),
        vendor_status=testsigma_vendor_word(status, result),
        started_at=_moment(answer.get("startTime"), "startTime"),
        finished_at=_moment(answer.get("endTime"), "endTime"),
        duration=_duration(answer.get("duration")),
        trigger=trigger,
        triggered_by=_text(answer.get("executedBy")),
        variables=dict(runtime_data) if isinstance(runtime_data, dict) else {},
        build=_text(answer.get("buildNo")),
        environment=_text(answer.get("environmentId")),
        message=_text(answer.get("message")),
        parent_external_id=parent,
        latest_sibling_id=_text_id(execution.get("lastRunId"), "lastRunId", required=False),
    )


def _result_snapshot(item: Any, seq: int) -> ResultSnapshot:
    expect(item, dict, "test case result")
    result_id = _text_id(item.get("testCaseResultId"), "testCaseResultId")
    status, result = item.get("status"), item.get("result")
    if not isinstance(status, str | None) or not isinstance(result, str | None):
        raise ProtocolError(f"test case result {result_id}: status {status!r}, result {result!r}")
    if status and (result or "QUEUED") == "QUEUED":
        # Not finished yet: the phase tells queued from running.
        normalized, vendor = (
            testsigma_run_status(status, result),
            testsigma_vendor_word(status, result),
        )
    elif status:
        normalized, vendor = testsigma_result_status(result), testsigma_vendor_word(status, result)
    else:
        normalized, vendor = testsigma_result_status(result), result or ""
    iterations = item.get("iterationResults") or []
    expect(iterations, list, f"test case result {result_id} iterationResults")
    return ResultSnapshot(
        external_id=result_id,
        case_key=_text_id(item.get("testCaseId"), f"test case result {result_id} testCaseId"),
        case_title=_text(item.get("testCaseName")),
        status=normalized,
        vendor_status=vendor,
        suite=_text(item.get("testSuiteName")),
        agent_id=_text(item.get("machineId")),
        agent_title=_text(item.get("machineTitle")),
        started_at=_moment(item.get("startTime"), "startTime"),
        finished_at=_moment(item.get("endTime"), "endTime"),
        duration=_duration(item.get("duration")),
        message=_text(item.get("message")),
        seq=seq,
        is_data_driven=bool(item.get("isDataDrivenCase")) or bool(iterations),
        iterations=tuple(_iteration(entry, result_id) for entry in iterations),
    )


def _iteration(entry: Any, result_id: str) -> IterationSnapshot:
    expect(entry, dict, f"test case result {result_id} iteration")
    result = entry.get("result")
    if not isinstance(result, str | None):
        raise ProtocolError(f"iteration of {result_id}: result {result!r}")
    return IterationSnapshot(
        external_id=_text_id(entry.get("iterationResultId"), "iterationResultId"),
        title=_text(entry.get("setName")),
        status=testsigma_result_status(result),
        vendor_status=result or "",
    )


def junit_failures(xml: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(suite, case name) -> (message, log text) of every failed or errored JUnit test case."""
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        # A JUnit report needs no DTD; refusing one keeps entity expansion out of the parser.
        raise ProtocolError("JUnit report with a DTD")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise ProtocolError(f"JUnit report: {exc}") from exc
    failures = {}
    for case in root.iter("testcase"):
        failed = case.find("failure")
        if failed is None:
            failed = case.find("error")
        if failed is None:
            continue
        key = (case.get("classname", ""), case.get("name", ""))
        failures[key] = (failed.get("message", ""), (failed.text or "").strip())
    return failures


def _environment(item: Any) -> EnvironmentSnapshot:
    expect(item, dict, "environment")
    variables: dict[str, str] = {}
    encrypted: set[str] = set()
    entries = item.get("variables") or []
    expect(entries, list, "environment variables")
    for entry in entries:
        expect(entry, dict, "environment variable")
        key = _text(entry.get("key"))
        variables[key] = _text(entry.get("value"))
        if entry.get("isEncrypted"):
            encrypted.add(key)
    return EnvironmentSnapshot(
        external_id=_text_id(item.get("id"), "environment id"),
        name=_text(item.get("name")),
        description=_text(item.get("description")),
        variables=variables,
        encrypted=frozenset(encrypted),
    )
