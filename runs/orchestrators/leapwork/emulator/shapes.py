"""How Leapwork answers: the JSON of schedules, steps, agents, runs and run items, and
the keyframes (with a failure's log) of a run item.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from runs.orchestrators import failure_causes
from runs.orchestrators.emulation import (
    EmulatorApp,
)
from runs.orchestrators.leapwork.emulator.model import (
    CAUSE_BLOCKS,
    DOTNET_EPOCH,
    FAILING,
    LEVELS,
    TERMINAL,
    VARIABLE_DEFAULTS,
    Agent,
    Item,
    Run,
    Schedule,
    Step,
    iso7,
    timespan,
)


class LeapworkShapes(EmulatorApp):
    """Response bodies; part of LeapworkEmulator."""

    def _date(self, moment: datetime) -> dict[str, Any]:
        local = moment.astimezone(self.tz)
        offset = local.strftime("%z")
        naive = local.replace(tzinfo=None)
        ticks = (naive - DOTNET_EPOCH) // timedelta(microseconds=1) * 10
        return {
            "Value": f"{iso7(naive)}{offset[:3]}:{offset[3:]}",
            "LocalDateTime": iso7(naive),
            "UtcDateTime": f"{iso7(moment.astimezone(UTC).replace(tzinfo=None))}Z",
            "Ticks": ticks,
        }

    def _schedule_body(self, schedule: Schedule) -> dict[str, Any]:
        return {
            "Id": schedule.id,
            "Title": schedule.title,
            "IsEnabled": schedule.is_enabled,
            "IsScheduled": schedule.is_scheduled and not schedule.temporary,
            "Type": "ScheduleInfo",
            "DateCreation": self._date(schedule.created),
            "DateModify": self._date(schedule.created),
            "RunListSteps": [self._step_body(schedule, step) for step in schedule.steps],
        }

    def _step_body(self, schedule: Schedule, step: Step) -> dict[str, Any]:
        return {
            "Id": step.entry_id,
            "RunListStepId": step.id,
            "ScheduleInfoId": schedule.id,
            "StepIndex": step.index,
            "StepName": step.title,
            "StepStartCondition": "Always",
            "EnvironmentParallelization": "RunAllFlows",
        }

    def _agent_body(self, agent: Agent) -> dict[str, Any]:
        used = [
            {"ScheduleId": s.id, "ScheduleTitle": s.title}
            for s in self.schedules.values()
            if not s.deleted and agent.id in s.agent_ids
        ]
        return {
            "Id": agent.id,
            "Title": agent.title,
            "Type": "Environment",
            "HostName": agent.host,
            "Port": 6777,
            "ConnectionType": "RemoteAgent",
            "UsedBySchedules": used,
            "DateCreation": self._date(agent.created),
            "DateModify": self._date(agent.created),
        }

    def _run_body(self, run: Run) -> dict[str, Any]:
        schedule = self.schedules[run.schedule_id]
        now = self.now()
        ended = run.finished if run.status == "Finished" and run.finished else max(now, run.created)
        elapsed = ended - run.created
        passed = sum(1 for item in run.items if item.status in {"Passed", "Pass", "Done"})
        failed = sum(1 for item in run.items if item.status in FAILING)
        return {
            "RunId": run.id,
            "Schedule": {"ScheduleId": schedule.id, "ScheduleTitle": schedule.title},
            "Status": run.status,
            "Failed": failed,
            "Passed": passed,
            "Total": len(run.items),
            "ExecutionTotalTime": timespan(elapsed),
            "ExecutionMilliseconds": int(elapsed.total_seconds() * 1000),
            "CreatedAt": self._date(run.created),
            "RunType": run.run_type,
        }

    def _item_body(self, item: Item) -> dict[str, Any]:
        run = self.runs[item.run_id]
        flow = self.flows[item.flow_id]
        agent = self.agents[item.agent_id]
        now = self.now()
        if item.status == "NoStatus":
            elapsed, created = timedelta(0), run.created
        else:
            elapsed, created = min(now, item.end) - item.start, item.start
        body: dict[str, Any] = {"RunItemId": item.id}
        body["AutomationRunId" if self.legacy_forms else "RunId"] = run.id
        body["FlowInfo"] = {"FlowId": flow.id, "FlowTitle": flow.title, "Status": item.status}
        if self.legacy_forms:
            body["EnvironmentInfo"] = {"EnvironmentId": agent.id, "EnvironmentTitle": agent.title}
        else:
            body["AgentInfo"] = {
                "AgentId": agent.id,
                "AgentTitle": agent.title,
                "ConnectionType": "RemoteAgent",
            }
        body.update(
            {
                "Elapsed": timespan(elapsed),
                "ElapsedMilliseconds": int(elapsed.total_seconds() * 1000),
                "CreatedAt": self._date(created),
                "RunType": run.run_type,
            }
        )
        return body

    def failure(self, item: Item) -> failure_causes.Failure:
        """What went wrong in a failed run item: its cause, with this occurrence's details."""
        run = self.runs[item.run_id]
        return failure_causes.failure(
            item.cause or "assertion-value",
            self.flows[item.flow_id].title,
            random.Random(f"{self.seed}:failure:{item.id}"),
            env=run.variables.get("Environment", VARIABLE_DEFAULTS["Environment"]),
            agent=self.agents[item.agent_id].title,
            browser=run.variables.get("Browser", VARIABLE_DEFAULTS["Browser"]),
        )

    def _failure_frames(self, item: Item) -> list[tuple[datetime, str, str, str, str]]:
        found = self.failure(item)
        block = CAUSE_BLOCKS.get(found.cause, "Run flow")
        span = item.end - item.start
        frames = []
        for number, line in enumerate(found.log):
            at = item.start + span * (0.75 + 0.25 * number / len(found.log))
            status = item.status if line.level == "error" else "Running"
            frames.append((at, LEVELS[line.level], status, line.text, block))
        frames[-1] = (item.end, *frames[-1][1:])
        frames.append((item.end, "Info", item.status, "Flow failed", "Fail"))
        return frames

    def _keyframes(self, item: Item) -> list[dict[str, Any]]:
        if item.status == "NoStatus":
            return []
        flow = self.flows[item.flow_id]
        agent = self.agents[item.agent_id]
        run = self.runs[item.run_id]
        span = item.end - item.start
        base_url = run.variables.get("BaseUrl", VARIABLE_DEFAULTS["BaseUrl"])
        frames = [
            (item.start, "Trace", "Running", f"Flow '{flow.title}' started", "Start"),
            (
                item.start + span * 0.1,
                "Info",
                "Running",
                f"Connected to agent {agent.title}",
                "Start",
            ),
            (
                item.start + span * 0.3,
                "Trace",
                "Running",
                "Starting web browser",
                "Start web browser",
            ),
            (
                item.start + span * 0.5,
                "Info",
                "Running",
                f"Navigated to {base_url}",
                "Start web browser",
            ),
            (
                item.start + span * 0.7,
                "Trace",
                "Running",
                "Clicked web element",
                "Click web element",
            ),
        ]
        now = self.now()
        frames = [frame for frame in frames if frame[0] <= now]
        if item.status in FAILING:
            frames = [frame for frame in frames if frame[0] < item.start + span * 0.7]
            frames += self._failure_frames(item)
        elif item.status == "Cancelled":
            frames.append((item.end, "Warning", "Cancelled", "The run was stopped", "Stop"))
        elif item.status in TERMINAL:
            frames.append((item.end, "Info", item.status, "Flow passed", "Pass"))
        return [
            {
                "AutomationRunItemId": item.id,
                "Timestamp": self._date(moment),
                "Level": level,
                "Status": status,
                "LogMessage": message,
                "BlockTitle": block,
            }
            for moment, level, status, message, block in frames
        ]
