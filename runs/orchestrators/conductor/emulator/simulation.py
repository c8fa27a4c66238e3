"""The Conductor clock at work: executions created, their tasks scheduled, polled and
finished one after another, failures (flaky, worker-bound, outages, timeouts), schedules
starting executions on their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runs.orchestrators import failure_causes
from runs.orchestrators.conductor.emulator.model import (
    FLAKY_RATE,
    ONGOING,
    OUTAGE_RATE,
    SUCCESSFUL,
    TIMEOUT_MESSAGE,
    TIMEOUT_RATE,
    Definition,
    Execution,
    TaskPlan,
    clock_ms,
    to_ms,
)
from runs.orchestrators.emulation import (
    EmulatorApp,
)


class ConductorSimulation(EmulatorApp):
    """Moves executions along the clock; part of ConductorEmulator."""

    def _create(
        self,
        definition: Definition,
        *,
        at_ms: int,
        workflow_id: str,
        workflow_input: dict[str, Any],
        correlation_id: str | None,
        created_by: str,
        priority: int = 0,
        task_to_domain: dict[str, Any] | None = None,
    ) -> Execution:
        wf: dict[str, Any] = {
            "workflowId": workflow_id,
            "workflowName": definition.name,
            "workflowVersion": definition.version,
            "status": "RUNNING",
            "input": workflow_input,
            "output": {},
            "correlationId": correlation_id,
            "reasonForIncompletion": None,
            "failedReferenceTaskNames": [],
            "failedTaskNames": [],
            "failedTaskId": None,
            "createTime": at_ms,
            "updateTime": at_ms,
            "startTime": at_ms,
            "endTime": 0,
            "lastRetriedTime": 0,
            "parentWorkflowId": None,
            "reRunFromWorkflowId": None,
            "priority": priority,
            "variables": {},
            "taskToDomain": task_to_domain or {},
            "createdBy": created_by or None,
            "ownerApp": "",
        }
        execution = Execution(wf=wf, tasks=[], plan=definition.tasks, resume_ms=at_ms)
        if self._draw("timeout", workflow_id).random() < TIMEOUT_RATE:
            execution.timeout_ref = (
                self._draw("timeout-ref", workflow_id).choice(definition.tasks).ref
            )
        outage = self._draw("outage", workflow_id)
        if outage.random() < OUTAGE_RATE:
            services = sorted({failure_causes.subject_of(t.name).service for t in definition.tasks})
            execution.outage = outage.choice(services)
        self.executions[workflow_id] = execution
        self._order.append(workflow_id)
        self._active.add(workflow_id)
        return execution

    def _task_id(self, execution: Execution) -> str:
        execution.created += 1
        return self._uuid(execution.id, "task", execution.created)

    def _schedule(self, execution: Execution, plan: TaskPlan, at_ms: int) -> dict[str, Any]:
        wf = execution.wf
        task: dict[str, Any] = {
            "taskId": self._task_id(execution),
            "taskType": "SIMPLE",
            "taskDefName": plan.name,
            "referenceTaskName": plan.ref,
            "status": "SCHEDULED",
            "inputData": {"env": wf["input"].get("env"), "case": plan.name},
            "outputData": {},
            "seq": execution.max_seq() + 1,
            "retryCount": 0,
            "retried": False,
            "retriedTaskId": None,
            "executed": False,
            "pollCount": 0,
            "scheduledTime": at_ms,
            "startTime": 0,
            "endTime": 0,
            "updateTime": at_ms,
            "reasonForIncompletion": None,
            "workerId": None,
            "domain": None,
            "iteration": 0,
            "subWorkflowId": None,
            "correlationId": wf.get("correlationId"),
            "workflowInstanceId": wf["workflowId"],
            "workflowType": wf["workflowName"],
            "workflowPriority": wf.get("priority", 0),
            "startDelayInSeconds": 0,
            "callbackAfterSeconds": 0,
            "responseTimeoutSeconds": 600,
        }
        execution.tasks.append(task)
        wf["updateTime"] = at_ms
        return task

    def _plan_for(self, execution: Execution, ref: str) -> TaskPlan | None:
        return next((plan for plan in execution.plan if plan.ref == ref), None)

    def _start_task(self, execution: Execution, task: dict[str, Any], at_ms: int) -> None:
        ref = task["referenceTaskName"]
        execution.runs[ref] += 1
        attempt = execution.runs[ref]
        task.update(
            status="IN_PROGRESS",
            startTime=at_ms,
            updateTime=at_ms,
            pollCount=task["pollCount"] + 1,
            workerId=self._draw("worker", execution.id, ref, attempt).choice(self.workers),
        )

    def _outcome(self, execution: Execution, task: dict[str, Any]) -> tuple[str, str]:
        """(status, cause) of the attempt a worker just finished; TIMEOUT: Conductor's own."""
        ref = task["referenceTaskName"]
        attempt = execution.runs[ref]
        plan = self._plan_for(execution, ref)
        if ref == execution.timeout_ref and attempt == 1:
            return "TIMED_OUT", "TIMEOUT"
        if plan is None:
            return "COMPLETED", ""
        if plan.behaviour == "broken":
            return "FAILED", plan.cause
        if plan.behaviour == "worker":
            failed = task["workerId"] == plan.bad_worker
            return ("FAILED", plan.cause) if failed else ("COMPLETED", "")
        if execution.outage and failure_causes.subject_of(plan.name).service == execution.outage:
            return "FAILED", "env-outage"
        # flaky: only ever the first attempt in an execution, and not every time
        flaky = plan.behaviour == "flaky" and attempt == 1
        if flaky and self._draw("flaky", execution.id, ref).random() < FLAKY_RATE:
            return "FAILED", plan.cause
        return "COMPLETED", ""

    def failure(self, task: dict[str, Any], cause: str) -> failure_causes.Failure:
        """This occurrence of a task's failure cause: its details drawn from the task id."""
        return failure_causes.failure(
            cause or "assertion-value",
            task["taskDefName"],
            self._draw("failure", task["taskId"]),
            env=str(task["inputData"].get("env") or "staging"),
            agent=task.get("workerId") or "",
        )

    def _finish_task(self, execution: Execution, task: dict[str, Any], at_ms: int) -> None:
        status, cause = self._outcome(execution, task)
        task.update(status=status, endTime=at_ms, updateTime=at_ms, executed=True)
        execution.wf["updateTime"] = at_ms
        if status == "COMPLETED":
            task["outputData"] = {"passed": True, "assertions": 3 + len(task["taskDefName"]) % 7}
            return
        if status == "TIMED_OUT":  # the server gave up on the worker: no output, no log
            task["reasonForIncompletion"] = TIMEOUT_MESSAGE
            return
        found = self.failure(task, cause)
        span = max(1, at_ms - task["startTime"])
        log = [
            f"{clock_ms(task['startTime'] + span * (n + 1) // len(found.log))} "
            f"{line.level.upper():<7} {line.text}"
            for n, line in enumerate(found.log)
        ]
        task["reasonForIncompletion"] = found.message
        # Workers write their own output; these log lines are what Runboard shows as excerpt.
        task["outputData"] = {"passed": False, "error": found.message, "log": log}

    def _progress(self, execution: Execution, now_ms: int) -> None:
        """Move one execution along to `now_ms`; every step happens at its own time."""
        wf = execution.wf
        while wf["status"] in ONGOING:
            live = execution.live()
            last = max(live, key=lambda task: task["seq"]) if live else None
            if last is None or last["status"] in SUCCESSFUL:
                if wf["status"] == "PAUSED":
                    return
                refs = [plan.ref for plan in execution.plan]
                if last is None:
                    index, at = 0, execution.resume_ms
                else:
                    ref = last["referenceTaskName"]
                    index = refs.index(ref) + 1 if ref in refs else len(refs)
                    at = max(last["endTime"], execution.resume_ms)
                if at > now_ms:
                    return
                if index >= len(refs):
                    self._complete(execution, at)
                    return
                self._schedule(execution, execution.plan[index], at)
            elif last["status"] == "SCHEDULED":
                at = last["scheduledTime"] + self._poll_ms
                if at > now_ms:
                    return
                self._start_task(execution, last, at)
            elif last["status"] == "IN_PROGRESS":
                at = last["startTime"] + self._work_ms
                if at > now_ms:
                    return
                self._finish_task(execution, last, at)
            else:
                self._fail(execution, last)
                return

    def _complete(self, execution: Execution, at_ms: int) -> None:
        wf = execution.wf
        passed = sum(1 for task in execution.live() if task["status"] in SUCCESSFUL)
        wf.update(
            status="COMPLETED",
            endTime=at_ms,
            updateTime=at_ms,
            output={"result": "passed", "casesRun": passed},
        )

    def _fail(self, execution: Execution, task: dict[str, Any]) -> None:
        wf = execution.wf
        at = task["endTime"] or task["updateTime"]
        status = "TIMED_OUT" if task["status"] == "TIMED_OUT" else "FAILED"
        wf.update(
            status=status,
            endTime=at,
            updateTime=at,
            reasonForIncompletion=(
                f"Task {task['taskId']} failed with status: {task['status']} and reason: "
                f"'{task['reasonForIncompletion'] or ''}'"
            ),
            failedReferenceTaskNames=[task["referenceTaskName"]],
            failedTaskNames=[task["taskDefName"]],
            failedTaskId=task["taskId"],
            output={"result": "failed", "failedCase": task["referenceTaskName"]},
        )

    def _terminate(self, execution: Execution, reason: str, at_ms: int) -> None:
        for task in execution.tasks:
            if task["status"] in ("SCHEDULED", "IN_PROGRESS"):
                task.update(status="CANCELED", endTime=at_ms, updateTime=at_ms)
        execution.wf.update(
            status="TERMINATED", endTime=at_ms, updateTime=at_ms, reasonForIncompletion=reason
        )

    def advance(self, now: datetime) -> None:
        now_ms = to_ms(now)
        if self.autorun > 0:
            self._autorun(now_ms)
        for workflow_id in sorted(self._active):
            execution = self.executions[workflow_id]
            self._progress(execution, now_ms)
            if execution.wf["status"] not in ONGOING:
                self._active.discard(workflow_id)

    def _autorun(self, now_ms: int) -> None:
        for name, due in list(self._auto_next.items()):
            started = 0
            while due <= now_ms:
                number = self._auto_count[name]
                if started < 20:  # after a long clock jump, start a few, not thousands
                    definition = self.definition(name)
                    self._create(
                        definition,
                        at_ms=due,
                        workflow_id=self._uuid("autorun", name, number),
                        workflow_input={"env": "staging", "browser": "chrome", "build": "nightly"},
                        correlation_id=f"scheduled-{name}-{number}",
                        created_by="",
                    )
                    self.mark_changed()
                    started += 1
                self._auto_count[name] += 1
                due += self._auto_gap(name, number + 1)
            self._auto_next[name] = due

    def resumed(self, now: datetime) -> None:
        # The cluster was off while no emulator ran: nothing was started on schedule meanwhile.
        # Executions in flight carry on from where they were and finish as the clock says.
        if self.autorun <= 0:
            return
        now_ms = to_ms(now)
        for definition in self.latest_definitions():
            name = definition.name
            if self._auto_next.get(name, 0) <= now_ms:
                self._auto_next[name] = now_ms + self._auto_gap(name, self._auto_count[name])

    def describe(self) -> str:
        return f"{len(self.executions)} executions, {len(self._active)} running"
