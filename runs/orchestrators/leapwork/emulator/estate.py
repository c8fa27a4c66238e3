"""The seeded Leapwork world: agents, schedules with their RunListSteps and flows, folders,
and each schedule's past runs.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from runs.orchestrators import failure_causes
from runs.orchestrators.emulation import (
    EmulatorApp,
    seeded_uuid,
)
from runs.orchestrators.leapwork.emulator.model import (
    AGENT_NAMES,
    CAUSE_KINDS,
    FLOW_SUBJECTS,
    SCHEDULE_TITLES,
    VARIABLE_DEFAULTS,
    Agent,
    Flow,
    Item,
    Run,
    Schedule,
    Step,
)


class LeapworkEstate(EmulatorApp):
    """Builds the estate from the seed; part of LeapworkEmulator."""

    @property
    def queue_seconds(self) -> float:
        """How long a new run stays Queued before its first item starts."""
        return min(1.0, self.pace)

    def build(self) -> None:
        rng = self.rng
        now = self.now()
        self.agents: dict[str, Agent] = {}
        self.flows: dict[str, Flow] = {}
        self.schedules: dict[str, Schedule] = {}
        self.runs: dict[str, Run] = {}
        self.items: dict[str, Item] = {}
        self.active: set[str] = set()
        self.folders = {name: seeded_uuid(rng) for name in ("Web", "API", "Mobile", "Nightly")}

        for title, host in AGENT_NAMES[: rng.randint(4, 6)]:
            created = now - timedelta(days=rng.randint(60, 400))
            agent = Agent(seeded_uuid(rng), title, host, created)
            self.agents[agent.id] = agent
        temp = Agent(seeded_uuid(rng), "Cloud-Chrome-temp", "cloud-1.leapwork.example", now, True)
        self.agents[temp.id] = temp
        pool = [agent.id for agent in self.agents.values() if not agent.temporary]

        for index, (title, folder) in enumerate(SCHEDULE_TITLES[: rng.randint(4, 6)]):
            self._build_schedule(index, title, folder, pool, now)

        for schedule in list(self.schedules.values()):
            self._build_history(schedule, now)
            if self.autorun > 0:
                schedule.next_auto = now + timedelta(seconds=self.autorun * rng.uniform(0.5, 1.5))

    def _build_schedule(
        self, index: int, title: str, folder: str, pool: list[str], now: datetime
    ) -> None:
        rng = self.rng
        schedule_id = seeded_uuid(rng)
        n_flows = rng.randint(5, 60) if index else rng.randint(5, 12)
        # Schedule 1 is the one that is sure to show every kind of outcome.
        agent_ids = rng.sample(pool, rng.randint(2 if index == 1 else 1, 3))
        flows = [
            Flow(
                seeded_uuid(rng),
                f"{FLOW_SUBJECTS[(index * 7 + number) % len(FLOW_SUBJECTS)]} #{number + 1:02d}",
                schedule_id,
            )
            for number in range(n_flows)
        ]

        steps = self._build_steps(index, flows, agent_ids)
        self._draw_behaviours(index, flows, agent_ids, steps)
        for flow in flows:
            flow.cause = self._cause(flow)
            self.flows[flow.id] = flow

        names = rng.sample(sorted(VARIABLE_DEFAULTS), rng.randint(2, 3))
        variables = {name: VARIABLE_DEFAULTS[name] for name in sorted(names)}
        created = now - timedelta(days=rng.randint(40, 300))
        self.schedules[schedule_id] = Schedule(
            schedule_id,
            title,
            (self.folders[folder], folder),
            created,
            steps,
            variables,
        )

    def _build_steps(self, index: int, flows: list[Flow], agent_ids: list[str]) -> list[Step]:
        """A schedule's RunListSteps: its flows cut into 1-3 steps, each on some of its agents."""
        rng = self.rng
        n_flows = len(flows)
        n_steps = min(rng.randint(1, 3), n_flows)
        # Schedule 1's first step keeps flows 0-2, the ones sure to show every outcome.
        first = 3 if index == 1 else 1
        bounds = sorted(rng.sample(range(first, n_flows), n_steps - 1)) if n_steps > 1 else []
        edges = [0, *bounds, n_flows]
        steps = []
        for number in range(n_steps):
            chunk = [flow.id for flow in flows[edges[number] : edges[number + 1]]]
            agents = rng.sample(agent_ids, rng.randint(1, len(agent_ids)))
            steps.append(
                Step(
                    seeded_uuid(rng), seeded_uuid(rng), f"Step {number + 1}", number, chunk, agents
                )
            )
        for agent_id in agent_ids:  # every agent of the schedule runs some step
            if not any(agent_id in step.agent_ids for step in steps):
                rng.choice(steps).agent_ids.append(agent_id)
        if index == 1:
            steps[0].agent_ids = list(agent_ids)
        return steps

    def _draw_behaviours(
        self, index: int, flows: list[Flow], agent_ids: list[str], steps: list[Step]
    ) -> None:
        """Which flows fail always, on one agent, or now and then."""
        rng = self.rng
        step_agents = {flow_id: step.agent_ids for step in steps for flow_id in step.flow_ids}
        for flow in flows:
            roll = rng.random()
            if index == 0:
                pass  # the smoke schedule is green
            elif roll < 0.06:
                flow.behaviour = "fail"
                flow.failure_word = "Error" if rng.random() < 0.3 else "Failed"
            elif roll < 0.11:
                # Fails on one of the agents its step runs on, passes on the others.
                flow.behaviour, flow.fails_on = "agent", rng.choice(step_agents[flow.id])
            elif roll < 0.17:
                flow.behaviour = "flaky"
        if index == 1:
            flows[0].behaviour, flows[0].failure_word = "fail", "Failed"
            flows[1].behaviour = "flaky"
            flows[2].behaviour, flows[2].fails_on = "agent", agent_ids[-1]

    def _cause(self, flow: Flow) -> str:
        """Why a flow fails when it does: a cause of the kind its behaviour calls for."""
        if flow.behaviour not in CAUSE_KINDS:
            return ""
        # A generator of its own: causes leave the rest of the estate as it was.
        draw = random.Random(f"{self.seed}:cause:{flow.id}")
        return failure_causes.pick_cause(draw, CAUSE_KINDS[flow.behaviour])

    def _build_history(self, schedule: Schedule, now: datetime) -> None:
        if self.history <= 0:
            return
        interval = min(timedelta(days=1), timedelta(days=28) / self.history)
        plan = self._schedule_plan(schedule)
        for number in range(self.history, 0, -1):
            jitter = interval * self.rng.uniform(-0.2, 0.2)
            created = now - interval * number + jitter - timedelta(minutes=10)
            manual = number % 5 == 0
            # A history run is over before now, however slow the pace.
            length = timedelta(seconds=self.queue_seconds + self.pace * len(plan) + 60)
            created = min(created, now - length)
            self._start_run(
                schedule,
                plan,
                created=created,
                run_type="Manual" if manual else "Scheduled",
                trigger="history",
                variables=dict(schedule.variables),
            )
