"""Small factories: plain functions that make rows with sensible defaults."""

from __future__ import annotations

import importlib
import itertools
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.contrib.auth.models import Group, User
from django.utils import timezone

from runs.models import (
    Agent,
    ExecutionResult,
    Orchestrator,
    OrchestratorKind,
    Run,
    Schedule,
    TestCase,
)
from runs.services.sync import schedules_touch
from runs.status import Status

# What the migrations give the Rerunners group, made again after a transactional test's flush.
RERUNNERS_MIGRATIONS = [
    importlib.import_module("runs.migrations.0002_rerunners_group").create_rerunners,
    importlib.import_module("runs.migrations.0015_rerunners_mute").rerunners_mute,
]


def rerunners_ensure() -> Group:
    """The Rerunners group as the migrations made it."""
    for migrate in RERUNNERS_MIGRATIONS:
        migrate(apps, None)
    return Group.objects.get(name="Rerunners")


_counter = itertools.count(1)


def make_user(username: str = "", *, rerunner: bool = False, **fields: Any) -> User:
    user = User.objects.create_user(
        username=username or f"user{next(_counter)}", password="correct horse battery", **fields
    )
    if rerunner:
        # Made by a migration; a transactional test's flush empties it, so make it again the
        # same way (which test ran before on this process is not fixed, under pytest-xdist).
        user.groups.add(rerunners_ensure())
    return user


def make_orchestrator(kind: str = OrchestratorKind.LEAPWORK, **fields: Any) -> Orchestrator:
    n = next(_counter)
    defaults: dict[str, Any] = {
        "name": f"{kind}-{n}",
        "base_url": f"http://127.0.0.1:{9000 + n}",
        "credential": "secret-key",
    }
    return Orchestrator.objects.create(kind=kind, **{**defaults, **fields})


def make_schedule(orchestrator: Orchestrator | None = None, **fields: Any) -> Schedule:
    orchestrator = orchestrator or make_orchestrator()
    n = next(_counter)
    defaults = {"external_id": f"schedule-{n}", "title": f"Schedule {n}"}
    return Schedule.objects.create(orchestrator=orchestrator, **{**defaults, **fields})


def make_agent(orchestrator: Orchestrator, **fields: Any) -> Agent:
    n = next(_counter)
    defaults = {"external_id": f"agent-{n}", "title": f"Agent {n}"}
    return Agent.objects.create(orchestrator=orchestrator, **{**defaults, **fields})


def make_agents(count: int, orchestrator: Orchestrator | None = None) -> list[Agent]:
    """`count` agents in one bulk insert, each seen a minute before the last (the newest
    first), as a cluster's workers: worker-0000 on pod-0.cluster.local, and on."""
    orchestrator = orchestrator or make_orchestrator()
    now = timezone.now()
    return Agent.objects.bulk_create(
        Agent(
            orchestrator=orchestrator,
            external_id=f"w-{next(_counter)}",
            title=f"worker-{i:04d}",
            host=f"pod-{i}.cluster.local",
            last_seen_at=now - timedelta(minutes=i),
        )
        for i in range(count)
    )


def make_test_case(orchestrator: Orchestrator, **fields: Any) -> TestCase:
    n = next(_counter)
    defaults = {"external_id": f"case-{n}", "title": f"Case {n}"}
    return TestCase.objects.create(orchestrator=orchestrator, **{**defaults, **fields})


def make_run(schedule: Schedule | None = None, **fields: Any) -> Run:
    schedule = schedule or make_schedule()
    n = next(_counter)
    now = timezone.now()
    defaults: dict[str, Any] = {
        "external_id": f"run-{n}",
        "status": Status.PASSED,
        "vendor_status": "Finished",
        "started_at": now - timedelta(minutes=5),
        "finished_at": now,
        "duration": timedelta(minutes=5),
    }
    run = Run.objects.create(
        orchestrator=schedule.orchestrator, schedule=schedule, **{**defaults, **fields}
    )
    schedules_touch(pks=[schedule.pk])  # as the run writer keeps its newest run
    return run


def make_result(run: Run, **fields: Any) -> ExecutionResult:
    n = next(_counter)
    # A result starts with its run unless told otherwise.
    defaults: dict[str, Any] = {
        "external_id": f"result-{n}",
        "status": Status.PASSED,
        "started_at": run.started_at,
    }
    return ExecutionResult.objects.create(run=run, **{**defaults, **fields})


def make_runs(count: int, schedule: Schedule | None = None, **fields: Any) -> list[Run]:
    """`count` runs of one schedule in one bulk insert, a minute apart, the newest first."""
    schedule = schedule or make_schedule()
    now = timezone.now()
    runs = []
    for i in range(count):
        started = now - timedelta(minutes=5 + i)
        defaults: dict[str, Any] = {
            "external_id": f"run-{next(_counter)}",
            "status": Status.PASSED,
            "started_at": started,
            "finished_at": started + timedelta(minutes=5),
            "duration": timedelta(minutes=5),
        }
        runs.append(
            Run(orchestrator=schedule.orchestrator, schedule=schedule, **{**defaults, **fields})
        )
    made = Run.objects.bulk_create(runs, batch_size=1000)
    schedules_touch(pks=[schedule.pk])
    return made


def make_results(run: Run, count: int, **fields: Any) -> list[ExecutionResult]:
    """`count` results of `run` in one bulk insert, in the orchestrator's order (seq)."""
    results = [
        ExecutionResult(
            run=run,
            **{
                "external_id": f"result-{next(_counter)}",
                "status": Status.PASSED,
                "started_at": run.started_at,
                "seq": seq,
                **fields,
            },
        )
        for seq in range(1, count + 1)
    ]
    return ExecutionResult.objects.bulk_create(results, batch_size=1000)
