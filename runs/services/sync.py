"""Sync: the only code that turns orchestrator snapshots into rows.

One pass per orchestrator asks only for what may have changed (new runs of each schedule
since the last pass, every run not yet terminal), then writes in bulk, a batch of runs at a
time, so the number of queries grows with the number of runs, never with their results.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.duration import duration_microseconds

from runs.models import (
    Agent,
    ExecutionResult,
    Orchestrator,
    OrchestratorKind,
    Run,
    Schedule,
    TestCase,
    Trigger,
)
from runs.orchestrators.base import (
    AgentSnapshot,
    NotFound,
    OrchestratorClient,
    OrchestratorError,
    ResultSnapshot,
    RunSnapshot,
    ScheduleSnapshot,
)
from runs.services.errors import TrackError
from runs.services.session import orchestrator_session
from runs.status import IN_PROGRESS, Status

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
# Incremental passes look back a little before the last one, for clocks that disagree.
OVERLAP = timedelta(minutes=10)
# How far back a Testsigma pass walks reRunParentId links it has not seen.
MAX_PARENT_HOPS = 20
BACKOFF_CAP = timedelta(minutes=30)
# Serializes the writes of concurrent passes over one orchestrator (PostgreSQL advisory lock
# namespace; the other key is the orchestrator's pk).
LOCK_NAMESPACE = 0x52554E42

RUN_FIELDS = [
    "schedule",
    "vendor_schedule",
    "status",
    "vendor_status",
    "started_at",
    "finished_at",
    "duration",
    "build",
    "environment",
    "version",
    "correlation_id",
    "message",
    "vendor_triggered_by",
    "total_count",
    "passed_count",
    "failed_count",
    "other_count",
    "queued_count",
    "running_count",
    "vanished_at",
    "parent_external_id",
    "latest_sibling_id",
    "fingerprint",
]
RESULT_FIELDS = [
    "test_case_id",
    "agent_id",
    "case_key",
    "status",
    "vendor_status",
    "started_at",
    "finished_at",
    "duration",
    "message",
    "log_excerpt",
    "seq",
    "retry_count",
    "input",
    "is_data_driven",
    "iterations",
]
SCHEDULE_FIELDS = ["title", "description", "is_enabled", "is_temporary", "steps", "vanished_at"]


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


# The pass ----------------------------------------------------------------------------------


def orchestrator_sync(
    *,
    orchestrator: Orchestrator,
    client: OrchestratorClient | None = None,
    now: datetime | None = None,
) -> SyncReport:
    """One sync pass; any failure is recorded on the Orchestrator, never raised."""
    now = now or timezone.now()
    report = SyncReport(orchestrator=orchestrator.name, started_at=now)
    # Another pass (another worker) may have moved it on since this instance was loaded.
    orchestrator.refresh_from_db(fields=["last_synced_at", "consecutive_failures"])
    try:
        with orchestrator_session(orchestrator, client=client) as session:
            _sync(orchestrator, session, report, now)
    except OrchestratorError as exc:
        report.error = str(exc)
        logger.warning("sync of %s failed: %s", orchestrator.name, exc)
    except Exception as exc:  # one orchestrator's bug must not stop the others
        report.error = f"Internal error while syncing: {exc.__class__.__name__}: {exc}"
        logger.exception("sync of %s failed", orchestrator.name)
    _record_outcome(orchestrator, report, now)
    return report


def _record_outcome(orchestrator: Orchestrator, report: SyncReport, now: datetime) -> None:
    rows = Orchestrator.objects.filter(pk=orchestrator.pk)
    if report.ok:
        values: dict[str, Any] = {
            "last_synced_at": now,
            "last_sync_error": "",
            "last_sync_error_at": None,
            "consecutive_failures": 0,
            "next_sync_after": None,
        }
    else:
        failures = orchestrator.consecutive_failures + 1
        # One interval after the first failure, doubling up to the cap.
        delay = timedelta(seconds=settings.RUNBOARD_SYNC_INTERVAL * 2 ** (failures - 1))
        values = {
            "last_sync_error": report.error,
            "last_sync_error_at": now,
            "consecutive_failures": failures,
            "next_sync_after": now + min(delay, BACKOFF_CAP),
        }
    rows.update(**values)
    for name, value in values.items():
        setattr(orchestrator, name, value)


def _sync(
    orchestrator: Orchestrator, client: OrchestratorClient, report: SyncReport, now: datetime
) -> None:
    schedules = client.list_schedules()
    agents = client.list_agents()
    if orchestrator.kind == OrchestratorKind.TESTSIGMA:
        # Testsigma lists no plans: the configured ids are created once, named by their runs.
        report.schedules = len(
            _schedules_ensure(orchestrator, {s.external_id: (s.title, False) for s in schedules})
        )
    else:
        report.schedules = len(schedules_upsert(orchestrator=orchestrator, schedules=schedules))
    report.agents = len(agents_upsert(orchestrator=orchestrator, agents=agents))
    _mark_vanished_schedules(orchestrator, {s.external_id for s in schedules}, now)

    first_pass = orchestrator.last_synced_at is None
    since = (
        now - timedelta(days=settings.RUNBOARD_HISTORY_DAYS)
        if first_pass
        else orchestrator.last_synced_at - OVERLAP
    )
    wanted = _run_ids_to_fetch(
        orchestrator, client, schedules, since=since, incremental=not first_pass
    )
    _fetch_and_store(orchestrator, client, wanted, report, now=now)
    if orchestrator.kind == OrchestratorKind.TESTSIGMA:
        _follow_testsigma_lineage(orchestrator, client, report, now=now)


def _run_ids_to_fetch(
    orchestrator: Orchestrator,
    client: OrchestratorClient,
    schedules: Sequence[ScheduleSnapshot],
    *,
    since: datetime,
    incremental: bool,
) -> list[str]:
    """New runs of each schedule since the last pass, then every known run not yet terminal."""
    candidates: dict[str, None] = {}
    limit = settings.RUNBOARD_HISTORY_RUNS
    for schedule in schedules:
        if orchestrator.kind == OrchestratorKind.CONDUCTOR and incremental:
            # An old execution rerun, retried or restarted in place keeps its start time:
            # only its update time says it changed.
            refs = client.list_runs(schedule.external_id, updated_since=since, limit=limit)
        else:
            refs = client.list_runs(schedule.external_id, since=since, limit=limit)
        for ref in refs:
            candidates[ref.external_id] = None
    if orchestrator.kind != OrchestratorKind.CONDUCTOR:
        # Finished Leapwork and Testsigma runs never change. Conductor ones can, in place (a
        # rerun, retry or restart), and its search lists exactly those updated since.
        known_finished = set(
            Run.objects.filter(
                orchestrator=orchestrator, external_id__in=list(candidates), is_frozen=False
            )
            .exclude(status__in=IN_PROGRESS)
            .values_list("external_id", flat=True)
        )
        candidates = {key: None for key in candidates if key not in known_finished}
    if orchestrator.kind == OrchestratorKind.TESTSIGMA:
        # Each plan's newest known run says (execution.lastRunId) whether a newer one exists.
        newest = (
            Run.objects.filter(schedule=OuterRef("pk"), is_frozen=False)
            .order_by("-started_at", "-id")
            .values("external_id")[:1]
        )
        for external_id in (
            Schedule.objects.filter(orchestrator=orchestrator)
            .annotate(newest=Subquery(newest))
            .exclude(newest=None)
            .values_list("newest", flat=True)
        ):
            candidates[external_id] = None
    for external_id in Run.objects.filter(
        orchestrator=orchestrator,
        status__in=IN_PROGRESS,
        is_frozen=False,
        vanished_at__isnull=True,
    ).values_list("external_id", flat=True):
        candidates[external_id] = None
    return list(candidates)


def _fetch_and_store(
    orchestrator: Orchestrator,
    client: OrchestratorClient,
    external_ids: Sequence[str],
    report: SyncReport,
    *,
    now: datetime,
) -> None:
    """Fetch runs a batch at a time and store each batch, so a failure keeps the batches before."""
    for start in range(0, len(external_ids), BATCH_SIZE):
        snapshots: list[RunSnapshot] = []
        vanished: list[str] = []
        try:
            for external_id in external_ids[start : start + BATCH_SIZE]:
                try:
                    snapshots.append(client.get_run(external_id))
                except NotFound:
                    vanished.append(external_id)
        finally:
            # Whatever was fetched before an error is stored before the error surfaces.
            report.runs_fetched += len(snapshots)
            runs_store(orchestrator=orchestrator, snapshots=snapshots, report=report, now=now)
            report.vanished += runs_mark_vanished(
                orchestrator=orchestrator, external_ids=vanished, now=now
            )


def _follow_testsigma_lineage(
    orchestrator: Orchestrator, client: OrchestratorClient, report: SyncReport, *, now: datetime
) -> None:
    """Testsigma lists no runs: follow each plan's newest run and the reRunParentId links."""
    tried: set[str] = set()
    for _hop in range(MAX_PARENT_HOPS):
        known = set(
            Run.objects.filter(orchestrator=orchestrator).values_list("external_id", flat=True)
        )
        leads = _testsigma_leads(orchestrator) - known - tried
        if not leads:
            return
        tried |= leads
        _fetch_and_store(orchestrator, client, sorted(leads), report, now=now)


