"""Running again: reRun, reRunOnAgents and Run Flow by Id."""

from __future__ import annotations

from typing import Any

from runs.orchestrators.emulation import (
    BadJson,
    EmulatorApp,
    Request,
    Response,
    seeded_uuid,
)
from runs.orchestrators.leapwork.emulator.model import (
    VARIABLE_NAME,
    Run,
    Schedule,
    Step,
)


class LeapworkReruns(EmulatorApp):
    """Rerun endpoints; part of LeapworkEmulator."""

    def rerun(self, request: Request, run_id: str, agent_id: str | None = None) -> Response:
        source = self._run(run_id)
        schedule = self._schedule(source.schedule_id, deleted_ok=True)
        if agent_id is not None:
            self._agent(agent_id)
            seen = dict.fromkeys((item.step_id, item.flow_id) for item in source.items)
            plan = [(step_id, flow_id, agent_id) for step_id, flow_id in seen]
        else:
            plan = [(item.step_id, item.flow_id, item.agent_id) for item in source.items]
        run = self._start_rerun(source, schedule, plan, self._variables(request), "rerun")
        return self._ok({"RunId": run.id})

    # leapwork.md: re-run on agents
    def rerun_on_agents(self, request: Request, run_id: str) -> Response:
        source = self._run(run_id)
        schedule = self._schedule(source.schedule_id, deleted_ok=True)
        try:
            body = request.json()
        except BadJson as exc:
            raise self._fail(400, f"The request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise self._fail(400, "The request body must be an object with Steps.")
        steps = body.get("Steps")
        if not isinstance(steps, list) or not steps:
            raise self._fail(400, "Steps is required: at least one RunListStep to run.")
        sent = self._body_variables(body.get("Variables"))
        by_id = {step.id: step for step in schedule.steps}
        plan: list[tuple[str, str, str]] = []
        for entry in steps:
            if not isinstance(entry, dict):
                raise self._fail(400, "Each Steps entry must be an object.")
            step = by_id.get(str(entry.get("RunListStepId")))
            if step is None:
                raise self._fail(
                    400, f"RunListStepId '{entry.get('RunListStepId')}' is not a step of this run."
                )
            agent_ids = entry.get("AgentIds") or []
            if not isinstance(agent_ids, list):
                raise self._fail(400, "AgentIds must be a list of agent ids.")
            for agent_id in agent_ids:
                if str(agent_id) not in self.agents:
                    raise self._fail(400, f"Agent '{agent_id}' does not exist.")
            source_items = [item for item in source.items if item.step_id == step.id]
            if not agent_ids:  # no agents named: the ones this step ran on
                agent_ids = list(dict.fromkeys(item.agent_id for item in source_items))
            flows = dict.fromkeys(item.flow_id for item in source_items)
            plan += [(step.id, flow_id, str(agent)) for flow_id in flows for agent in agent_ids]
        run = self._start_rerun(source, schedule, plan, sent, "rerun_on_agents")
        if self.legacy_forms:
            return Response(200, run.id, {"Content-Type": "text/plain; charset=utf-8"})
        return self._ok({"RunId": run.id})

    def _body_variables(self, raw: Any) -> dict[str, str]:
        if raw is None:
            return {}
        if not isinstance(raw, list):
            raise self._fail(400, "Variables must be a list of {Name, Value}.")
        found: dict[str, str] = {}
        for entry in raw:
            name = entry.get("Name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not VARIABLE_NAME.match(name):
                raise self._fail(400, f"Variable {entry!r} has no valid Name.")
            value = entry.get("Value")
            found[name] = "" if value is None else str(value)
        return found

    # leapwork.md: run flow by id (v4 agent, v3 environment)
    def run_flow(self, request: Request, flow_id: str, agent_id: str) -> Response:
        flow = self.flows.get(flow_id)
        if flow is None:
            raise self._fail(404, f"Flow with id '{flow_id}' was not found.")
        agent = self._agent(agent_id)
        is_delete = any(
            name.lower() == "isdelete" and value.lower() == "true"
            for name, value in request.query_pairs
        )
        sent = self._variables(request, skip=frozenset({"isdelete"}))
        home = self.schedules[flow.schedule_id]
        now = self.now()
        step = Step(
            seeded_uuid(self.rng), seeded_uuid(self.rng), "Step 1", 0, [flow.id], [agent.id]
        )
        temp = Schedule(
            seeded_uuid(self.rng),
            f"Run flow {flow.title} on {agent.title}",
            None,
            now,
            [step],
            dict(home.variables),
            is_scheduled=False,
            temporary=True,
            delete_after=is_delete,
        )
        self.schedules[temp.id] = temp
        applied = {name: value for name, value in sent.items() if name in temp.variables}
        run = self._start_run(
            temp,
            [(step.id, flow.id, agent.id)],
            created=now,
            run_type="Manual",
            trigger="run_flow",
            variables={**temp.variables, **applied},
            variables_sent=sent,
        )
        return self._ok({"RunId": run.id})

    def _start_rerun(
        self,
        source: Run,
        schedule: Schedule,
        plan: list[tuple[str, str, str]],
        sent: dict[str, str],
        trigger: str,
    ) -> Run:
        """A manual run of `plan` from `source`: its variables, with the schedule's own sent."""
        applied = {name: value for name, value in sent.items() if name in schedule.variables}
        return self._start_run(
            schedule,
            plan,
            created=self.now(),
            run_type="Manual",
            trigger=trigger,
            variables={**source.variables, **applied},
            variables_sent=sent,
            source_run_id=source.id,
        )
