"""Catalog: the rows runs point at (schedules, agents, test cases), and the upsert that
writes every table of a sync.

Upserts go through the ORM, bulk_create with update_conflicts: one statement per table and
batch however many rows (the database's parameter limit allows a batch's results in one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import models

from runs.models import Agent, Orchestrator, Schedule, TestCase
from runs.orchestrators.base import (
    AgentSnapshot,
    Capabilities,
    ResultSnapshot,
    RunSnapshot,
    ScheduleSnapshot,
)
from runs.services.revision import revision_bump
from runs.services.sync.classify import schedule_values

BY_EXTERNAL_ID = ["orchestrator_id", "external_id"]
SCHEDULE_FIELDS = ["title", "description", "is_enabled", "is_temporary", "steps", "vanished_at"]


def upsert(
    model: type[models.Model],
    rows: Iterable[dict[str, Any]],
    *,
    unique: Sequence[str],
    update: Sequence[str],
) -> int:
    """Insert or update `rows` (dicts by attname) in one statement, however many there are.

    Rows go in key order, so concurrent passes lock them in the same order; `update` empty
    leaves rows that exist as they are.
    """
    by_key = {tuple(row[name] for name in unique): row for row in rows}
    if not by_key:
        return 0
    ordered = [model(**by_key[key]) for key in sorted(by_key, key=lambda k: tuple(map(str, k)))]
    if update:
        model.objects.bulk_create(
            ordered, update_conflicts=True, unique_fields=unique, update_fields=update
        )
    else:
        model.objects.bulk_create(ordered, ignore_conflicts=True)
    revision_bump(catalog=model in (Schedule, Agent))  # the filters offer them
    return len(ordered)


def _pks(model: type[models.Model], orchestrator: Orchestrator, keys: Iterable[str]) -> dict:
    return dict(
        model.objects.filter(orchestrator=orchestrator, external_id__in=list(keys)).values_list(
            "external_id", "pk"
        )
    )


def upsert_by_external_id(
    model: type[Schedule | Agent | TestCase],
    orchestrator: Orchestrator,
    rows: dict[str, dict[str, Any]],
    update: list[str],
) -> dict[str, int]:
    """Upsert rows by (orchestrator, external id), writing only new or changed ones;
    return {external_id: pk}. Three queries at most, however many rows."""
    if not rows:
        return {}
    known = {
        values[0]: values[1:]
        for values in model.objects.filter(
            orchestrator=orchestrator, external_id__in=list(rows)
        ).values_list("external_id", "pk", *update)
    }
    changed = [
        {"orchestrator_id": orchestrator.pk, "external_id": key, **row}
        for key, row in rows.items()
        if key not in known or tuple(row[name] for name in update) != tuple(known[key][1:])
    ]
    pks = {key: values[0] for key, values in known.items()}
    if not changed:
        return pks
    upsert(model, changed, unique=BY_EXTERNAL_ID, update=update)
    if any(row["external_id"] not in pks for row in changed):
        pks = _pks(model, orchestrator, rows)
    return pks


def schedules_upsert(
    *, orchestrator: Orchestrator, schedules: Iterable[ScheduleSnapshot]
) -> dict[str, int]:
    """Upsert listed schedules by external id; return {external_id: pk}."""
    # last_run_at is kept by the run writer: a new schedule starts without one.
    rows = {s.external_id: {**schedule_values(s), "last_run_at": None} for s in schedules}
    return upsert_by_external_id(Schedule, orchestrator, rows, SCHEDULE_FIELDS)


def schedules_ensure(
    orchestrator: Orchestrator, wanted: dict[str, tuple[str, bool]]
) -> dict[str, int]:
    """{external_id: pk} of these schedules, creating the missing ones as (title, temporary)
    without touching the ones that exist."""
    if not wanted:
        return {}
    known = _pks(Schedule, orchestrator, wanted)
    missing = [
        {
            "orchestrator_id": orchestrator.pk,
            "external_id": key,
            "title": title[:300],
            "is_temporary": is_temporary,
        }
        for key, (title, is_temporary) in wanted.items()
        if key not in known
    ]
    if not missing:
        return known
    upsert(Schedule, missing, unique=BY_EXTERNAL_ID, update=[])
    return _pks(Schedule, orchestrator, wanted)


def agents_upsert(*, orchestrator: Orchestrator, agents: Iterable[AgentSnapshot]) -> dict[str, int]:
    """Upsert agents by external id; return {external_id: pk}."""
    rows = {a.external_id: {"title": a.title[:300], "host": a.host[:300]} for a in agents}
    return upsert_by_external_id(Agent, orchestrator, rows, ["title", "host"])


def schedules_mark_vanished(orchestrator: Orchestrator, listed: set[str], now: datetime) -> None:
    """Listed schedules the listing no longer has stay as history, marked as vanished."""
    gone = list(
        Schedule.objects.filter(
            orchestrator=orchestrator, is_temporary=False, vanished_at__isnull=True
        )
        .exclude(external_id__in=listed)
        .values_list("pk", flat=True)
    )
    if gone:  # a pass that changes nothing writes nothing
        Schedule.objects.filter(pk__in=gone).update(vanished_at=now)
        revision_bump()


def schedule_ids_ensure(
    orchestrator: Orchestrator, capabilities: Capabilities, snapshots: Sequence[RunSnapshot]
) -> dict[str, int]:
    """The schedules of these runs by external id, creating the ones not listed (temporary
    schedules, schedules known only from their runs) without touching the listed ones."""
    wanted = {
        s.schedule_id: (s.schedule_title or s.schedule_id, s.schedule_is_temporary)
        for s in snapshots
        if s.schedule_id
    }
    schedule_ids = schedules_ensure(orchestrator, wanted)
    if capabilities.schedule_titles_from_runs:
        _schedules_name(orchestrator, snapshots)
    return schedule_ids


def _schedules_name(orchestrator: Orchestrator, snapshots: Sequence[RunSnapshot]) -> None:
    """A schedule named only by its runs (a Testsigma plan: execution.name) keeps that name."""
    names = {s.schedule_id: s.schedule_title[:300] for s in snapshots if s.schedule_title}
    renamed = [
        Schedule(pk=pk, title=names[key])
        for key, pk, title in Schedule.objects.filter(
            orchestrator=orchestrator, external_id__in=list(names)
        ).values_list("external_id", "pk", "title")
        if title != names[key]
    ]
    if renamed:
        Schedule.objects.bulk_update(renamed, ["title"])
        revision_bump(catalog=True)


def agents_ensure(orchestrator: Orchestrator, results: list[ResultSnapshot]) -> dict[str, int]:
    # Results name their agent but not its host: they never blank what a listing said.
    rows = {
        r.agent_id: {"title": (r.agent_title or r.agent_id)[:300], "host": ""}
        for r in results
        if r.agent_id
    }
    return upsert_by_external_id(Agent, orchestrator, rows, ["title"])


def cases_upsert(orchestrator: Orchestrator, results: list[ResultSnapshot]) -> dict[str, int]:
    rows = {
        r.test_case_id: {"title": (r.case_title or r.case_key)[:300], "suite": r.suite[:300]}
        for r in results
    }
    return upsert_by_external_id(TestCase, orchestrator, rows, ["title", "suite"])