def _testsigma_leads(orchestrator: Orchestrator) -> set[str]:
    """Run ids the stored runs point at: their parents and their plans' newest runs."""
    leads: set[str] = set()
    for parent, latest in (
        Run.objects.filter(orchestrator=orchestrator)
        .filter(~Q(parent_external_id="") | ~Q(latest_sibling_id=""))
        .values_list("parent_external_id", "latest_sibling_id")
    ):
        leads.update(value for value in (parent, latest) if value)
    return leads


# Writers -----------------------------------------------------------------------------------


def _upsert_by_external_id(
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
    _upsert_rows(model, changed, unique=["orchestrator_id", "external_id"], update=update)
    if any(row["external_id"] not in pks for row in changed):
        pks = dict(
            model.objects.filter(orchestrator=orchestrator, external_id__in=list(rows)).values_list(
                "external_id", "pk"
            )
        )
    return pks


def schedules_upsert(
    *, orchestrator: Orchestrator, schedules: Iterable[ScheduleSnapshot]
) -> dict[str, int]:
    """Upsert schedules by external id; return {external_id: pk}."""
    rows = {
        s.external_id: {
            "title": s.title[:300],
            "description": s.description,
            "is_enabled": s.is_enabled,
            "is_temporary": s.is_temporary,
            "steps": [
                {"id": st.external_id, "title": st.title, "index": st.index} for st in s.steps
            ],
            "vanished_at": None,
        }
        for s in schedules
    }
    # last_run_at is kept by the run writer: a new schedule starts without one.
    for row in rows.values():
        row["last_run_at"] = None
    return _upsert_by_external_id(Schedule, orchestrator, rows, SCHEDULE_FIELDS)


def agents_upsert(*, orchestrator: Orchestrator, agents: Iterable[AgentSnapshot]) -> dict[str, int]:
    """Upsert agents by external id; return {external_id: pk}."""
    rows = {a.external_id: {"title": a.title[:300], "host": a.host[:300]} for a in agents}
    return _upsert_by_external_id(Agent, orchestrator, rows, ["title", "host"])


def _test_cases_upsert(
    orchestrator: Orchestrator, results: Iterable[ResultSnapshot]
) -> dict[str, int]:
    rows = {
        r.test_case_id: {"title": (r.case_title or r.case_key)[:300], "suite": r.suite[:300]}
        for r in results
    }
    return _upsert_by_external_id(TestCase, orchestrator, rows, ["title", "suite"])


def _mark_vanished_schedules(orchestrator: Orchestrator, listed: set[str], now: datetime) -> None:
    if orchestrator.kind == OrchestratorKind.TESTSIGMA:
        return  # Testsigma lists no plans: the configured ones are all it knows of.
    gone = list(
        Schedule.objects.filter(
            orchestrator=orchestrator, is_temporary=False, vanished_at__isnull=True
        )
        .exclude(external_id__in=listed)
        .values_list("pk", flat=True)
    )
    if gone:
        Schedule.objects.filter(pk__in=gone).update(vanished_at=now)


def runs_mark_vanished(
    *, orchestrator: Orchestrator, external_ids: Sequence[str], now: datetime
) -> int:
    """Runs the orchestrator no longer knows stay as history, marked as vanished."""
    if not external_ids:
        return 0
    return Run.objects.filter(
        orchestrator=orchestrator, external_id__in=external_ids, vanished_at__isnull=True
    ).update(vanished_at=now)


class RunCounts(NamedTuple):
    """A run's cases by where they stand: total = passed + failed + other + queued + running."""

    total: int
    passed: int
    failed: int
    other: int
    queued: int
    running: int


def run_counts(results: Sequence[ResultSnapshot], *, per_agent: bool = False) -> RunCounts:
    """A run's counts over cases: of a case's several tries, the last counts.

    With `per_agent` (Leapwork, where a flow runs once on each agent of its step) each agent's
    run of a case counts on its own. Queued and running cases are not done: they are neither
    "other" nor part of the progress.
    """
    last: dict[tuple[str, str], ResultSnapshot] = {}
    for result in sorted(results, key=lambda r: r.seq):
        key = result.case_key or result.external_id
        last[(key, result.agent_id if per_agent else "")] = result
    statuses = [r.status for r in last.values()]
    passed = sum(1 for s in statuses if s == Status.PASSED)
    failed = sum(1 for s in statuses if s.is_failure)
    queued = sum(1 for s in statuses if s == Status.QUEUED)
    running = sum(1 for s in statuses if s == Status.RUNNING)
    other = len(statuses) - passed - failed - queued - running
    return RunCounts(len(statuses), passed, failed, other, queued, running)


def _attempt_changed(existing: Run, snapshot: RunSnapshot, stored_ids: set[str]) -> bool:
    """A Conductor execution held as finished was rerun, retried or restarted upstream.

    Each of those schedules new tasks at once, so new task ids tell; a snapshot with no new
    task that is still running is an older read than the stored one (a concurrent pass), not
    a new attempt.
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


def _previous_attempt_ends(orchestrator: Orchestrator, runs: Sequence[Run]) -> dict[int, datetime]:
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


def _lock_orchestrator(orchestrator: Orchestrator) -> None:
    """Serialize the stores of concurrent passes over one orchestrator (PostgreSQL; SQLite's
    IMMEDIATE transactions already do), so each reads what the other wrote."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, orchestrator.pk]
            )


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
        _lock_orchestrator(orchestrator)
        return _runs_store(orchestrator, snapshots, report, now)


