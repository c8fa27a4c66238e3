"""The Leapwork clock at work: runs started (Queued, then Executing item after item),
outcomes (flaky, agent-bound, outages), finishing and stopping runs, schedules starting
runs on their own, resuming a saved estate.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from runs.orchestrators import failure_causes
from runs.orchestrators.emulation import (
    EmulatorApp,
    seeded_uuid,
)
from runs.orchestrators.leapwork.emulator.model import (
    FLAKY_RATE,
    OUTAGE_RATE,
    TERMINAL,
    Flow,
    Item,
    Run,
    Schedule,
)


class LeapworkSimulation(EmulatorApp):
    """Moves runs along the clock; part of LeapworkEmulator."""

    def _schedule_plan(self, schedule: Schedule) -> list[tuple[str, str, str]]:
        """(step id, flow id, agent id) for every run item of a run of the whole schedule."""
        return [
            (step.id, flow_id, agent_id)
            for step in schedule.steps
            for flow_id in step.flow_ids
            for agent_id in step.agent_ids
        ]

    def _outcome(
        self, flow: Flow, item_id: str, agent_id: str, down: str | None
    ) -> tuple[str, str]:
        """(status, cause) of a run item; `down` is the service that is down for its run."""
        passed = "Pass" if self.legacy_forms else "Passed"
        if flow.behaviour == "fail":
            return flow.failure_word, flow.cause
        if flow.behaviour == "agent" and agent_id == flow.fails_on:
            return "Failed", flow.cause
        if down and failure_causes.subject_of(flow.title).service == down:
            return "Failed", "env-outage"
        # A flaky flow fails on some first attempts (`down` is None on a rerun) and no rerun.
        first = down is not None
        flakes = random.Random(f"{self.seed}:flaky:{item_id}").random() < FLAKY_RATE
        if flow.behaviour == "flaky" and first and flakes:
            return "Failed", flow.cause
        return passed, ""

    def _down(self, run_id: str, plan: list[tuple[str, str, str]], rerun: bool) -> str | None:
        """The service down for a whole run ("" none; None: a rerun, where nothing flakes)."""
        if rerun:
            return None
        draw = random.Random(f"{self.seed}:outage:{run_id}")
        if draw.random() >= OUTAGE_RATE:
            return ""
        services = sorted(
            {failure_causes.subject_of(self.flows[f].title).service for _, f, _ in plan}
        )
        return draw.choice(services) if services else ""

    def _start_run(
        self,
        schedule: Schedule,
        plan: list[tuple[str, str, str]],
        *,
        created: datetime,
        run_type: str,
        trigger: str,
        variables: dict[str, str],
        variables_sent: dict[str, str] | None = None,
        source_run_id: str = "",
    ) -> Run:
        run_id = seeded_uuid(self.rng)
        queued_until = created + timedelta(seconds=self.queue_seconds)
        down = self._down(run_id, plan, trigger in {"rerun", "rerun_on_agents", "run_flow"})
        pace = timedelta(seconds=self.pace)
        items = []
        for number, (step_id, flow_id, agent_id) in enumerate(plan):
            start = queued_until + pace * number
            item_id = seeded_uuid(self.rng)
            outcome, cause = self._outcome(self.flows[flow_id], item_id, agent_id, down)
            item = Item(
                item_id,
                run_id,
                step_id,
                flow_id,
                agent_id,
                start,
                start + pace,
                outcome,
                cause=cause,
            )
            items.append(item)
            self.items[item.id] = item
        run = Run(
            run_id,
            schedule.id,
            created,
            run_type,
            trigger,
            items,
            queued_until,
            source_run_id=source_run_id,
            variables_sent=dict(variables_sent or {}),
            variables=variables,
        )
        self.runs[run_id] = run
        self.active.add(run_id)
        self._refresh(run, self.now())
        return run

    def _refresh(self, run: Run, now: datetime) -> None:
        for item in run.items:
            if item.status in TERMINAL:
                continue
            if now >= item.end:
                item.status = item.outcome
            elif now >= item.start:
                item.status = "Running"
        if now < run.queued_until:
            run.status = "Queued"
        elif all(item.status in TERMINAL for item in run.items):
            run.status = "Finished"
            run.finished = max((item.end for item in run.items), default=run.queued_until)
        else:
            run.status = "Executing"
        if run.is_over:
            self._finish(run)

    def _finish(self, run: Run) -> None:
        self.active.discard(run.id)
        schedule = self.schedules[run.schedule_id]
        if schedule.temporary and schedule.delete_after:
            schedule.deleted = True  # its runs and their reports stay

    def advance(self, now: datetime) -> None:
        if self.autorun > 0:
            self._autorun(now)
        for run_id in list(self.active):
            self._refresh(self.runs[run_id], now)

    def _autorun(self, now: datetime) -> None:
        every = timedelta(seconds=self.autorun)
        for schedule in list(self.schedules.values()):
            if schedule.next_auto is None or schedule.temporary:
                continue
            # After a long clock step, start only the last few of the missed runs.
            if now - schedule.next_auto > every * 10:
                schedule.next_auto = now - every * 10
            while schedule.next_auto <= now:
                self._start_run(
                    schedule,
                    self._schedule_plan(schedule),
                    created=schedule.next_auto,
                    run_type="Scheduled",
                    trigger="scheduled",
                    variables=dict(schedule.variables),
                )
                self.mark_changed()
                schedule.auto_count += 1
                jitter = random.Random(f"{self.seed}:{schedule.id}:{schedule.auto_count}")
                schedule.next_auto += every * jitter.uniform(0.75, 1.25)

    def restore(self, estate: dict[str, Any]) -> None:
        super().restore(estate)
        # One Item object per run item, shared by its run and the id index, as when built.
        self.items = {item.id: item for run in self.runs.values() for item in run.items}

    def resumed(self, now: datetime) -> None:
        # The controller was off while no emulator ran: its schedules did not fire meanwhile.
        # Runs that were in flight keep their timeline and have finished if it has passed.
        if self.autorun <= 0:
            return
        for schedule in self.schedules.values():
            if schedule.temporary or (schedule.next_auto and schedule.next_auto > now):
                continue
            jitter = random.Random(f"{self.seed}:{schedule.id}:resumed:{schedule.auto_count}")
            schedule.next_auto = now + timedelta(seconds=self.autorun * jitter.uniform(0.5, 1.5))

    def describe(self) -> str:
        return f"{len(self.runs)} runs, {len(self.active)} in flight"

    def _stop(self, run: Run) -> bool:
        now = self.now()
        self._refresh(run, now)
        if run.is_over:
            return False
        for item in run.items:
            if item.status not in TERMINAL:
                item.start = min(item.start, now)
                item.end = now
                item.status = item.outcome = "Cancelled"
        run.status = "Finished"
        run.finished = now
        self._finish(run)
        return True
