"""The emulator's own view of its estate: `/_emulator/state` and the banner `emulate` prints."""

from __future__ import annotations

from collections import Counter
from typing import Any

from runs.orchestrators.emulation import (
    EmulatorApp,
)


class ConductorOverview(EmulatorApp):
    """State and banner; part of ConductorEmulator."""

    def state(self) -> dict[str, Any]:
        workflows = []
        counts: Counter[str] = Counter()
        for workflow_id in self._order:
            execution = self.executions[workflow_id]
            wf = execution.wf
            counts[wf["status"]] += 1
            tasks = sorted(execution.tasks, key=lambda t: t["seq"])
            workflows.append(
                {
                    "workflowId": workflow_id,
                    "workflowName": wf["workflowName"],
                    "workflowVersion": wf["workflowVersion"],
                    "status": wf["status"],
                    "startTime": wf["startTime"],
                    "taskIds": [t["taskId"] for t in tasks],
                    "tasks": [
                        {
                            "taskId": t["taskId"],
                            "referenceTaskName": t["referenceTaskName"],
                            "status": t["status"],
                            "seq": t["seq"],
                            "workerId": t.get("workerId"),
                        }
                        for t in tasks
                    ],
                }
            )
        return {
            "orkes": self.orkes,
            "tokenAuth": self._key is not None,
            "definitions": [
                {
                    "name": d.name,
                    "version": d.version,
                    "tasks": [
                        {
                            "name": t.name,
                            "taskReferenceName": t.ref,
                            "behaviour": t.behaviour,
                            "badWorker": t.bad_worker,
                        }
                        for t in d.tasks
                    ],
                }
                for d in self.definitions
            ],
            "workers": list(self.workers),
            "workflows": workflows,
            "counts": {
                "definitions": len(self.latest_definitions()),
                "workflows": len(workflows),
                "tasks": sum(len(w["tasks"]) for w in workflows),
                "byStatus": dict(sorted(counts.items())),
            },
        }

    def banner(self) -> list[str]:
        lines = ["workflow definitions:"]
        for definition in self.latest_definitions():
            lines.append(
                f"  {definition.name} (version {definition.version}, {len(definition.tasks)} tasks)"
            )
        if self._key is not None:
            lines.append("Orkes token auth: POST /api/token with keyId and keySecret")
        return lines
