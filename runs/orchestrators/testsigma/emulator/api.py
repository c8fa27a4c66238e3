"""The Testsigma HTTP API under `/api/v1`: routes, Bearer auth, error bodies, request
parsing, and the execution result, case result, JUnit and environment endpoints.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from runs.orchestrators.emulation import (
    BadJson,
    EmulatorApp,
    HttpError,
    Request,
    Response,
    epoch_ms,
    json_response,
)
from runs.orchestrators.testsigma.emulator.model import (
    ENVIRONMENTS,
    FAILED_WORDS,
    NOT_EXECUTED,
    PREFIX,
    QUEUED,
    STOPPED,
    CaseRun,
    Plan,
    PlanRun,
)


class TestsigmaApi(EmulatorApp):
    """Routes requests to handlers; part of TestsigmaEmulator."""

    def authorize(self, request: Request) -> None:
        if not self.credential:
            return
        scheme, _, key = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.credential:
            raise HttpError(
                self.error(401, "Full authentication is required to access this resource")
            )

    def error(self, status: int, message: str) -> Response:
        # A Spring Boot error body, as Testsigma's server answers.
        reason = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}.get(status, "Error")
        return json_response(
            {
                "timestamp": epoch_ms(self.now()),
                "status": status,
                "error": reason,
                "message": message,
            },
            status,
        )

    def malformed_body(self) -> bytes:
        return b'{"id": 5001, "result": "SUCC'

    def routes(self) -> list[tuple[str, str, Any]]:
        run = rf"{PREFIX}/execution_results/(?P<run_id>[^/]+)"
        return [
            ("POST", rf"{PREFIX}/execution_results", self.post_execution_results),
            ("GET", run, self.get_execution_result),
            ("PUT", run, self.put_execution_result),
            ("GET", rf"{run}/test_case_results", self.get_test_case_results),
            ("GET", rf"{PREFIX}/reports/junit/(?P<run_id>[^/]+)", self.get_junit),
            ("GET", rf"{PREFIX}/environments", self.get_environments),
        ]

    def _fail(self, status: int, message: str) -> HttpError:
        return HttpError(self.error(status, message))

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except BadJson as exc:
            raise self._fail(400, f"Malformed JSON request: {exc}") from exc
        if not isinstance(body, dict):
            raise self._fail(400, "Malformed JSON request: expected an object")
        return body

    def _int(self, value: Any, name: str, *, required: bool = True) -> int | None:
        """A Long field as Jackson reads it: a number or a string of digits."""
        if value is None:
            if required:
                raise self._fail(400, f"{name} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self._fail(400, f"{name} must be a number")
        if isinstance(value, str):
            if not value.strip().isdigit():
                raise self._fail(400, f"{name} must be a number, not {value!r}")
            return int(value)
        return value

    def _run(self, run_id: str) -> PlanRun:
        run = self.runs.get(int(run_id)) if run_id.isdigit() else None
        if run is None:
            raise self._fail(404, f"Execution result with id {run_id} not found")
        return run

    def _plan(self, plan_id: int) -> Plan:
        plan = self.plans.get(plan_id)
        if plan is None:
            raise self._fail(404, f"Test plan with id {plan_id} not found")
        return plan

    # testsigma.md: trigger a test plan / rerun, both `POST /execution_results`.
    def post_execution_results(self, request: Request) -> Response:
        body = self._body(request)
        plan = self._plan(self._int(body.get("executionId"), "executionId"))
        is_rerun = body.get("isReRun", False)
        if not isinstance(is_rerun, bool):
            raise self._fail(400, "isReRun must be true or false")
        now = self.now()
        if is_rerun:
            run = self._post_rerun(plan, body, now)
        else:
            environment_id = self._int(body.get("environmentId"), "environmentId", required=False)
            if environment_id is not None and environment_id not in {e[0] for e in ENVIRONMENTS}:
                raise self._fail(404, f"Environment with id {environment_id} not found")
            build_no = body.get("buildNo")
            if build_no is not None and not isinstance(build_no, str | int):
                raise self._fail(400, "buildNo must be a string")
            runtime_data = body.get("runtimeData")
            if runtime_data is not None and not isinstance(runtime_data, dict):
                raise self._fail(400, "runtimeData must be an object")
            run = self._start(
                plan,
                now,
                triggered_type="API",
                executed_by=plan.owner,
                build_no=None if build_no is None else str(build_no),
                environment_id=environment_id,
                runtime_data=runtime_data,
            )
        self._settle(run, now)
        # testsigma.md: `execution` is null right after a trigger.
        return json_response(self._render(run, with_execution=False))

    # testsigma.md: poll.
    def get_execution_result(self, request: Request, run_id: str) -> Response:
        return json_response(self._render(self._run(run_id)))

    # testsigma.md: stop.
    def put_execution_result(self, request: Request, run_id: str) -> Response:
        run = self._run(run_id)
        body = self._body(request)
        if body.get("result") != STOPPED:
            raise self._fail(400, "Only result STOPPED can be set on an execution result")
        can_stop_all = body.get("canStopAll", True)
        if not isinstance(can_stop_all, bool):
            raise self._fail(400, "canStopAll must be true or false")
        self._stop(run, self.now())
        return json_response(self._render(run))

    # testsigma.md: case results.
    def get_test_case_results(self, request: Request, run_id: str) -> Response:
        run = self._run(run_id)
        return json_response(
            {
                "executionId": run.plan.id,
                "executionResultId": run.id,
                "result": self._word(run.result),
                "status": run.status,
                "testCases": [self._render_case(case_run) for case_run in run.cases],
            }
        )

    # testsigma.md: JUnit report.
    def get_junit(self, request: Request, run_id: str) -> Response:
        run = self._run(run_id)
        suites: dict[str, list[CaseRun]] = {}
        for case_run in run.cases:
            suites.setdefault(case_run.case.suite_name, []).append(case_run)
        lines = ['<?xml version="1.0" encoding="UTF-8"?>']
        lines.append(f'<testsuites name={quoteattr(run.plan.name)} tests="{len(run.cases)}">')
        for suite, case_runs in suites.items():
            failures = sum(c.result in FAILED_WORDS for c in case_runs)
            lines.append(
                f'  <testsuite name={quoteattr(suite)} tests="{len(case_runs)}" '
                f'failures="{failures}">'
            )
            for case_run in case_runs:
                seconds = (
                    (case_run.end - case_run.start).total_seconds()
                    if case_run.start and case_run.end
                    else 0.0
                )
                opening = (
                    f"    <testcase name={quoteattr(case_run.case.name)} "
                    f'classname={quoteattr(suite)} time="{seconds:.3f}"'
                )
                if case_run.result in FAILED_WORDS:
                    lines.append(opening + ">")
                    log = escape("\n".join(case_run.log))
                    lines.append(
                        f"      <failure message={quoteattr(case_run.message)}>{log}</failure>"
                    )
                    lines.append("    </testcase>")
                elif case_run.result in (STOPPED, NOT_EXECUTED, QUEUED):
                    lines.append(opening + "><skipped/></testcase>")
                else:
                    lines.append(opening + "/>")
            lines.append("  </testsuite>")
        lines.append("</testsuites>")
        return Response(200, "\n".join(lines) + "\n", {"Content-Type": "application/xml"})

    # testsigma.md: environments.
    def get_environments(self, request: Request) -> Response:
        return json_response(self.environments)
