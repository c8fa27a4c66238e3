"""The seeded Testsigma world: test plans with their cases, machines and environments,
each plan's past runs, and how the estate is saved and resumed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from runs.orchestrators import failure_causes
from runs.orchestrators.emulation import (
    EmulatorApp,
    Refs,
    from_plain,
    to_plain,
)
from runs.orchestrators.testsigma.emulator.model import (
    CAUSE_KINDS,
    DATA_SETS,
    ENVIRONMENTS,
    FAILED_WORDS,
    MACHINES,
    PLAN_NAMES,
    SUITES,
    USERS,
    Case,
    Machine,
    Plan,
    PlanRun,
    id_of,
)


class TestsigmaEstate(EmulatorApp):
    """Builds, saves and resumes the estate; part of TestsigmaEmulator."""

    def build(self) -> None:
        rng = self.rng
        now = self.now()
        self.plans: dict[int, Plan] = {}
        self.runs: dict[int, PlanRun] = {}
        self._active: dict[int, PlanRun] = {}
        self._next_run_id = 5001
        self._next_case_result_id = 70001
        self._next_iteration_id = 900001
        self.machines = [Machine(id_, title) for id_, title in MACHINES]
        self.environments = [
            {
                "id": id_,
                "name": name,
                "description": description,
                "variables": [
                    {"key": "baseUrl", "value": url, "isEncrypted": False},
                    {"key": "adminUser", "value": "qa-admin", "isEncrypted": False},
                    {"key": "adminPassword", "value": "********", "isEncrypted": True},
                ],
            }
            for id_, name, description, url in ENVIRONMENTS
        ]
        next_case_id = 3001
        next_suite_id = 201
        for index, (name, description) in enumerate(PLAN_NAMES[: rng.randint(3, 5)]):
            plan_id = 101 + index
            suite_names = rng.sample(sorted(SUITES), rng.randint(2, 5))
            cases: list[Case] = []
            for suite_index, suite_name in enumerate(suite_names):
                titles = rng.sample(SUITES[suite_name], rng.randint(4, 8))
                for title in titles:
                    cases.append(Case(next_case_id, title, next_suite_id, suite_name, suite_index))
                    next_case_id += 1
                next_suite_id += 1
            machines = rng.sample(self.machines, rng.randint(2, 3))
            self._assign_outcomes(cases, machines, every_kind=index == 0)
            plan = Plan(
                id=plan_id,
                name=name,
                description=description,
                owner=rng.choice(USERS),
                schedule_id=plan_id * 10 + 1,
                machines=machines,
                cases=cases,
            )
            if self.autorun > 0:
                plan.next_auto = now + timedelta(seconds=self.autorun * self._jitter(plan, 0))
            self.plans[plan_id] = plan
        self._build_history(now)

    def _assign_outcomes(
        self, cases: list[Case], machines: list[Machine], *, every_kind: bool
    ) -> None:
        """Most cases pass; a few always fail, fail on one machine, are flaky, or are data-driven
        with a failing iteration. The first plan holds one case of every kind (tests use it)."""
        rng = self.rng
        kinds = ("fail", "machine", "flaky", "iteration", "iteration_flaky", "data_driven")
        forced = (
            dict(zip(rng.sample(range(len(cases)), len(kinds)), kinds, strict=True))
            if every_kind
            else {}
        )
        for index, case in enumerate(cases):
            outcome = forced.get(index)
            if outcome is None:
                draw = rng.random()
                outcome = (
                    "fail"
                    if draw < 0.03
                    else "flaky"
                    if draw < 0.08
                    else "machine"
                    if draw < 0.11
                    else "data_driven"
                    if draw < 0.21
                    else "pass"
                )
            if outcome in ("iteration", "iteration_flaky", "data_driven"):
                case.sets = tuple(rng.sample(rng.choice(DATA_SETS), rng.randint(2, 5)))
                if outcome == "data_driven":
                    outcome = (
                        "pass" if every_kind else rng.choice(("pass", "pass", "iteration_flaky"))
                    )
                if outcome != "pass":
                    case.bad_set = rng.choice(case.sets)
            if outcome == "machine":
                case.bad_machine_id = rng.choice(machines).id
            case.outcome = outcome
            # Cases once drew a message here: the same draw keeps every seed's estate as it was.
            rng.choice(range(4))
            if outcome in CAUSE_KINDS:
                # A generator of its own: causes leave the rest of the estate as it was.
                draw = random.Random(f"{self.seed}:cause:{case.id}")
                case.cause = failure_causes.pick_cause(draw, CAUSE_KINDS[outcome])

    def _jitter(self, plan: Plan, k: int) -> float:
        """A factor around 1 for the k-th automatic run of a plan, the same for every seed run."""
        return 0.5 + random.Random(f"{self.seed}:{plan.id}:{k}").random()

    def _build_history(self, now: datetime) -> None:
        """`history` finished runs per plan over the last days, oldest first, ids increasing."""
        if self.history <= 0:
            return
        rng = self.rng
        spacing = min(timedelta(hours=20), timedelta(days=28) / self.history)
        slots: list[tuple[datetime, int]] = []
        for plan in self.plans.values():
            longest = timedelta(seconds=self.pace * (len(plan.cases) + 1) + 60)
            for k in range(self.history):
                moment = now - spacing * (self.history - k) + spacing * rng.uniform(0, 0.3)
                slots.append((min(moment, now - longest), plan.id))
        slots.sort(key=lambda slot: (slot[0], slot[1]))
        for moment, plan_id in slots:
            plan = self.plans[plan_id]
            previous = self.runs[plan.runs[-1]] if plan.runs else None
            if previous is not None:
                self._settle(previous, moment)
            failed = previous is not None and any(c.result in FAILED_WORDS for c in previous.cases)
            if previous is not None and previous.done and failed and rng.random() < 0.25:
                picks = self._select(previous, "ONLY_FAILED_TESTS")
                run = self._start_rerun(previous, "ONLY_FAILED_TESTS", picks, moment)
                run.triggered_type = "MANUAL"
                run.executed_by = rng.choice(USERS)
            else:
                draw = rng.random()
                if draw < 0.6:
                    run = self._start(plan, moment, triggered_type="SCHEDULED")
                elif draw < 0.85:
                    run = self._start(
                        plan,
                        moment,
                        triggered_type="API",
                        executed_by=plan.owner,
                        build_no=f"build-{rng.randint(1000, 9999)}",
                        environment_id=rng.choice(ENVIRONMENTS)[0],
                    )
                else:
                    run = self._start(
                        plan, moment, triggered_type="MANUAL", executed_by=rng.choice(USERS)
                    )
            self._settle(run, now)

    def _refs(self, *kinds: type) -> Refs:
        """Runs point at their plan, cases and machines, plans at machines: saved by id."""
        cases = {case.id: case for plan in self.plans.values() for case in plan.cases}
        machines = {machine.id: machine for machine in self.machines}
        lookups: dict[type, Any] = {
            Plan: self.plans.__getitem__,
            Case: cases.__getitem__,
            Machine: machines.__getitem__,
        }
        return {kind: (id_of, lookups[kind]) for kind in kinds}

    def estate(self) -> dict[str, Any]:
        return {
            "machines": to_plain(self.machines),
            "environments": to_plain(self.environments),
            "plans": to_plain(self.plans, self._refs(Machine)),
            "runs": to_plain(self.runs, self._refs(Plan, Case, Machine)),
            "active": sorted(self._active),
            "next_ids": [self._next_run_id, self._next_case_result_id, self._next_iteration_id],
        }

    def restore(self, estate: dict[str, Any]) -> None:
        self.machines = from_plain(list[Machine], estate["machines"])
        self.environments = estate["environments"]
        self.plans = from_plain(dict[int, Plan], estate["plans"], self._refs(Machine))
        self.runs = from_plain(dict[int, PlanRun], estate["runs"], self._refs(Plan, Case, Machine))
        self._active = {run_id: self.runs[run_id] for run_id in estate["active"]}
        self._next_run_id, self._next_case_result_id, self._next_iteration_id = estate["next_ids"]

    def resumed(self, now: datetime) -> None:
        # The account was off while no emulator ran: its plans were not triggered meanwhile.
        # Runs in flight keep their timeline and have finished if it has passed.
        if self.autorun <= 0:
            return
        for plan in self.plans.values():
            if plan.next_auto is None or plan.next_auto <= now:
                step = self.autorun * self._jitter(plan, plan.autos)
                plan.next_auto = now + timedelta(seconds=step)

    def describe(self) -> str:
        return f"{len(self.runs)} runs, {len(self._active)} in flight"