def _runs_store(
    orchestrator: Orchestrator,
    snapshots: list[RunSnapshot],
    report: SyncReport,
    now: datetime,
) -> dict[str, Run]:
    is_conductor = orchestrator.kind == OrchestratorKind.CONDUCTOR
    existing: dict[str, Run] = {}
    for run in Run.objects.filter(
        orchestrator=orchestrator, external_id__in=[s.external_id for s in snapshots]
    ).order_by("external_id", "attempt"):
        existing[run.external_id] = run  # the highest attempt wins
    stored_ids: dict[int, set[str]] = {}
    if is_conductor:
        finished = [r.pk for r in existing.values() if r.is_terminal]
        if finished:
            for run_id, external_id in ExecutionResult.objects.filter(run__in=finished).values_list(
                "run_id", "external_id"
            ):
                stored_ids.setdefault(run_id, set()).add(external_id)

    fingerprints = {s.external_id: snapshot_fingerprint(s) for s in snapshots}
    new_runs: list[RunSnapshot] = []
    new_attempts: list[tuple[Run, RunSnapshot]] = []
    updates: list[tuple[Run, RunSnapshot]] = []
    for snapshot in snapshots:
        run = existing.get(snapshot.external_id)
        if run is None:
            new_runs.append(snapshot)
        elif is_conductor and _attempt_changed(run, snapshot, stored_ids.get(run.pk, set())):
            new_attempts.append((run, snapshot))
        elif run.is_terminal and not snapshot.status.is_terminal:
            continue  # an older read than the one stored (a concurrent pass): keep the newer
        elif run.fingerprint != fingerprints[snapshot.external_id] or run.vanished_at is not None:
            updates.append((run, snapshot))
    changed = [s for s in new_runs] + [s for _, s in new_attempts] + [s for _, s in updates]
    if not changed:
        return {run.external_id: run for run in existing.values()}

    schedule_ids = _schedule_ids_ensure(orchestrator, changed)
    results = [r for s in changed for r in s.results]
    # Results name their agent but not its host: they never blank what a listing said.
    agent_ids = _upsert_by_external_id(
        Agent,
        orchestrator,
        {
            r.agent_id: {"title": (r.agent_title or r.agent_id)[:300], "host": ""}
            for r in results
            if r.agent_id
        },
        ["title"],
    )
    case_ids = _test_cases_upsert(orchestrator, results)
    per_agent = orchestrator.kind == OrchestratorKind.LEAPWORK

    # New rows as plain dicts: every column, from an unsaved Run's defaults.
    template = _row(Run(orchestrator=orchestrator, synced_at=now))
    to_create: list[dict[str, Any]] = []
    for snapshot in new_runs:
        to_create.append(
            {
                **template,
                **_run_values(snapshot, schedule_ids, per_agent, fingerprints),
                "external_id": snapshot.external_id,
                "trigger": _trigger(snapshot),
                "variables": dict(snapshot.variables),
            }
        )
    report.runs_created += len(new_runs)
    for previous, snapshot in new_attempts:
        # The vendor's start is the first attempt's: this one began after `previous` ended.
        previous_end = previous.finished_at or previous.started_at
        to_create.append(
            {
                **template,
                **_run_values(
                    snapshot, schedule_ids, per_agent, fingerprints, previous_end=previous_end
                ),
                "external_id": snapshot.external_id,
                "attempt": previous.attempt + 1,
                "rerun_of_id": previous.pk,
                "trigger": Trigger.RERUN,
                "variables": dict(snapshot.variables),
            }
        )
    report.attempts_created += len(new_attempts)
    to_update: list[Run] = []
    previous_ends = _previous_attempt_ends(orchestrator, [run for run, _ in updates])
    for run, snapshot in updates:
        values = _run_values(
            snapshot,
            schedule_ids,
            per_agent,
            fingerprints,
            previous_end=previous_ends.get(run.pk),
            started_before=run.started_at if run.pk in previous_ends else None,
        )
        for name, value in values.items():
            setattr(run, name, value)
        if snapshot.variables:
            run.variables = dict(snapshot.variables)
        run.synced_at = now
        to_update.append(run)
    report.runs_updated += len(updates)

    if new_attempts:
        # The attempt Runboard held stays as it was, with its results and permalink.
        Run.objects.filter(pk__in=[run.pk for run, _ in new_attempts]).update(is_frozen=True)
    unique = ["orchestrator_id", "external_id", "attempt"]
    written = [_attname(Run, name) for name in (*RUN_FIELDS, "synced_at")]
    # A row made meanwhile by the rerun service keeps who asked, why and the variables sent;
    # a run on a temporary schedule also keeps the schedule the rerun service gave it (its
    # source's), which sync cannot know.
    on_temporary = [row for row in to_create if row["vendor_schedule_id"] is not None]
    on_listed = [row for row in to_create if row["vendor_schedule_id"] is None]
    _upsert_rows(Run, on_listed, unique=unique, update=written)
    _upsert_rows(
        Run, on_temporary, unique=unique, update=[f for f in written if f != "schedule_id"]
    )
    _upsert_rows(
        Run, [_row(run) for run in to_update], unique=unique, update=[*written, "variables"]
    )

    latest: dict[str, Run] = {run.external_id: run for run in existing.values()}
    for run in Run.objects.filter(
        orchestrator=orchestrator,
        external_id__in=[s.external_id for s in changed],
        is_frozen=False,
    ).order_by("external_id", "attempt"):
        latest[run.external_id] = run
    report.results_written += _results_store(
        {s.external_id: s for s in changed}, latest, agent_ids, case_ids
    )
    # Only runs stored before can hold results gone upstream.
    _results_prune(
        [run.pk for run, _ in updates],
        [(run.pk, r.external_id[:200]) for run, snapshot in updates for r in snapshot.results],
    )
    _link_parents(orchestrator, changed)
    _touch_schedules(
        run.schedule_id
        for run in (latest.get(s.external_id) for s in changed)
        if run is not None and run.schedule_id
    )
    return latest


