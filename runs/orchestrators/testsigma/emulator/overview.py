"""The emulator's own view of its estate: `/_emulator/state` and the banner `emulate` prints."""

from __future__ import annotations

from typing import Any

from runs.orchestrators.emulation import (
    ConnectHints,
    EmulatorApp,
)
from runs.orchestrators.testsigma.emulator.model import (
    FAILED_WORDS,
    PREFIX,
    SUCCESS,
    PlanRun,
)


class TestsigmaOverview(EmulatorApp):
    """State and banner; part of TestsigmaEmulator."""

    def state(self) -> dict[str, Any]:
        """Plans with their cases' outcomes, machines ("agents"), environments and every run."""
        with self.lock:
            self.advance(self.now())
            return self._state()

    def _state(self) -> dict[str, Any]:
        return {
            "test_plans": [
                {
                    "id": plan.id,
                    "name": plan.name,
                    "machine_ids": [machine.id for machine in plan.machines],
                    "last_run_id": plan.runs[-1] if plan.runs else None,
                    "run_ids": list(plan.runs),
                    "cases": [
                        {
                            "id": case.id,
                            "name": case.name,
                            "suite": case.suite_name,
                            "outcome": case.outcome,
                            "bad_machine_id": case.bad_machine_id,
                            "sets": list(case.sets),
                            "bad_set": case.bad_set,
                        }
                        for case in plan.cases
                    ],
                }
                for plan in self.plans.values()
            ],
            "agents": [{"id": m.id, "title": m.title} for m in self.machines],
            "environments": [{"id": e["id"], "name": e["name"]} for e in self.environments],
            "runs": [self._run_state(run) for run in self.runs.values()],
        }

    def _run_state(self, run: PlanRun) -> dict[str, Any]:
        words = [case_run.result for case_run in run.cases]
        passed = words.count(SUCCESS)
        failed = sum(word in FAILED_WORDS for word in words)
        return {
            "id": run.id,
            "plan_id": run.plan.id,
            "status": run.status,
            "result": run.result,
            "rerun_parent_id": run.re_run_parent_id,
            "rerun_type": run.re_run_type,
            "triggered_type": run.triggered_type,
            "build_no": run.build_no,
            "environment_id": run.environment_id,
            "counts": {
                "total": len(words),
                "passed": passed,
                "failed": failed,
                "other": len(words) - passed - failed,
            },
            "case_results": [
                {
                    "id": case_run.id,
                    "test_case_id": case_run.case.id,
                    "result": case_run.result,
                    "machine_id": case_run.machine.id,
                    "attempt": case_run.attempt,
                    "iterations": [
                        {"id": i.id, "set_name": i.set_name, "result": i.result}
                        for i in case_run.iterations
                    ],
                }
                for case_run in run.cases
            ],
        }

    def connect_hints(self) -> ConnectHints:
        """The client's base URL is under /api/v1; its test plans and, since Testsigma lists
        no runs, the emulated history's run ids."""
        plans = self.state()["test_plans"]
        return ConnectHints(
            base_url=self.served_at + PREFIX,
            credential=self.credential,
            test_plan_ids=tuple(str(plan["id"]) for plan in plans),
            run_ids=tuple(str(run_id) for plan in plans for run_id in plan["run_ids"]),
        )

    def banner(self) -> list[str]:
        base = self.served_at or "http://127.0.0.1:<port>"
        lines = [
            f"Client base URL: {base}{PREFIX}"
            + (" (Authorization: Bearer <credential>)" if self.credential else ""),
            "Test plans (executionId):",
        ]
        for plan in self.plans.values():
            last = plan.runs[-1] if plan.runs else "none"
            lines.append(f"  {plan.id}  {plan.name}  ({len(plan.cases)} cases, last run {last})")
        return lines
