"""Finding executions of a known kind in a ConductorEmulator's estate, for the tests."""

from __future__ import annotations

from runs.orchestrators.conductor.emulator import ConductorEmulator, Execution


def failed_at(app: ConductorEmulator, behaviour: str) -> Execution:
    """A FAILED execution whose failing task behaves as `behaviour` (flaky, worker, broken)."""
    for execution in app.executions.values():
        if execution.wf["status"] != "FAILED":
            continue
        ref = execution.wf["failedReferenceTaskNames"][0]
        plan = next(plan for plan in execution.plan if plan.ref == ref)
        if plan.behaviour == behaviour:
            return execution
    raise AssertionError(f"no execution failed at a {behaviour} task")


def completed(app: ConductorEmulator) -> Execution:
    return next(e for e in app.executions.values() if e.wf["status"] == "COMPLETED")


def failed_task(execution: Execution) -> dict:
    return next(t for t in execution.tasks if t["taskId"] == execution.wf["failedTaskId"])


def run_to_end(app: ConductorEmulator, execution: Execution) -> None:
    """Step the clock until the execution is no longer running."""
    app.clock.step((len(execution.plan) + 2) * app.pace)
    app.advance(app.now())