def _schedule_ids_ensure(
    orchestrator: Orchestrator, snapshots: Sequence[RunSnapshot]
) -> dict[str, int]:
    """The schedules of these runs by external id, creating the ones not listed (temporary
    Leapwork schedules, Testsigma plans) without touching the ones the listing keeps."""
    wanted = {
        s.schedule_id: (s.schedule_title or s.schedule_id, s.schedule_is_temporary)
        for s in snapshots
        if s.schedule_id
    }
    schedule_ids = _schedules_ensure(orchestrator, wanted)
    if orchestrator.kind == OrchestratorKind.TESTSIGMA:
        _testsigma_plans_name(orchestrator, snapshots)
    return schedule_ids


def _schedules_ensure(
    orchestrator: Orchestrator, wanted: dict[str, tuple[str, bool]]
) -> dict[str, int]:
    """{external_id: pk} of these schedules, creating the missing ones as (title, temporary)."""
    if not wanted:
        return {}
    known = dict(
        Schedule.objects.filter(
            orchestrator=orchestrator, external_id__in=list(wanted)
        ).values_list("external_id", "pk")
    )
    missing = [
        {
            "orchestrator_id": orchestrator.pk,
            "external_id": key,
            "title": title[:300],
            "description": "",
            "is_enabled": True,
            "is_temporary": is_temporary,
            "steps": [],
            "vanished_at": None,
            "last_run_at": None,
        }
        for key, (title, is_temporary) in wanted.items()
        if key not in known
    ]
    if not missing:
        return known
    _upsert_rows(Schedule, missing, unique=["orchestrator_id", "external_id"], update=[])
    return dict(
        Schedule.objects.filter(
            orchestrator=orchestrator, external_id__in=list(wanted)
        ).values_list("external_id", "pk")
    )


