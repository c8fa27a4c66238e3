"""The Testsigma clock at work: plan runs started, their case results settling one after
another (flaky cases, outages), completed or stopped.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from runs.orchestrators import failure_causes
from runs.orchestrators.emulation import (
    EmulatorApp,
)
from runs.orchestrators.testsigma.emulator.model import (
    ABORTED,
    COMPLETED,
    CREATED,
    FAILURE,
    IN_PROGRESS,
    OUTAGE_RATE,
    PRE_FLIGHT,
    QUEUED,
    STATUS_QUEUED,
    STOPPED,
    SUCCESS,
    Case,
    CaseRun,
    IterationRun,
    Machine,
    Plan,
    PlanRun,
)


class TestsigmaSimulation(EmulatorApp):
    """Moves runs along the clock; part of TestsigmaEmulator."""

    def _new_run_id(self) -> int:
        self._next_run_id += 1
        return self._next_run_id - 1

    def _new_case_result_id(self) -> int:
        self._next_case_result_id += 1
        return self._next_case_result_id - 1

    def _new_iteration_id(self) -> int:
        self._next_iteration_id += 1
        return self._next_iteration_id - 1

    def _case_run(
        self, case: Case, machine: Machine, attempt: int, sets: dict[str, int], down: str = ""
    ) -> CaseRun:
        """A case result; `sets` maps each iteration to run onto its attempt number; `down` is
        the service that is down for its run, if any."""
        result_id = self._new_case_result_id()
        iterations = []
        for name, set_attempt in sets.items():
            iteration_id = self._new_iteration_id()
            fails = name == case.bad_set and (
                case.outcome == "iteration" or self._flakes(iteration_id, set_attempt)
            )
            iterations.append(IterationRun(iteration_id, name, set_attempt, fails))
        cause = case.cause
        if case.is_data_driven:
            fails = any(iteration.fails for iteration in iterations)
        elif down and failure_causes.subject_of(case.name).service == down:
            fails, cause = True, "env-outage"
        elif case.outcome == "fail":
            fails = True
        elif case.outcome == "machine":
            fails = machine.id == case.bad_machine_id
        elif case.outcome == "flaky":
            fails = self._flakes(result_id, attempt)
        else:
            fails = False
        return CaseRun(
            id=result_id,
            case=case,
            machine=machine,
            attempt=attempt,
            fails=fails,
            iterations=iterations,
            cause=cause if fails else "",
        )

    def _flakes(self, result_id: int, attempt: int) -> bool:
        """A flaky case fails on most first attempts (decided by its result id) and passes
        whenever it is run again."""
        return attempt == 1 and random.Random(f"{self.seed}:{result_id}").random() < 0.6

    def _add(self, run: PlanRun) -> PlanRun:
        self.runs[run.id] = run
        self._active[run.id] = run
        run.plan.runs.append(run.id)
        return run

    def _start(
        self,
        plan: Plan,
        moment: datetime,
        *,
        triggered_type: str,
        executed_by: str | None = None,
        build_no: str | None = None,
        environment_id: int | None = None,
        runtime_data: dict[str, Any] | None = None,
    ) -> PlanRun:
        """A fresh run of every case; suites rotate over the plan's machines run by run."""
        machines = plan.machines
        run_id = self._new_run_id()
        down = self._down(plan, run_id)
        cases = [
            self._case_run(
                case,
                machines[(case.suite_index + plan.fresh_runs) % len(machines)],
                1,
                dict.fromkeys(case.sets, 1),
                down,
            )
            for case in plan.cases
        ]
        plan.fresh_runs += 1
        return self._add(
            PlanRun(
                id=run_id,
                plan=plan,
                created_at=moment,
                cases=cases,
                triggered_type=triggered_type,
                executed_by=executed_by,
                scheduled_id=plan.schedule_id if triggered_type == "SCHEDULED" else None,
                build_no=build_no,
                environment_id=environment_id,
                runtime_data=runtime_data,
            )
        )

    def _down(self, plan: Plan, run_id: int) -> str:
        """The service that is down for a whole run, now and then ("": none)."""
        draw = random.Random(f"{self.seed}:outage:{run_id}")
        if draw.random() >= OUTAGE_RATE:
            return ""
        return draw.choice(sorted({failure_causes.subject_of(c.name).service for c in plan.cases}))

    def failure(self, case_run: CaseRun) -> failure_causes.Failure:
        """What went wrong in a failed case result: its cause, with this occurrence's details."""
        return failure_causes.failure(
            case_run.cause or "assertion-value",
            case_run.case.name,
            random.Random(f"{self.seed}:failure:{case_run.id}"),
            agent=case_run.machine.title,
            browser=case_run.machine.title.split(" ")[0],
        )

    def advance(self, now: datetime) -> None:
        if self.autorun > 0:
            for plan in self.plans.values():
                while plan.next_auto is not None and plan.next_auto <= now:
                    self._start(plan, plan.next_auto, triggered_type="SCHEDULED")
                    self.mark_changed()
                    plan.autos += 1
                    step = self.autorun * self._jitter(plan, plan.autos)
                    plan.next_auto += timedelta(seconds=step)
        for run in list(self._active.values()):
            self._settle(run, now)

    def _settle(self, run: PlanRun, now: datetime) -> None:
        """Move a run to where the clock says it is: a short queue, then one case per `pace`."""
        if run.done:
            self._active.pop(run.id, None)
            return
        pace = timedelta(seconds=self.pace)
        elapsed = now - run.created_at
        begins = run.created_at + pace
        for index, case_run in enumerate(run.cases):
            start = begins + pace * index
            end = start + pace
            if now < start:
                case_run.status = CREATED if elapsed < pace else STATUS_QUEUED
                continue
            case_run.start = start
            if now < end:
                case_run.status = IN_PROGRESS
                count = len(case_run.iterations)
                for number, iteration in enumerate(case_run.iterations, start=1):
                    if now >= start + pace * (number / count):
                        iteration.result = FAILURE if iteration.fails else SUCCESS
                continue
            for iteration in case_run.iterations:
                iteration.result = FAILURE if iteration.fails else SUCCESS
            case_run.status = COMPLETED
            case_run.end = end
            case_run.result = FAILURE if case_run.fails else SUCCESS
            case_run.message = "Test case passed"
            if case_run.fails:
                found = self.failure(case_run)
                case_run.message = found.message
                case_run.log = [f"{line.level.upper()}: {line.text}" for line in found.log]
        if elapsed < pace / 3:
            run.status = CREATED
        elif elapsed < pace * 2 / 3:
            run.status = STATUS_QUEUED
        elif elapsed < pace:
            run.status = PRE_FLIGHT
        elif now < begins + pace * len(run.cases):
            run.status = IN_PROGRESS
        else:
            self._complete(run, begins + pace * len(run.cases))

    def _complete(self, run: PlanRun, moment: datetime) -> None:
        words = [case_run.result for case_run in run.cases]
        failed = sum(word == FAILURE for word in words)
        if STOPPED in words:
            run.result = STOPPED
            run.message = "Test plan execution was stopped"
        elif failed:
            run.result = FAILURE
            run.message = f"{failed} of {len(words)} test cases failed"
        elif ABORTED in words:
            run.result = ABORTED
            run.message = "Test plan execution was aborted"
        else:
            run.result = SUCCESS
            run.message = "All test cases passed"
        run.status = COMPLETED
        run.end_time = moment
        run.done = True
        self._active.pop(run.id, None)

    def _stop(self, run: PlanRun, now: datetime) -> None:
        self._settle(run, now)
        if run.done:
            return
        for case_run in run.cases:
            if case_run.status == COMPLETED:
                continue
            case_run.status = COMPLETED
            case_run.result = STOPPED
            case_run.message = "Stopped by the user"
            case_run.end = now if case_run.start else None
            for iteration in case_run.iterations:
                if iteration.result == QUEUED:
                    iteration.result = STOPPED
        self._complete(run, now)
