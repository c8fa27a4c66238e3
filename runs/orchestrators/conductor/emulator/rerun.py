"""What changes a finished or running execution: rerun (conductor-oss and Orkes answers),
retry, restart, terminate, pause and resume.
"""

from __future__ import annotations

from typing import Any

from runs.orchestrators.conductor.emulator.model import (
    ONGOING,
    UNSUCCESSFUL,
    Execution,
    TaskPlan,
    reopen,
    to_ms,
)
from runs.orchestrators.emulation import (
    EmulatorApp,
    Request,
    Response,
)


class ConductorReruns(EmulatorApp):
    """Rerun, retry, restart and the other workflow actions; part of ConductorEmulator."""

    # POST /api/workflow/{id}/rerun
    def rerun(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        body = self._rerun_body(request)
        wf = execution.wf
        if wf["status"] in ONGOING and not self.orkes:
            raise self._error(
                409, f"Workflow: {workflow_id} is not in terminal state, unable to rerun."
            )
        now_ms = to_ms(self.now())
        target = None
        if task_id := body.get("reRunFromTaskId"):
            target = next((t for t in execution.tasks if t["taskId"] == task_id), None)
            if target is None:
                raise self._error(400, f"Task {task_id} not found")
        if wf["status"] in ONGOING:  # Orkes reruns ongoing workflows: stop what runs first
            for task in execution.live():
                if task["status"] in ("SCHEDULED", "IN_PROGRESS"):
                    task.update(status="CANCELED", endTime=now_ms, updateTime=now_ms)
        reopen(wf, now_ms)
        execution.outage = ""  # whoever reruns it, the outage is over by then
        self._active.add(workflow_id)
        task_input = body.get("taskInput")
        if target is None:
            self._rerun_from_start(execution, body, now_ms)
        elif self.orkes:
            self._rerun_task_as_new(execution, target, task_input, now_ms)
        else:
            self._rerun_task_in_place(execution, target, task_input, now_ms)
        execution.resume_ms = now_ms
        return Response(200, workflow_id, {"Content-Type": "text/plain"})

    def _rerun_body(self, request: Request) -> dict[str, Any]:
        """The RerunWorkflowRequest, its fields checked for type."""
        body = self._body(request)
        if not isinstance(body, dict):
            raise self._error(400, "Invalid request body: expected a RerunWorkflowRequest")
        for name, kind in (
            ("workflowInput", dict),
            ("taskInput", dict),
            ("correlationId", str),
            ("reRunFromTaskId", str),
        ):
            value = body.get(name)
            if value is not None and not isinstance(value, kind):
                raise self._error(400, f"Invalid value for {name}")
        return body

    def _rerun_from_start(self, execution: Execution, body: dict[str, Any], now_ms: int) -> None:
        """Every task again; Orkes keeps the earlier ones as CANCELED history."""
        if self.orkes:
            for task in execution.tasks:
                if task["status"] != "CANCELED":
                    task.update(status="CANCELED", updateTime=now_ms)
            execution.barrier = execution.max_seq()
        else:
            execution.tasks.clear()
            execution.barrier = 0
        wf = execution.wf
        if body.get("correlationId") is not None:
            wf["correlationId"] = body["correlationId"]
        if body.get("workflowInput") is not None:
            wf["input"] = body["workflowInput"]

    def _rerun_task_as_new(
        self, execution: Execution, target: dict[str, Any], task_input: Any, now_ms: int
    ) -> None:
        """Orkes keeps the earlier attempts, CANCELED, and runs the task again as a new task."""
        for task in execution.tasks:
            if task["seq"] >= target["seq"] and task["status"] != "CANCELED":
                task.update(status="CANCELED", updateTime=now_ms)
        execution.barrier = execution.max_seq()
        fresh = self._schedule(
            execution,
            self._plan_for(execution, target["referenceTaskName"])
            or TaskPlan(target["taskDefName"], target["referenceTaskName"]),
            now_ms,
        )
        fresh.update(
            inputData=task_input if task_input is not None else dict(target["inputData"]),
            retryCount=target["retryCount"],
        )

    def _rerun_task_in_place(
        self, execution: Execution, target: dict[str, Any], task_input: Any, now_ms: int
    ) -> None:
        """conductor-oss drops the tasks after the target and schedules the target again."""
        execution.tasks[:] = [t for t in execution.tasks if t["seq"] <= target["seq"]]
        target.update(
            status="SCHEDULED",
            scheduledTime=now_ms,
            startTime=0,
            endTime=0,
            updateTime=now_ms,
            outputData={},
            retried=False,
            executed=False,
            reasonForIncompletion=None,
        )
        if task_input is not None:
            target["inputData"] = task_input

    # POST /api/workflow/{id}/retry?resumeSubworkflowTasks=false
    def retry(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        wf = execution.wf
        if wf["status"] in ONGOING:
            raise self._error(404, f"Workflow is still running.  status={wf['status']}")
        live = execution.live()
        if not live:
            raise self._error(409, "Workflow has not started yet")
        retriable: dict[str, dict[str, Any]] = {}
        for task in sorted(live, key=lambda t: t["seq"]):
            if task["status"] in UNSUCCESSFUL:
                retriable[task["referenceTaskName"]] = task
            else:
                retriable.pop(task["referenceTaskName"], None)
        if not retriable:
            raise self._error(
                409,
                "There are no retryable tasks! Use restart if you want to attempt entire "
                "workflow execution again.",
            )
        now_ms = to_ms(self.now())
        reopen(wf, now_ms, lastRetriedTime=now_ms)
        execution.outage = ""
        for old in sorted(retriable.values(), key=lambda t: t["seq"]):
            old["retried"] = True
            copy = dict(old)
            copy.update(
                taskId=self._task_id(execution),
                status="SCHEDULED",
                retryCount=old["retryCount"] + 1,
                retriedTaskId=old["taskId"],
                retried=False,
                executed=False,
                pollCount=0,
                seq=execution.max_seq() + 1,
                inputData=dict(old["inputData"]),
                outputData={},
                reasonForIncompletion=None,
                workerId=None,
                scheduledTime=now_ms,
                startTime=0,
                endTime=0,
                updateTime=now_ms,
            )
            execution.tasks.append(copy)
        execution.resume_ms = now_ms
        self._active.add(workflow_id)
        return Response(204)

    # POST /api/workflow/{id}/restart?useLatestDefinitions=false
    def restart(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        wf = execution.wf
        if wf["status"] in ONGOING:
            raise self._error(
                409, f"Workflow {workflow_id} is not in terminal state, status={wf['status']}"
            )
        if request.query.get("useLatestDefinitions", "false").lower() == "true":
            latest = self.definition(wf["workflowName"])
            execution.plan = latest.tasks
            wf["workflowVersion"] = latest.version
        now_ms = to_ms(self.now())
        execution.tasks.clear()
        execution.barrier = 0
        reopen(wf, now_ms, createTime=now_ms, lastRetriedTime=0, output={})
        execution.outage = ""
        execution.resume_ms = now_ms
        self._active.add(workflow_id)
        return Response(204)

    # DELETE /api/workflow/{id}?reason=
    def terminate(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        if execution.wf["status"] == "COMPLETED":
            raise self._error(409, "Cannot terminate a COMPLETED workflow.")
        self._terminate(execution, request.query.get("reason", ""), to_ms(self.now()))
        self._active.discard(workflow_id)
        return Response(200)

    # PUT /api/workflow/{id}/pause
    def pause(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        status = execution.wf["status"]
        if status != "RUNNING" and status != "PAUSED":
            raise self._error(409, f"Workflow: {workflow_id} has ended, status cannot be updated.")
        execution.wf.update(status="PAUSED", updateTime=to_ms(self.now()))
        return Response(200)

    # PUT /api/workflow/{id}/resume
    def resume(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        if execution.wf["status"] != "PAUSED":
            raise self._error(409, f"The workflow {workflow_id} is not PAUSED so cannot resume.")
        now_ms = to_ms(self.now())
        execution.wf.update(status="RUNNING", updateTime=now_ms)
        execution.resume_ms = max(execution.resume_ms, now_ms)
        return Response(200)