def _testsigma_plans_name(orchestrator: Orchestrator, snapshots: Sequence[RunSnapshot]) -> None:
    """A Testsigma plan's name is known only from its runs (execution.name): keep it."""
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


def _trigger(snapshot: RunSnapshot) -> str:
    if snapshot.parent_external_id:
        return Trigger.RERUN
    return snapshot.trigger if snapshot.trigger in Trigger.values else Trigger.SCHEDULED


def attempt_started_at(snapshot: RunSnapshot, *, after: datetime | None = None) -> datetime | None:
    """When this attempt of a vendor run began; None when nothing says yet.

    A run worked again in place (a Conductor rerun, retry or restart keeps its workflowId,
    its startTime and some of its earlier tasks) is stored as one Run per attempt. `after` is
    when the previous attempt ended: what began before it is the previous attempt's, so this
    attempt began with the earliest start (the run's, or a result's queue or start time) not
    before it. A first attempt (`after` None) began when the vendor says, else with its
    earliest result.
    """
    if after is None and snapshot.started_at is not None:
        return snapshot.started_at
    moments = [snapshot.started_at] if after is not None else []
    for result in snapshot.results:
        moments += [result.scheduled_at, result.started_at]
    own = [m for m in moments if m is not None and (after is None or m >= after)]
    return min(own, default=None)


