"""How Testsigma answers: the JSON of a plan run, its execution and its case results."""

from __future__ import annotations

from typing import Any

from runs.orchestrators.emulation import (
    EmulatorApp,
    epoch_ms,
)
from runs.orchestrators.testsigma.emulator.model import (
    ABORTED,
    FAILURE,
    IN_PROGRESS,
    NOT_EXECUTED,
    PROSE,
    QUEUED,
    STOPPED,
    SUCCESS,
    CaseRun,
    Plan,
    PlanRun,
)


class TestsigmaShapes(EmulatorApp):
    """Response bodies; part of TestsigmaEmulator."""

    def _word(self, result: str) -> str:
        return PROSE.get(result, result) if self.prose_results else result

    def _execution(self, plan: Plan) -> dict[str, Any]:
        return {
            "id": plan.id,
            "name": plan.name,
            "description": plan.description,
            "reRunType": None,
            "executionType": "CROSS_BROWSER",
            "lastRunId": plan.runs[-1] if plan.runs else None,
            "matchBrowserVersion": False,
            "elementTimeOut": 30,
            "pageTimeOut": 30,
            "screenshot": "ALL_TYPES",
        }

    def _render(self, run: PlanRun, *, with_execution: bool = True) -> dict[str, Any]:
        words = [case_run.result for case_run in run.cases]
        running = sum(case_run.status == IN_PROGRESS for case_run in run.cases)
        queued = sum(
            case_run.result == QUEUED and case_run.status != IN_PROGRESS for case_run in run.cases
        )
        end = run.end_time
        duration = ((end or self.now()) - run.created_at).total_seconds() * 1000
        return {
            "id": run.id,
            "executionId": run.plan.id,
            "execution": self._execution(run.plan) if with_execution else None,
            "startTime": epoch_ms(run.created_at),
            "endTime": epoch_ms(end),
            "duration": int(duration),
            "result": self._word(run.result),
            "status": run.status,
            "message": run.message,
            "executedBy": run.executed_by,
            "buildNo": run.build_no,
            "environmentId": run.environment_id,
            "runtimeData": run.runtime_data,
            "totalCount": len(run.cases),
            "failedCount": words.count(FAILURE),
            "passedCount": words.count(SUCCESS),
            "abortedCount": words.count(ABORTED),
            "stoppedCount": words.count(STOPPED),
            "notExecutedCount": words.count(NOT_EXECUTED),
            "preRequisiteFailedCount": 0,
            "queuedCount": queued,
            "runningCount": running,
            "totalRunningCount": running,
            "totalQueuedCount": queued,
            "reRunParentId": run.re_run_parent_id,
            "reRunType": run.re_run_type,
            "triggeredType": run.triggered_type,
            "executionDetails": {
                "page_timeout": 30,
                "element_timeout": 30,
                "recovery_action": "Run_Next_Testcase",
                "on_aborted_action": "Reuse_Session",
            },
            "consolidatedResult": self._word(run.result),
            "consolidatedStatus": run.status,
            "resultType": "ORIGINAL",
            "consolidatedDuration": int(duration),
            "isReRunEnabled": True,
            "runTestCasesInParallel": False,
            "runTestSuitesInParallel": False,
            "scheduledId": run.scheduled_id,
        }

    def _render_case(self, case_run: CaseRun) -> dict[str, Any]:
        case = case_run.case
        duration = (
            int((case_run.end - case_run.start).total_seconds() * 1000)
            if case_run.start and case_run.end
            else None
        )
        return {
            "testCaseId": case.id,
            "testCaseName": case.name,
            "testCaseResultId": case_run.id,
            "result": self._word(case_run.result),
            "status": case_run.status,
            "message": case_run.message,
            "startTime": epoch_ms(case_run.start),
            "endTime": epoch_ms(case_run.end),
            "duration": duration,
            "isDataDrivenCase": case.is_data_driven,
            "iterationResults": [
                {
                    "iterationResultId": iteration.id,
                    "setName": iteration.set_name,
                    "result": self._word(iteration.result),
                }
                for iteration in case_run.iterations
            ],
            "testSuiteId": case.suite_id,
            "testSuiteName": case.suite_name,
            "machineId": case_run.machine.id,
            "machineTitle": case_run.machine.title,
        }
