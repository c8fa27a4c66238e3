"""Attempts: a run worked again in place is kept as one Run per attempt.

A Conductor rerun, retry or restart keeps its workflowId (`Capabilities.reruns_in_place`).
The Run Runboard holds stays frozen as attempt N with its results and permalink; attempt N+1
is a new Run with `rerun_of` = attempt N. Sync makes it when it sees a finished execution
change; the rerun service makes it when it sends the rerun. The unique key (orchestrator,
external id, attempt) decides which writer wins; the other reuses the row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from runs.models import Orchestrator, Run, Trigger
from runs.orchestrators.base import RunSnapshot


def attempt_started_at(snapshot: RunSnapshot, *, after: datetime | None = None) -> datetime | None:
    """When this attempt of a vendor run began; None when nothing says yet.

    A run worked again in place keeps its startTime and some of its earlier tasks. `after`
    is when the previous attempt ended: what began before it is the previous attempt's, so
    this attempt began with the earliest start (the run's, or a result's queue or start
    time) not before it. A first attempt (`after` None) began when the vendor says, else
    with its earliest result.
    """
    if after is None and snapshot.started_at is not None:
        return snapshot.started_at
    moments = [snapshot.started_at] if after is not None else []
    for result in snapshot.results:
        moments += [result.scheduled_at, result.started_at]
    own = [m for m in moments if m is not None and (after is None or m >= after)]
    return min(own, default=None)


def attempt_changed(existing: Run, snapshot: RunSnapshot, stored_ids: set[str]) -> bool:
    """A run held as finished was worked again in place upstream: a new attempt.

    Each rerun, retry or restart schedules new tasks at once, so new task ids tell; a
    snapshot with no new task that is still running is an older read than the stored one (a
    concurrent pass), not a new attempt.
    """
    if not existing.is_terminal:
        return False
    if {r.external_id for r in snapshot.results} - stored_ids:
        return True
    return bool(
        snapshot.status.is_terminal
        and snapshot.finished_at
        and existing.finished_at
        and snapshot.finished_at > existing.finished_at
    )


def attempt_end(previous: Run) -> datetime:
    """When the attempt after `previous` may have begun at the earliest."""
    return previous.finished_at or previous.started_at


def attempt_next_fields(previous: Run) -> dict[str, Any]:
    """The columns that make a Run the attempt after `previous`."""
    return {"attempt": previous.attempt + 1, "rerun_of_id": previous.pk, "trigger": Trigger.RERUN}


def attempts_freeze(pks: Iterable[int]) -> None:
    """The attempts followed by a new one stay as they were, with results and permalink."""
    pks = list(pks)
    if pks:
        Run.objects.filter(pk__in=pks).update(is_frozen=True)


def attempts_latest(
    orchestrator: Orchestrator, external_ids: Iterable[str], **filters: Any
) -> dict[str, Run]:
    """{external id: its latest attempt} of these vendor runs, in one query."""
    latest: dict[str, Run] = {}
    for run in Run.objects.filter(
        orchestrator=orchestrator, external_id__in=list(external_ids), **filters
    ).order_by("external_id", "attempt"):
        latest[run.external_id] = run  # the highest attempt wins
    return latest


def attempt_follow(previous: Run, *, external_id: str, fields: dict[str, Any]) -> tuple[Run, bool]:
    """The attempt after `previous` that a rerun in place started (the rerun service's side),
    and whether this made it (sync may have found it first)."""
    attempts_freeze([previous.pk])
    next_fields = attempt_next_fields(previous)
    return Run.objects.update_or_create(
        orchestrator=previous.orchestrator,
        external_id=external_id,
        attempt=next_fields["attempt"],
        defaults=fields,
        create_defaults={**fields, "status": "queued", "started_at": timezone.now()},
    )


def previous_attempt_ends(orchestrator: Orchestrator, runs: Sequence[Run]) -> dict[int, datetime]:
    """{pk: when the attempt before it ended} of the later attempts among `runs`, in one query.

    An update must not put a later attempt's start back to the vendor's first start; where
    the attempt before is not known to have ended, the start already stored is the bound.
    """
    later = [run for run in runs if run.attempt > 1]
    if not later:
        return {}
    ends = {
        (external_id, attempt): finished_at
        for external_id, attempt, finished_at in Run.objects.filter(
            orchestrator=orchestrator, external_id__in={run.external_id for run in later}
        ).values_list("external_id", "attempt", "finished_at")
    }
    return {run.pk: ends.get((run.external_id, run.attempt - 1)) or run.started_at for run in later}