def _run_values(
    snapshot: RunSnapshot,
    schedule_ids: dict[str, int],
    per_agent: bool,
    fingerprints: dict[str, str],
    *,
    previous_end: datetime | None = None,
    started_before: datetime | None = None,
) -> dict[str, Any]:
    """The columns of a Run from its snapshot, for every writer (new run, new attempt, update).

    `previous_end`: when the attempt before this one ended (attempts after the first), so the
    run's own start is not the vendor's first start. `started_before`: the start already
    stored, kept while the snapshot tells none (a rerun row made when Runboard sent it).
    """
    counts = run_counts(snapshot.results, per_agent=per_agent)
    started = attempt_started_at(snapshot, after=previous_end) or started_before
    # The vendor's duration runs from its own start: only good when that is this attempt's.
    duration = snapshot.duration if started == snapshot.started_at else None
    if duration is None and snapshot.finished_at and started:
        duration = snapshot.finished_at - started
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
        "started_at": started or timezone.now(),
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
        "fingerprint": fingerprints[snapshot.external_id],
    }


def snapshot_fingerprint(snapshot: RunSnapshot) -> str:
    """A digest of everything a snapshot says, results included: equal digests, nothing to write."""
    return hashlib.sha256(repr(snapshot).encode()).hexdigest()


