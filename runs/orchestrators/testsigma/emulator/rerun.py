"""Reruns: which case results (and iterations) each reRunType picks, and the new result
that runs them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runs.orchestrators.emulation import (
    EmulatorApp,
)
from runs.orchestrators.testsigma.emulator.model import (
    FAILED_WORDS,
    ITERATION_RE_RUN_TYPES,
    RE_RUN_TYPES,
    SUCCESS,
    CaseRun,
    Plan,
    PlanRun,
)


class TestsigmaReruns(EmulatorApp):
    """Rerun selection and start; part of TestsigmaEmulator."""

    def _select(
        self, source: PlanRun, re_run_type: str, requests: list[dict[str, Any]] | None = None
    ) -> list[tuple[CaseRun, list[str]]]:
        """The case results a rerun runs again, each with the iterations (set names) it reruns."""
        picks: list[tuple[CaseRun, list[str]]] = []
        if re_run_type == "USER_PICKED":
            by_id = {case_run.id: case_run for case_run in source.cases}
            for request in requests or []:
                case_run = by_id[request["id"]]
                kind = request.get("iterationReRunType") or "ALL"
                if not case_run.case.is_data_driven or kind == "ALL":
                    sets = list(case_run.case.sets)
                elif kind == "USER_PICKED":
                    wanted = set(request["iterationResultIds"])
                    sets = [i.set_name for i in case_run.iterations if i.id in wanted]
                elif kind == "FAILED":
                    sets = [i.set_name for i in case_run.iterations if i.result in FAILED_WORDS]
                else:
                    sets = [i.set_name for i in case_run.iterations if i.result == SUCCESS]
                if sets or not case_run.case.is_data_driven:
                    picks.append((case_run, sets))
            return picks
        for case_run in source.cases:
            if re_run_type != "ALL_TESTS" and case_run.result not in FAILED_WORDS:
                continue
            sets = list(case_run.case.sets)
            if re_run_type in ("ONLY_FAILED_ITERATIONS", "ONLY_FAILED_ITERATIONS_IN_FAILED_TESTS"):
                failed_sets = [i.set_name for i in case_run.iterations if i.result in FAILED_WORDS]
                sets = failed_sets or sets
            picks.append((case_run, sets))
        return picks

    def _start_rerun(
        self,
        source: PlanRun,
        re_run_type: str,
        picks: list[tuple[CaseRun, list[str]]],
        moment: datetime,
    ) -> PlanRun:
        cases = []
        for case_run, sets in picks:
            before = {i.set_name: i.attempt for i in case_run.iterations}
            attempts = {name: before.get(name, case_run.attempt) + 1 for name in sets}
            cases.append(
                self._case_run(case_run.case, case_run.machine, case_run.attempt + 1, attempts)
            )
        return self._add(
            PlanRun(
                id=self._new_run_id(),
                plan=source.plan,
                created_at=moment,
                cases=cases,
                triggered_type="API",
                executed_by=source.executed_by,
                build_no=source.build_no,
                environment_id=source.environment_id,
                re_run_parent_id=source.id,
                re_run_type=re_run_type,
            )
        )

    def _post_rerun(self, plan: Plan, body: dict[str, Any], now: datetime) -> PlanRun:
        source = self._run(str(self._int(body.get("executionResultId"), "executionResultId")))
        if source.plan is not plan:
            raise self._fail(
                400, f"Execution result {source.id} does not belong to test plan {plan.id}"
            )
        re_run_type = body.get("reRunType")
        if re_run_type not in RE_RUN_TYPES:
            raise self._fail(
                400,
                f"reRunType must be one of {', '.join(RE_RUN_TYPES)}; got {re_run_type!r}",
            )
        requests = self._case_requests(source, body.get("testCaseResultRequests"), re_run_type)
        self._settle(source, now)
        picks = self._select(source, re_run_type, requests)
        if not picks:
            raise self._fail(
                400, f"There are no test cases to rerun for {re_run_type} in result {source.id}"
            )
        return self._start_rerun(source, re_run_type, picks, now)

    def _case_requests(self, source: PlanRun, value: Any, re_run_type: str) -> list[dict[str, Any]]:
        if value is None:
            value = []
        if not isinstance(value, list):
            raise self._fail(400, "testCaseResultRequests must be a list")
        if re_run_type == "USER_PICKED" and not value:
            raise self._fail(400, "USER_PICKED needs at least one entry in testCaseResultRequests")
        by_id = {case_run.id: case_run for case_run in source.cases}
        requests: list[dict[str, Any]] = []
        seen: set[int] = set()
        for item in value:
            if not isinstance(item, dict):
                raise self._fail(400, "each testCaseResultRequests entry must be an object")
            result_id = self._int(item.get("id"), "testCaseResultRequests[].id")
            kind = item.get("iterationReRunType")
            if kind is not None and kind not in ITERATION_RE_RUN_TYPES:
                raise self._fail(
                    400,
                    f"iterationReRunType must be one of {', '.join(ITERATION_RE_RUN_TYPES)}; "
                    f"got {kind!r}",
                )
            ids = item.get("iterationResultIds")
            if ids is not None and not isinstance(ids, list):
                raise self._fail(400, "iterationResultIds must be a list")
            iteration_ids = [self._int(i, "iterationResultIds[]") for i in ids or []]
            case_run = by_id.get(result_id)
            if case_run is None:
                raise self._fail(
                    400, f"Test case result {result_id} is not part of execution result {source.id}"
                )
            if kind == "USER_PICKED":
                if not iteration_ids:
                    raise self._fail(400, "iterationReRunType USER_PICKED needs iterationResultIds")
                known = {iteration.id for iteration in case_run.iterations}
                strangers = [i for i in iteration_ids if i not in known]
                if strangers:
                    raise self._fail(
                        400,
                        f"Iteration results {strangers} are not part of test case result "
                        f"{result_id}",
                    )
            if result_id in seen:
                continue
            seen.add(result_id)
            requests.append(
                {"id": result_id, "iterationReRunType": kind, "iterationResultIds": iteration_ids}
            )
        return requests
