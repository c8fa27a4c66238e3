"""The seeded Conductor world: workers, workflow definitions (with a regression in one
version 2) and each definition's past executions.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

from runs.orchestrators import failure_causes
from runs.orchestrators.conductor.emulator.model import (
    CATALOG,
    CHECKS,
    ONGOING,
    TERMINATE_RATE,
    USERS,
    WORKERS,
    Definition,
    Execution,
    TaskPlan,
    to_ms,
)
from runs.orchestrators.emulation import (
    EmulatorApp,
    seeded_uuid,
)


class ConductorEstate(EmulatorApp):
    """Builds the estate from the seed; part of ConductorEmulator."""

    def _draw(self, *parts: Any) -> random.Random:
        """A generator for one decision, so outcomes do not depend on request timing."""
        return random.Random("/".join(str(part) for part in (self.seed, *parts)))

    def _uuid(self, *parts: Any) -> str:
        return seeded_uuid(self._draw(*parts))

    @property
    def _poll_ms(self) -> int:
        return int(self.pace * 200)

    @property
    def _work_ms(self) -> int:
        return max(1, int(self.pace * 1000) - self._poll_ms)

    def build(self) -> None:
        rng = self.rng
        now_ms = to_ms(self.now())
        self.built_ms = now_ms
        self.workers = sorted(rng.sample(WORKERS, rng.randint(4, 6)))
        self.definitions: list[Definition] = []
        self.executions: dict[str, Execution] = {}
        self._active: set[str] = set()
        self._order: list[str] = []  # workflow ids in creation order
        self._started = 0
        self.tokens: dict[str, int] = {}  # Orkes token -> expiry (epoch ms on the clock)
        self._issued = 0

        catalog = sorted(rng.sample(CATALOG, rng.randint(4, 6)))
        for index, (name, description, areas) in enumerate(catalog):
            count = rng.randint(5, 40) if index else rng.randint(5, 8)
            plan = self._plan(rng, areas, count)
            created = now_ms - int(timedelta(days=40).total_seconds() * 1000)
            self.definitions.append(Definition(name, 1, description, plan, created))
            if index == 0:
                # Version 2 adds a check that is broken since it shipped: a regression.
                check = f"{areas[0]}_schema_v2"
                broken = TaskPlan(check, check, "broken", "", "assertion-value")
                plan2 = [*plan[:-1], broken, plan[-1]]
                since = now_ms - int(timedelta(days=2).total_seconds() * 1000)
                self.definitions.append(Definition(name, 2, description, plan2, since))

        for definition in self.latest_definitions():
            self._build_history(definition.name, now_ms)
        self._auto_next: dict[str, int] = {}
        self._auto_count: Counter[str] = Counter()
        if self.autorun > 0:
            for definition in self.latest_definitions():
                self._auto_next[definition.name] = now_ms + self._auto_gap(definition.name, 0)

    def _plan(self, rng: random.Random, areas: tuple[str, ...], count: int) -> list[TaskPlan]:
        names = [f"{area}_{check}" for area in areas for check in CHECKS]
        middle = sorted(rng.sample(names, count - 3), key=names.index)
        plan = [TaskPlan(name, name) for name in ("setup_env", "login", *middle, "teardown")]
        for task in rng.sample(plan[2:-1], min(2, len(plan) - 3)):
            task.behaviour = "flaky"
            task.cause = failure_causes.pick_cause(rng, failure_causes.TRANSIENT)
        if rng.random() < 0.6:
            candidates = [task for task in plan[2:-1] if task.behaviour == "pass"]
            if candidates:
                task = rng.choice(candidates)
                task.behaviour = "worker"
                task.bad_worker = rng.choice(self.workers)
                task.cause = failure_causes.pick_cause(rng, failure_causes.AGENT)
        return plan

    def _build_history(self, name: str, now_ms: int) -> None:
        rng = self.rng
        day = 24 * 3600 * 1000
        spacing = min(day // 3, (29 * day) // max(1, self.history))
        start = now_ms - self.history * spacing
        for number in range(self.history):
            at = start + number * spacing + rng.randint(0, spacing // 2)
            definition = self.definition(name, self._version_at(name, at))
            duration = (len(definition.tasks) + 2) * int(self.pace * 1000)
            at = min(at, now_ms - duration - 60_000)
            environment = rng.choice(["staging", "qa", "preprod"])
            payload = {
                "env": environment,
                "browser": rng.choice(["chrome", "firefox", "webkit"]),
                "build": f"2.{rng.randint(10, 40)}.{rng.randint(0, 999)}",
            }
            manual = rng.random() < 0.2
            execution = self._create(
                definition,
                at_ms=at,
                workflow_id=self._uuid("history", name, number),
                workflow_input=payload,
                correlation_id=f"{environment}-{name}-{number}",
                created_by=rng.choice(USERS) if manual else "",
            )
            if rng.random() < TERMINATE_RATE:
                stop_at = at + rng.randint(1, len(definition.tasks)) * int(self.pace * 1000)
                self._progress(execution, stop_at)
                if execution.wf["status"] in ONGOING:
                    self._terminate(execution, "Terminated by the release manager", stop_at)
            self._progress(execution, now_ms)
            if execution.wf["status"] not in ONGOING:
                self._active.discard(execution.id)

    def _version_at(self, name: str, at_ms: int) -> int:
        versions = [d.version for d in self.definitions if d.name == name and d.create_ms <= at_ms]
        return max(versions, default=1)

    def _auto_gap(self, name: str, number: int) -> int:
        factor = 0.5 + self._draw("autorun", name, number).random()
        return max(1000, int(self.autorun * factor * 1000))

    def definition(self, name: str, version: int | None = None) -> Definition:
        matches = [d for d in self.definitions if d.name == name]
        if version is not None:
            matches = [d for d in matches if d.version == version]
        if not matches:
            raise self._error(404, f"No such workflow found by name: {name}, version: {version}")
        return max(matches, key=lambda d: d.version)

    def latest_definitions(self) -> list[Definition]:
        names = dict.fromkeys(d.name for d in self.definitions)
        return [self.definition(name) for name in names]