def _attname(model: type[models.Model], name: str) -> str:
    return model._meta.get_field(name).attname


def _row(instance: models.Model) -> dict[str, Any]:
    """Every column of an unsaved or loaded instance but its primary key, by attname."""
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
) -> int:
    """Upsert the results of the changed runs and drop the ones gone upstream: two queries."""
    rows: list[dict[str, Any]] = []
    for external_id, snapshot in changed.items():
        run = latest.get(external_id)
        if run is None:
            continue
        for r in snapshot.results:
            duration = r.duration
            if duration is None and r.finished_at and r.started_at:
                duration = r.finished_at - r.started_at
            rows.append(
                {
                    "run_id": run.pk,
                    "external_id": r.external_id[:200],
                    "test_case_id": case_ids.get(r.test_case_id),
                    "agent_id": agent_ids.get(r.agent_id),
                    "case_key": r.case_key[:300],
                    "status": r.status.value,
                    "vendor_status": r.vendor_status[:100],
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "duration": duration,
                    "message": r.message,
                    "log_excerpt": r.log_excerpt,
                    "seq": r.seq,
                    "retry_count": r.retry_count,
                    "input": dict(r.input),
                    "is_data_driven": r.is_data_driven,
                    "iterations": [
                        {
                            "id": i.external_id,
                            "name": i.title,
                            "status": i.status.value,
                            "vendor_status": i.vendor_status,
                        }
                        for i in r.iterations
                    ],
                }
            )
    return _upsert_rows(
        ExecutionResult, rows, unique=["run_id", "external_id"], update=RESULT_FIELDS
    )


