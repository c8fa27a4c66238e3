"""Write: store the runs and results of a batch as classify decided, in a fixed number of
queries whatever the number of results.

Rows go through runs.services.sync.catalog's upsert (the ORM's bulk_create), but results,
which runs.services.sql streams by COPY on PostgreSQL; what the ORM cannot write (COPY,
pruning results gone upstream) lives in runs.services.sql.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from runs.models import ExecutionResult, Orchestrator, Run, Schedule
from runs.orchestrators.base import (
    Capabilities,
    RunSnapshot,
)
from runs.services import agent_counts, attempts, notifications, sql
from runs.services.revision import revision_bump
from runs.services.session import orchestrator_client_class
from runs.services.sync import catalog
from runs.services.sync.classify import (
    RESULT_COLUMNS,
    Changes,
    changes_classify,
    failure_fingerprints,
    failure_groups_seen,
    result_groups_of,
    result_row,
    run_trigger,
    run_values,
    snapshot_fingerprint,
)

# One thread fingerprints a batch's failures while its writes wait on the database.
_FINGERPRINTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprints")

# Serializes the writes of concurrent passes over one orchestrator (PostgreSQL advisory lock
# namespace; the other key is the orchestrator's pk).
LOCK_NAMESPACE = 0x52554E42
RUN_KEY = ["orchestrator_id", "external_id", "attempt"]
RUN_FIELDS = [
    *("schedule_id", "vendor_schedule_id", "status", "vendor_status", "started_at"),
    *("finished_at", "duration", "build", "environment", "version", "correlation_id"),
    *("message", "vendor_triggered_by", "total_count", "passed_count", "failed_count"),
    *("other_count", "queued_count", "running_count", "vanished_at", "parent_external_id"),
    *("latest_sibling_id", "fingerprint", "synced_at"),
]
RESULT_FIELDS = [
    *("test_case_id", "agent_id", "case_key", "status", "vendor_status", "started_at"),
    *("finished_at", "duration", "message", "log_excerpt", "seq", "retry_count", "input"),
    *("is_data_driven", "iterations", "fingerprint", "fingerprint_version"),
]


@dataclass
class SyncReport:
    orchestrator: str
    schedules: int = 0
    agents: int = 0
    runs_fetched: int = 0
    runs_created: int = 0
    runs_updated: int = 0
    attempts_created: int = 0
    results_written: int = 0
    vanished: int = 0
    error: str = ""
    started_at: datetime = field(default_factory=timezone.now)

    @property
    def ok(self) -> bool:
        return not self.error

    def __str__(self) -> str:
        text = (
            f"{self.orchestrator}: {self.schedules} schedules, {self.agents} agents, "
            f"{self.runs_fetched} runs fetched ({self.runs_created} new, {self.runs_updated} "
            f"updated, {self.attempts_created} new attempts, {self.vanished} vanished), "
            f"{self.results_written} results written"
        )
        return f"{text}; FAILED: {self.error}" if self.error else text


def runs_mark_vanished(
    *, orchestrator: Orchestrator, external_ids: Sequence[str], now: datetime
) -> int:
    """Runs the orchestrator no longer knows stay as history, marked as vanished."""
    if not external_ids:
        return 0
    with transaction.atomic():
        marked = Run.objects.filter(
            orchestrator=orchestrator, external_id__in=external_ids, vanished_at__isnull=True
        ).update(vanished_at=now)
        if marked:
            revision_bump()
    return marked


# Runs ---------------------------------------------------------------------------------------


def runs_store(
    *,
    orchestrator: Orchestrator,
    snapshots: Sequence[RunSnapshot],
    report: SyncReport | None = None,
    now: datetime | None = None,
) -> dict[str, Run]:
    """Write a batch of run snapshots with their results; return {external_id: latest Run}.

    A fixed number of queries per batch, whatever the number of results.
    """
    report = report or SyncReport(orchestrator=orchestrator.name)
    now = now or timezone.now()
    if not snapshots:
        return {}
    snapshots = list({s.external_id: s for s in snapshots}.values())
    with transaction.atomic():
        # Concurrent passes over one orchestrator each read what the other wrote.
        sql.advisory_xact_lock(LOCK_NAMESPACE, orchestrator.pk)
        return _runs_store(orchestrator, snapshots, report, now)


def _stored_result_ids(capabilities: Capabilities, runs: Iterable[Run]) -> dict[int, set[str]]:
    """The result ids of the finished runs, where only they tell a new attempt."""
    stored: dict[int, set[str]] = {}
    finished = [r.pk for r in runs if r.is_terminal]
    if capabilities.reruns_in_place and finished:
        for run_id, external_id in ExecutionResult.objects.filter(run__in=finished).values_list(
            "run_id", "external_id"
        ):
            stored.setdefault(run_id, set()).add(external_id)
    return stored


def _runs_store(
    orchestrator: Orchestrator, snapshots: list[RunSnapshot], report: SyncReport, now: datetime
) -> dict[str, Run]:
    capabilities = orchestrator_client_class(orchestrator).capabilities
    existing = attempts.attempts_latest(orchestrator, [s.external_id for s in snapshots])
    fingerprints = {s.external_id: snapshot_fingerprint(s) for s in snapshots}
    changes = changes_classify(
        snapshots,
        existing,
        _stored_result_ids(capabilities, existing.values()),
        fingerprints,
        capabilities,
    )
    changed = changes.snapshots
    if not changed:
        return existing
    was = {run.pk: run.status for run in existing.values()}  # before the write updates them
    # The failures' fingerprints are pure Python: made on another thread while this one waits
    # on the database for the catalog and the runs (psycopg lets go of the GIL meanwhile).
    results = [r for s in changed for r in s.results]
    fingerprinting = _FINGERPRINTER.submit(failure_fingerprints, results)
    schedule_ids = catalog.schedule_ids_ensure(orchestrator, capabilities, changed)
    agent_ids, case_ids = (
        catalog.agents_ensure(orchestrator, results),
        catalog.cases_upsert(orchestrator, results),
    )
    values = _RunValues(schedule_ids, capabilities.results_per_agent, fingerprints, now)
    _runs_write(orchestrator, changes, values, report)

    keys = [s.external_id for s in changed]
    latest = {**existing, **attempts.attempts_latest(orchestrator, keys, is_frozen=False)}
    # The agents' and runs' counts follow the results in this transaction: the batch's runs'
    # results grouped before the write and after it (agent_counts). Rows this batch made (new
    # runs, new attempts) hold none before it, and after it exactly the rows written.
    counted = _counted_runs(changes, latest, keys)
    made = {run.pk for key, run in latest.items() if getattr(existing.get(key), "pk", 0) != run.pk}
    before = agent_counts.result_groups(run_pks=counted - made)
    written, causes, made_groups = _results_store(
        {s.external_id: s for s in changed},
        latest,
        agent_ids,
        case_ids,
        new_runs=made,
        fingerprints=fingerprinting.result(),
    )
    report.results_written += written
    # Only runs stored before can hold results gone upstream.
    sql.results_prune(
        [run.pk for run, _ in changes.updates],
        [(run.pk, r.external_id[:200]) for run, s in changes.updates for r in s.results],
    )
    agent_counts.counts_apply(run_pks=counted, before=before, written=made_groups, made=made)
    agent_counts.orchestrator_runs_added(orchestrator.pk, len(made))
    revision_bump()
    _link_parents(orchestrator, changed)
    stored = [latest[key] for key in keys if key in latest]
    schedules_touch(pks=[run.schedule_id for run in stored if run.schedule_id])
    # Webhooks' rows only, in this transaction; nothing here waits for a receiver.
    notifications.runs_stored_notify(orchestrator=orchestrator, runs=stored, was=was, causes=causes)
    return latest


def _counted_runs(changes: Changes, latest: dict[str, Run], keys: list[str]) -> set[int]:
    """The runs whose results this batch writes or prunes: what the agent counts re-tally."""
    return {latest[key].pk for key in keys if key in latest} | {
        run.pk for run, _ in changes.updates
    }


@dataclass(frozen=True)
class _RunValues:
    """What every run of a batch is written with, beside its own snapshot."""

    schedule_ids: dict[str, int]
    per_agent: bool
    fingerprints: dict[str, str]
    now: datetime

    def of(self, snapshot: RunSnapshot, **timing: Any) -> dict[str, Any]:
        return run_values(
            snapshot,
            schedule_ids=self.schedule_ids,
            per_agent=self.per_agent,
            fingerprint=self.fingerprints[snapshot.external_id],
            now=timezone.now(),
            **timing,
        )


def _runs_write(
    orchestrator: Orchestrator, changes: Changes, values: _RunValues, report: SyncReport
) -> None:
    """Create the new runs and attempts, update the changed ones: four statements at most."""
    base = {"orchestrator_id": orchestrator.pk, "attempt": 1, "synced_at": values.now}
    to_create = [
        {
            **base,
            **values.of(s),
            "external_id": s.external_id,
            "trigger": run_trigger(s),
            "variables": dict(s.variables),
        }
        for s in changes.new_runs
    ]
    report.runs_created += len(changes.new_runs)
    for previous, s in changes.new_attempts:
        # The vendor's start is the first attempt's: this one began after `previous` ended.
        timing = {"previous_end": attempts.attempt_end(previous)}
        fields = {**values.of(s, **timing), **attempts.attempt_next_fields(previous)}
        to_create.append(
            {**base, **fields, "external_id": s.external_id, "variables": dict(s.variables)}
        )
    report.attempts_created += len(changes.new_attempts)
    to_update = _runs_updated(orchestrator, changes.updates, values)
    report.runs_updated += len(changes.updates)

    attempts.attempts_freeze(run.pk for run, _ in changes.new_attempts)
    # A row made meanwhile by the rerun service keeps who asked, why and the variables sent;
    # a run on a temporary schedule also keeps the schedule the rerun service gave it (its
    # source's), which sync cannot know.
    on_temporary = [row for row in to_create if row["vendor_schedule_id"] is not None]
    on_listed = [row for row in to_create if row["vendor_schedule_id"] is None]
    catalog.upsert(Run, on_listed, unique=RUN_KEY, update=RUN_FIELDS)
    on_own = [f for f in RUN_FIELDS if f != "schedule_id"]
    catalog.upsert(Run, on_temporary, unique=RUN_KEY, update=on_own)
    catalog.upsert(Run, to_update, unique=RUN_KEY, update=[*RUN_FIELDS, "variables"])


def _runs_updated(
    orchestrator: Orchestrator, updates: list[tuple[Run, RunSnapshot]], values: _RunValues
) -> list[dict[str, Any]]:
    """The rows of runs stored before, with what their new snapshot says."""
    rows = []
    previous_ends = attempts.previous_attempt_ends(orchestrator, [run for run, _ in updates])
    for run, snapshot in updates:
        timing = {
            "previous_end": previous_ends.get(run.pk),
            "started_before": run.started_at if run.pk in previous_ends else None,
        }
        for name, value in values.of(snapshot, **timing).items():
            setattr(run, name, value)
        if snapshot.variables:
            run.variables = dict(snapshot.variables)
        run.synced_at = values.now
        rows.append(_row(run))
    return rows


def _row(instance: models.Model) -> dict[str, Any]:
    """Every column of a loaded instance but its primary key, by attname."""
    return {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if not f.primary_key
    }


def _results_store(
    changed: dict[str, RunSnapshot],
    latest: dict[str, Run],
    agent_ids: dict[str, int],
    case_ids: dict[str, int],
    *,
    new_runs: set[int],
    fingerprints: dict[tuple[str, str], str],
) -> tuple[int, dict[str, int], agent_counts.Groups]:
    """Upsert the results of the changed runs (COPY and one merge on PostgreSQL); the runs
    the batch created (`new_runs`) have none stored yet. Returns how many were written, the
    failure groups this made ({fingerprint: pk}), and the new runs' results grouped as
    agent_counts.result_groups would read them back."""
    rows = [
        result_row(
            r, run_id=run_id, case_ids=case_ids, agent_ids=agent_ids, fingerprints=fingerprints
        )
        for key, snapshot in changed.items()
        if key in latest
        for run_id in (latest[key].pk,)
        for r in snapshot.results
    ]
    written = sql.results_upsert(RESULT_COLUMNS, rows, update=RESULT_FIELDS, new_runs=new_runs)
    causes = sql.failure_groups_upsert(failure_groups_seen(rows))
    return written, causes, result_groups_of(rows, runs=new_runs)


def _link_parents(orchestrator: Orchestrator, snapshots: Sequence[RunSnapshot]) -> None:
    """Link reruns to the run they derive from (Testsigma reRunParentId), once both are known:
    the batch's runs to their parents, and runs stored before to parents in this batch."""
    batch = [s.external_id for s in snapshots]
    orphans = list(
        Run.objects.filter(orchestrator=orchestrator, rerun_of__isnull=True, attempt=1)
        .exclude(parent_external_id="")
        .filter(Q(external_id__in=batch) | Q(parent_external_id__in=batch))
        .only("pk", "external_id", "parent_external_id")
    )
    if not orphans:
        return
    parents = attempts.attempts_latest(orchestrator, {run.parent_external_id for run in orphans})
    linked = []
    for run in orphans:
        parent = parents.get(run.parent_external_id)
        if parent and parent.pk != run.pk:
            run.rerun_of_id = parent.pk
            linked.append(run)
    if linked:
        Run.objects.bulk_update(linked, ["rerun_of"])


def schedules_touch(*, pks: Iterable[int] | None = None) -> None:
    """Keep these schedules' newest run and its start (every schedule's without `pks`), in
    one statement: the writer calls it for the schedules of each batch it stores."""
    newest = Run.objects.filter(schedule_id=OuterRef("pk")).order_by("-started_at", "-id")
    schedules = Schedule.objects.all()
    if pks is not None:
        pks = sorted(set(pks))
        if not pks:
            return
        schedules = schedules.filter(pk__in=pks)
    schedules.update(
        last_run_at=Subquery(newest.values("started_at")[:1]),
        latest_run=Subquery(newest.values("pk")[:1]),
    )
