"""The emulator's own view of its estate: `/_emulator/state` and the banner `emulate` prints."""

from __future__ import annotations

from typing import Any

from runs.orchestrators.emulation import (
    EmulatorApp,
)
from runs.orchestrators.leapwork.emulator.model import (
    FAILING,
    Run,
    Schedule,
)


class LeapworkOverview(EmulatorApp):
    """State and banner; part of LeapworkEmulator."""

    def state(self) -> dict[str, Any]:
        with self.lock:
            self.advance(self.now())
            return self._state()

    def _state(self) -> dict[str, Any]:
        runs = [self._run_state(run) for run in self.runs.values()]
        return {
            "schedules": [self._schedule_state(s) for s in self.schedules.values()],
            "agents": [
                {"id": a.id, "title": a.title, "host": a.host, "temporary": a.temporary}
                for a in self.agents.values()
            ],
            "flows": [
                {
                    "id": f.id,
                    "title": f.title,
                    "schedule_id": f.schedule_id,
                    "behaviour": f.behaviour,
                    "fails_on": f.fails_on,
                }
                for f in self.flows.values()
            ],
            "runs": runs,
            "counts": {
                "schedules": sum(1 for s in self.schedules.values() if not s.deleted),
                "agents": len(self.agents),
                "flows": len(self.flows),
                "runs": len(self.runs),
                "items": len(self.items),
                "active_runs": len(self.active),
            },
        }

    def _run_state(self, run: Run) -> dict[str, Any]:
        statuses = [item.status for item in run.items]
        passed = sum(1 for s in statuses if s in {"Passed", "Pass", "Done"})
        failed = sum(1 for s in statuses if s in FAILING)
        return {
            "id": run.id,
            "schedule_id": run.schedule_id,
            "status": run.status,
            "run_type": run.run_type,
            "trigger": run.trigger,
            "created_at": run.created.isoformat(),
            "finished_at": run.finished.isoformat() if run.finished else None,
            "source_run_id": run.source_run_id,
            "variables_sent": run.variables_sent,
            "variables": run.variables,
            "items": [
                {
                    "id": item.id,
                    "flow_id": item.flow_id,
                    "agent_id": item.agent_id,
                    "step_id": item.step_id,
                    "status": item.status,
                }
                for item in run.items
            ],
            "counts": {
                "total": len(statuses),
                "passed": passed,
                "failed": failed,
                "other": len(statuses) - passed - failed,
            },
        }

    def _schedule_state(self, s: Schedule) -> dict[str, Any]:
        return {
            "id": s.id,
            "title": s.title,
            "temporary": s.temporary,
            "delete_after": s.delete_after,
            "deleted": s.deleted,
            "variables": s.variables,
            "agent_ids": s.agent_ids,
            "steps": [
                {
                    "id": step.id,
                    "title": step.title,
                    "index": step.index,
                    "flow_ids": step.flow_ids,
                    "agent_ids": step.agent_ids,
                }
                for step in s.steps
            ],
            "run_ids": [run.id for run in self.runs.values() if run.schedule_id == s.id],
        }

    def banner(self) -> list[str]:
        lines = [f"  AccessKey: {self.credential or '(any)'}"]
        for schedule in self.schedules.values():
            if not schedule.temporary:
                lines.append(f"  schedule {schedule.id}  {schedule.title}")
        for agent in self.agents.values():
            lines.append(f"  agent    {agent.id}  {agent.title}")
        return lines
