"""Classify: snapshots to row values, and what a batch changes. Pure: no database.

Everything sync decides about a snapshot is here (its columns, counts, start of this attempt,
fingerprint, whether it is new, a new attempt, an update or nothing), so it can be read and
tested without a database; runs.services.sync.write only stores what this decided.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any

from django.utils import timezone

from runs.models import Run, Trigger
from runs.orchestrators.base import Capabilities, ResultSnapshot, RunSnapshot, ScheduleSnapshot
from runs.services.attempts import attempt_changed, attempt_started_at
from runs.services.fingerprints import (
    FINGERPRINT_VERSION,
    failure_fingerprint,
    failure_normalize,
)
from runs.services.standing import run_counts
from runs.status import FAILURES

# Every field of a snapshot, in declaration order: a field added later joins the digest.
_RUN_FIELDS = attrgetter(*(f.name for f in fields(RunSnapshot) if f.name != "results"))
_RESULT_FIELDS = attrgetter(*(f.name for f in fields(ResultSnapshot)))


def snapshot_fingerprint(snapshot: RunSnapshot) -> str:
    """A digest of everything a snapshot says, results included: equal digests, nothing to write.

    The repr of each snapshot's field values: as canonical as the dataclasses' own repr, at
    half its cost per result (no generated __repr__ per result, no recursion guard).
    """
    text = repr((_RUN_FIELDS(snapshot), [_RESULT_FIELDS(r) for r in snapshot.results]))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Changes:
    """What a batch of snapshots changes, against the runs stored before."""

    new_runs: list[RunSnapshot] = field(default_factory=list)
    new_attempts: list[tuple[Run, RunSnapshot]] = field(default_factory=list)
    updates: list[tuple[Run, RunSnapshot]] = field(default_factory=list)

    @property
    def snapshots(self) -> list[RunSnapshot]:
        return [*self.new_runs, *(s for _, s in self.new_attempts), *(s for _, s in self.updates)]


def changes_classify(
    snapshots: Sequence[RunSnapshot],
    existing: Mapping[str, Run],
    stored_ids: Mapping[int, set[str]],
    fingerprints: Mapping[str, str],
    capabilities: Capabilities,
) -> Changes:
    """Sort a batch into new runs, new attempts (runs worked again in place) and updates."""
    changes = Changes()
    for snapshot in snapshots:
        run = existing.get(snapshot.external_id)
        if run is None:
            changes.new_runs.append(snapshot)
        elif capabilities.reruns_in_place and attempt_changed(
            run, snapshot, stored_ids.get(run.pk, set())
        ):
            changes.new_attempts.append((run, snapshot))
        elif run.is_terminal and not snapshot.status.is_terminal:
            continue  # an older read than the one stored (a concurrent pass): keep the newer
        elif run.fingerprint != fingerprints[snapshot.external_id] or run.vanished_at is not None:
            changes.updates.append((run, snapshot))
    return changes


def run_trigger(snapshot: RunSnapshot) -> str:
    if snapshot.parent_external_id:
        return Trigger.RERUN
    return snapshot.trigger if snapshot.trigger in Trigger.values else Trigger.SCHEDULED


def _attempt_timing(
    snapshot: RunSnapshot, previous_end: datetime | None, started_before: datetime | None
) -> tuple[datetime | None, Any]:
    """(this attempt's start, its duration)."""
    started = attempt_started_at(snapshot, after=previous_end) or started_before
    # The vendor's duration runs from its own start: only good when that is this attempt's.
    duration = snapshot.duration if started == snapshot.started_at else None
    if duration is None and snapshot.finished_at and started:
        duration = snapshot.finished_at - started
    return started, duration


def run_values(
    snapshot: RunSnapshot,
    *,
    schedule_ids: Mapping[str, int],
    per_agent: bool,
    fingerprint: str,
    now: datetime,
    previous_end: datetime | None = None,
    started_before: datetime | None = None,
) -> dict[str, Any]:
    """The columns of a Run from its snapshot, for every writer (new run, new attempt, update).

    `previous_end`: when the attempt before this one ended (attempts after the first), so the
    run's own start is not the vendor's first start. `started_before`: the start already
    stored, kept while the snapshot tells none (a rerun row made when Runboard sent it).
    """
    counts = run_counts(snapshot.results, per_agent=per_agent)
    started, duration = _attempt_timing(snapshot, previous_end, started_before)
    schedule = {"schedule_id": schedule_ids.get(snapshot.schedule_id), "vendor_schedule_id": None}
    if snapshot.schedule_is_temporary:
        # A temporary schedule (Leapwork's Run Flow by Id) is the vendor's, never Runboard's:
        # the run keeps the schedule it has (a rerun's: its source's).
        schedule = {"vendor_schedule_id": schedule_ids.get(snapshot.schedule_id)}
    return {
        **schedule,
        "status": snapshot.status.value,
        "vendor_status": snapshot.vendor_status[:100],
        # Never empty (history pages paginate by it): a run not started yet shows when seen.
        "started_at": started or now,
        "finished_at": snapshot.finished_at,
        "duration": duration,
        "build": snapshot.build[:200],
        "environment": snapshot.environment[:200],
        "version": snapshot.version[:50],
        "correlation_id": snapshot.correlation_id[:300],
        "message": snapshot.message,
        "vendor_triggered_by": snapshot.triggered_by[:200],
        "total_count": counts.total,
        "passed_count": counts.passed,
        "failed_count": counts.failed,
        "other_count": counts.other,
        "queued_count": counts.queued,
        "running_count": counts.running,
        "vanished_at": None,
        "parent_external_id": snapshot.parent_external_id[:200],
        "latest_sibling_id": snapshot.latest_sibling_id[:200],
        "fingerprint": fingerprint,
    }


# The columns of a result row, in the order result_row gives them (the order COPY streams).
RESULT_COLUMNS = (
    *("run_id", "external_id", "test_case_id", "agent_id", "case_key", "status"),
    *("vendor_status", "started_at", "finished_at", "duration", "message", "log_excerpt"),
    *("seq", "retry_count", "input", "is_data_driven", "iterations"),
    *("fingerprint", "fingerprint_version"),
)


def failure_fingerprints(results: Iterable[ResultSnapshot]) -> dict[tuple[str, str], str]:
    """{(message, log excerpt): fingerprint} of the failures among `results`, each text
    hashed once however often it failed."""
    made: dict[tuple[str, str], str] = {}
    for r in results:
        if r.status in FAILURES and (key := (r.message, r.log_excerpt)) not in made:
            made[key] = failure_fingerprint(*key)[0]
    return made


def result_row(
    result: ResultSnapshot,
    *,
    run_id: int | None,
    case_ids: Mapping[str, int],
    agent_ids: Mapping[str, int],
    fingerprints: Mapping[tuple[str, str], str] | None = None,
) -> tuple[Any, ...]:
    """The columns of an ExecutionResult from its snapshot, in RESULT_COLUMNS order; a
    failure's fingerprint from `fingerprints` (failure_fingerprints) when given.

    A tuple, not a dict: sync builds one per result of a batch (tens of thousands), so this
    stays a single expression with nothing done twice.
    """
    r = result
    duration = r.duration
    if duration is None and r.finished_at and r.started_at:
        duration = r.finished_at - r.started_at
    fingerprint = ""
    if r.status in FAILURES:
        key = (r.message, r.log_excerpt)
        fingerprint = (fingerprints or {}).get(key) or failure_fingerprint(*key)[0]
    return (
        run_id,
        r.external_id[:200],
        case_ids.get(r.case_external_id or r.case_key),
        agent_ids.get(r.agent_id),
        r.case_key[:300],
        r.status.value,
        r.vendor_status[:100],
        _aware(r.started_at),
        _aware(r.finished_at),
        duration,
        r.message,
        r.log_excerpt,
        r.seq,
        r.retry_count,
        dict(r.input),
        r.is_data_driven,
        [
            {
                "id": i.external_id,
                "name": i.title,
                "status": i.status.value,
                "vendor_status": i.vendor_status,
            }
            for i in r.iterations
        ]
        if r.iterations
        else [],
        fingerprint,
        FINGERPRINT_VERSION if fingerprint else 0,
    )


def _aware(value: datetime | None) -> datetime | None:
    """What the ORM stores for a naive datetime (the current time zone's), so COPY does too."""
    if value is None or value.tzinfo is not None:
        return value
    return timezone.make_aware(value)


def result_values(
    result: ResultSnapshot, *, case_ids: Mapping[str, int], agent_ids: Mapping[str, int]
) -> dict[str, Any]:
    """The columns of an ExecutionResult from its snapshot (but its run), by attname."""
    row = result_row(result, run_id=None, case_ids=case_ids, agent_ids=agent_ids)
    return dict(zip(RESULT_COLUMNS[1:], row[1:], strict=True))


def schedule_values(snapshot: ScheduleSnapshot) -> dict[str, Any]:
    """The columns of a listed Schedule from its snapshot."""
    return {
        "title": snapshot.title[:300],
        "description": snapshot.description,
        "is_enabled": snapshot.is_enabled,
        "is_temporary": snapshot.is_temporary,
        "steps": [
            {"id": st.external_id, "title": st.title, "index": st.index} for st in snapshot.steps
        ],
        "vanished_at": None,
    }


_RUN = RESULT_COLUMNS.index("run_id")
_EXTERNAL_ID = RESULT_COLUMNS.index("external_id")
_AGENT = RESULT_COLUMNS.index("agent_id")
_STATUS = RESULT_COLUMNS.index("status")
_DATA_DRIVEN = RESULT_COLUMNS.index("is_data_driven")
_STARTED = RESULT_COLUMNS.index("started_at")
_FINGERPRINT = RESULT_COLUMNS.index("fingerprint")
_MESSAGE = RESULT_COLUMNS.index("message")
_LOG = RESULT_COLUMNS.index("log_excerpt")


def result_groups_of(
    rows: Iterable[tuple[Any, ...]], *, runs: Collection[int]
) -> dict[tuple[int, int | None, str], tuple[int, int, Any]]:
    """agent_counts.result_groups of `runs` from the result rows written for them, without
    reading them back: a run's results are grouped by agent and status, each result once (a
    key repeated in `rows`: the last stands, as sql.results_upsert stores it)."""
    stored = {(row[_RUN], row[_EXTERNAL_ID]): row for row in rows if row[_RUN] in runs}
    groups: dict[tuple[int, int | None, str], list[Any]] = {}
    for row in stored.values():
        group = groups.setdefault((row[_RUN], row[_AGENT], row[_STATUS]), [0, 0, None])
        group[0] += 1
        group[1] += 1 if row[_DATA_DRIVEN] else 0
        if (started := row[_STARTED]) is not None and (group[2] is None or started > group[2]):
            group[2] = started
    return {key: (n, data_driven, last) for key, (n, data_driven, last) in groups.items()}


def failure_groups_seen(rows: Iterable[tuple[Any, ...]]) -> list[tuple[str, int, str, Any, Any]]:
    """The causes among a batch's result rows: (fingerprint, version, normalized text, first
    and last start), each normalized once whatever the number of its failures."""
    seen: dict[str, list[Any]] = {}
    for row in rows:
        if not (fingerprint := row[_FINGERPRINT]):
            continue
        started = row[_STARTED]
        if (group := seen.get(fingerprint)) is None:
            seen[fingerprint] = [row, started, started]
        elif started is not None:
            group[1] = started if group[1] is None else min(group[1], started)
            group[2] = started if group[2] is None else max(group[2], started)
    return [
        (fingerprint, FINGERPRINT_VERSION, failure_normalize(row[_MESSAGE], row[_LOG]), first, last)
        for fingerprint, (row, first, last) in seen.items()
    ]