def _results_prune(run_pks: list[int], keep: list[tuple[int, str]]) -> None:
    """Delete results of these runs that upstream no longer has, in one statement.

    A rerun from a task drops the later tasks from the current attempt; a frozen earlier
    attempt keeps its own copy.
    """
    if not run_pks:
        return
    quote = connection.ops.quote_name
    table = quote(ExecutionResult._meta.db_table)
    payload = json.dumps([{"run_id": pk, "external_id": ext} for pk, ext in keep])
    if connection.vendor == "postgresql":
        kept = (
            "SELECT k.run_id, k.external_id FROM jsonb_to_recordset(%s::jsonb) "
            "AS k(run_id bigint, external_id text)"
        )
    else:
        kept = "SELECT j.value ->> '$.run_id', j.value ->> '$.external_id' FROM json_each(%s) AS j"
    placeholders = ", ".join(["%s"] * len(run_pks))
    sql = (
        f"DELETE FROM {table} WHERE run_id IN ({placeholders}) "
        f"AND (run_id, external_id) NOT IN ({kept})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*run_pks, payload])


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
    parent_pks: dict[str, int] = {}
    for external_id, pk in (
        Run.objects.filter(
            orchestrator=orchestrator,
            external_id__in={run.parent_external_id for run in orphans},
        )
        .order_by("external_id", "attempt")
        .values_list("external_id", "pk")
    ):
        parent_pks[external_id] = pk  # the latest attempt of the parent
    linked = []
    for run in orphans:
        parent = parent_pks.get(run.parent_external_id)
        if parent and parent != run.pk:
            run.rerun_of_id = parent
            linked.append(run)
    if linked:
        Run.objects.bulk_update(linked, ["rerun_of"])


def _touch_schedules(schedule_pks: Iterable[int]) -> None:
    """Keep each schedule's last_run_at, in one statement."""
    pks = sorted(set(schedule_pks))
    if not pks:
        return
    newest = (
        Run.objects.filter(schedule_id=OuterRef("pk"))
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    Schedule.objects.filter(pk__in=pks).update(last_run_at=Subquery(newest))


# Bulk upserts ---------------------------------------------------------------------------------


def _db_converter(field: models.Field) -> Any:
    """How a value of `field` travels in the upsert statement's JSON to this database."""
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        if connection.vendor == "sqlite":
            adapt = connection.ops.adapt_datetimefield_value
            return lambda value: None if value is None else adapt(value)
        return lambda value: None if value is None else value.isoformat()
    if kind == "DurationField":
        return lambda value: None if value is None else duration_microseconds(value)
    return None


def _column_expression(field: models.Field) -> tuple[str, str]:
    """(SELECT expression, jsonb_to_recordset column type) of one column of the JSON rows."""
    quoted = connection.ops.quote_name(field.column)
    kind = field.get_internal_type()
    if connection.vendor == "postgresql":
        if kind == "DurationField":
            return f"x.{quoted} * interval '1 microsecond'", "bigint"
        return f"x.{quoted}", field.db_type(connection) or "text"
    arrow = "->" if kind == "JSONField" else "->>"
    return f"j.value {arrow} '$.{field.column}'", ""


def _upsert_rows(
    model: type[models.Model],
    rows: Iterable[dict[str, Any]],
    *,
    unique: Sequence[str],
    update: Sequence[str],
) -> int:
    """Insert or update `rows` (dicts by attname) in one statement, however many there are.

    The rows travel as a single JSON parameter (PostgreSQL jsonb_to_recordset, SQLite
    json_each), so a batch costs one query whatever its size; rows whose values did not change
    are not rewritten; rows go in key order, so concurrent passes lock them in the same order.
    """
    by_key = {tuple(row[name] for name in unique): row for row in rows}
    if not by_key:
        return 0
    ordered = [by_key[key] for key in sorted(by_key, key=lambda k: tuple(map(str, k)))]
    fields = {f.attname: f for f in model._meta.concrete_fields if not f.primary_key}
    names = list(ordered[0])
    columns_of = [(n, fields[n].column, _db_converter(fields[n])) for n in names]
    payload = json.dumps(
        [
            {
                column: row[n] if convert is None else convert(row[n])
                for n, column, convert in columns_of
            }
            for row in ordered
        ],
        default=str,
    )
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(fields[n].column) for n in names)
    expressions = [_column_expression(fields[n]) for n in names]
    conflict = ", ".join(quote(fields[n].column) for n in unique)
    if connection.vendor == "postgresql":
        record = ", ".join(
            f"{quote(fields[n].column)} {t}" for n, (_, t) in zip(names, expressions, strict=True)
        )
        source = f"FROM jsonb_to_recordset(%s::jsonb) AS x({record})"
        distinct = "IS DISTINCT FROM"
    else:
        source = "FROM json_each(%s) AS j WHERE true"
        distinct = "IS NOT"
    sql = f"INSERT INTO {table} ({columns}) SELECT {', '.join(e for e, _ in expressions)} {source}"
    if update:
        cols = [quote(fields[n].column) for n in update]
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
        changed = " OR ".join(f"{table}.{c} {distinct} excluded.{c}" for c in cols)
        sql += f" ON CONFLICT ({conflict}) DO UPDATE SET {sets} WHERE {changed}"
    else:
        sql += f" ON CONFLICT ({conflict}) DO NOTHING"
    with connection.cursor() as cursor:
        cursor.execute(sql, [payload])
    return len(ordered)


# Single runs ---------------------------------------------------------------------------------


def run_refresh(*, run: Run, client: OrchestratorClient | None = None) -> Run:
    """Fetch one run now (a watched page, a poll) and store it; errors are raised."""
    orchestrator = run.orchestrator
    try:
        with orchestrator_session(orchestrator, client=client) as session:
            snapshot = session.get_run(run.external_id)
    except NotFound:
        runs_mark_vanished(
            orchestrator=orchestrator, external_ids=[run.external_id], now=timezone.now()
        )
        return Run.objects.get(pk=run.pk)
    latest = runs_store(orchestrator=orchestrator, snapshots=[snapshot])
    return latest.get(run.external_id) or Run.objects.get(pk=run.pk)


def run_track(
    *, orchestrator: Orchestrator, external_id: str, client: OrchestratorClient | None = None
) -> Run:
    """Start following a run by its vendor id (Testsigma lists no runs); raises TrackError."""
    try:
        with orchestrator_session(orchestrator, client=client) as session:
            snapshot = session.get_run(external_id.strip())
    except OrchestratorError as exc:
        raise TrackError(str(exc)) from exc
    return runs_store(orchestrator=orchestrator, snapshots=[snapshot])[snapshot.external_id]
