"""Sync: the only code that turns orchestrator snapshots into rows.

One pass per orchestrator asks only for what may have changed (new runs of each schedule
since the last pass, every run not yet terminal), then writes in bulk, a batch of runs at a
time, so the number of queries grows with the number of runs, never with their results.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

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
from runs.orchestrators.registry import client_for
from runs.status import IN_PROGRESS, Status

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
# Incremental passes look back a little before the last one, for clocks that disagree.
OVERLAP = timedelta(minutes=10)
# How far back a Testsigma pass walks reRunParentId links it has not seen.
MAX_PARENT_HOPS = 20
BACKOFF_CAP = timedelta(minutes=30)

RUN_FIELDS = [
    "schedule",
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
    "vanished_at",
    "parent_external_id",
    "latest_sibling_id",
    "fingerprint",
]
RESULT_FIELDS = [
    "test_case",
    "agent",
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


def orchestrator_client(
    orchestrator: Orchestrator, *, transport: httpx.BaseTransport | None = None
) -> OrchestratorClient:
    client = client_for(
        orchestrator.kind,
        orchestrator.base_url,
        orchestrator.credential,
        timeout=settings.RUNBOARD_HTTP_TIMEOUT,
        transport=transport,
    )
    if orchestrator.kind == OrchestratorKind.TESTSIGMA:
        client.test_plan_ids = tuple(str(plan) for plan in orchestrator.test_plan_ids)
    return client


# The pass ----------------------------------------------------------------------------------


def orchestrator_sync(
    *,
    orchestrator: Orchestrator,
    client: OrchestratorClient | None = None,
    now: datetime | None = None,
) -> SyncReport:
    """One sync pass; an orchestrator error is recorded on the Orchestrator, never raised."""
    now = now or timezone.now()
    report = SyncReport(orchestrator=orchestrator.name, started_at=now)
    own_client = client is None
    client = client or orchestrator_client(orchestrator)
    try:
        _sync(orchestrator, client, report, now)
    except OrchestratorError as exc:
        report.error = str(exc)
        logger.warning("sync of %s failed: %s", orchestrator.name, exc)
    finally:
        if own_client:
            client.close()
    _record_outcome(orchestrator, report, now)
    return report


def _record_outcome(orchestrator: Orchestrator, report: SyncReport, now: datetime) -> None:
    rows = Orchestrator.objects.filter(pk=orchestrator.pk)
    if report.ok:
        rows.update(
            last_synced_at=now,
            last_sync_error="",
            last_sync_error_at=None,
            consecutive_failures=0,
            next_sync_after=None,
        )
        orchestrator.last_synced_at, orchestrator.last_sync_error = now, ""
        orchestrator.consecutive_failures, orchestrator.next_sync_after = 0, None
        return
    failures = orchestrator.consecutive_failures + 1
    backoff = min(timedelta(seconds=settings.RUNBOARD_SYNC_INTERVAL * 2**failures), BACKOFF_CAP)
    rows.update(
        last_sync_error=report.error,
        last_sync_error_at=now,
        consecutive_failures=failures,
        next_sync_after=now + backoff,
    )
    orchestrator.last_sync_error, orchestrator.last_sync_error_at = report.error, now
    orchestrator.consecutive_failures, orchestrator.next_sync_after = failures, now + backoff


def _sync(
    orchestrator: Orchestrator, client: OrchestratorClient, report: SyncReport, now: datetime
) -> None:
    schedules = client.list_schedules()
    agents = client.list_agents()
    report.schedules = len(schedules_upsert(orchestrator=orchestrator, schedules=schedules))
    report.agents = len(agents_upsert(orchestrator=orchestrator, agents=agents))
    _mark_vanished_schedules(orchestrator, {s.external_id for s in schedules}, now)

    first_pass = orchestrator.last_synced_at is None
    since = (
        now - timedelta(days=settings.RUNBOARD_HISTORY_DAYS)
        if first_pass
        else orchestrator.last_synced_at - OVERLAP
    )
    wanted = _run_ids_to_fetch(orchestrator, client, schedules, since=since, first_pass=first_pass)
    _fetch_and_store(orchestrator, client, wanted, report, since=since, now=now)
    if orchestrator.kind == OrchestratorKind.TESTSIGMA:
        _follow_testsigma_lineage(orchestrator, client, report, now=now)


def _run_ids_to_fetch(
    orchestrator: Orchestrator,
    client: OrchestratorClient,
    schedules: Sequence[ScheduleSnapshot],
    *,
    since: datetime,
    first_pass: bool,
) -> list[str]:
    """New runs of each schedule since the last pass, then every known run not yet terminal."""
    candidates: dict[str, None] = {}
    for schedule in schedules:
        for ref in client.list_runs(
            schedule.external_id, since=since, limit=settings.RUNBOARD_HISTORY_RUNS
        ):
            candidates[ref.external_id] = None
    known_finished = set(
        _latest_attempts(orchestrator, list(candidates))
        .exclude(status__in=IN_PROGRESS)
        .values_list("external_id", flat=True)
    )
    if orchestrator.kind != OrchestratorKind.CONDUCTOR:
        # Finished Leapwork and Testsigma runs never change; Conductor ones can, in place,
        # and only the search (by update time) says which did.
        candidates = {key: None for key in candidates if key not in known_finished}
    for external_id in Run.objects.filter(
        orchestrator=orchestrator, status__in=IN_PROGRESS, vanished_at__isnull=True
    ).values_list("external_id", flat=True):
        candidates[external_id] = None
    return list(candidates)


def _latest_attempts(orchestrator: Orchestrator, external_ids: Iterable[str]):
    return Run.objects.filter(
        orchestrator=orchestrator, external_id__in=list(external_ids), is_frozen=False
    )


def _fetch_and_store(
    orchestrator: Orchestrator,
    client: OrchestratorClient,
    external_ids: Sequence[str],
    report: SyncReport,
    *,
    since: datetime | None,
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
    for _hop in range(MAX_PARENT_HOPS):
        known = set(
            Run.objects.filter(orchestrator=orchestrator).values_list("external_id", flat=True)
        )
        leads = _testsigma_leads(orchestrator) - known
        if not leads:
            return
        _fetch_and_store(orchestrator, client, sorted(leads), report, since=None, now=now)


def _testsigma_leads(orchestrator: Orchestrator) -> set[str]:
    """Run ids the stored runs point at: their parents and their plans' newest runs."""
    leads: set[str] = set()
    for parent, latest in Run.objects.filter(orchestrator=orchestrator).values_list(
        "parent_external_id", "latest_sibling_id"
    ):
        leads.update(value for value in (parent, latest) if value)
    return leads


# Writers -----------------------------------------------------------------------------------


def schedules_upsert(
    *, orchestrator: Orchestrator, schedules: Iterable[ScheduleSnapshot]
) -> dict[str, int]:
    """Upsert schedules by external id; return {external_id: pk}."""
    rows = {
        s.external_id: Schedule(
            orchestrator=orchestrator,
            external_id=s.external_id,
            title=s.title[:300],
            description=s.description,
            is_enabled=s.is_enabled,
            is_temporary=s.is_temporary,
            steps=[{"id": st.external_id, "title": st.title, "index": st.index} for st in s.steps],
            vanished_at=None,
        )
        for s in schedules
    }
    return _upsert(
        Schedule,
        orchestrator,
        rows,
        ["title", "description", "is_enabled", "is_temporary", "steps", "vanished_at"],
    )


def agents_upsert(*, orchestrator: Orchestrator, agents: Iterable[AgentSnapshot]) -> dict[str, int]:
    rows = {
        a.external_id: Agent(
            orchestrator=orchestrator, external_id=a.external_id, title=a.title[:300], host=a.host
        )
        for a in agents
    }
    return _upsert(Agent, orchestrator, rows, ["title", "host"])


def _upsert(
    model: type[Schedule | Agent | TestCase],
    orchestrator: Orchestrator,
    rows: dict[str, Any],
    update_fields: list[str],
) -> dict[str, int]:
    if rows:
        model.objects.bulk_create(
            rows.values(),
            update_conflicts=True,
            unique_fields=["orchestrator", "external_id"],
            update_fields=update_fields,
            batch_size=500,
        )
    return dict(
        model.objects.filter(orchestrator=orchestrator, external_id__in=list(rows)).values_list(
            "external_id", "pk"
        )
    )


def _mark_vanished_schedules(orchestrator: Orchestrator, listed: set[str], now: datetime) -> None:
    if orchestrator.kind == OrchestratorKind.TESTSIGMA:
        return  # Testsigma lists no plans: the configured ones are all it knows of.
    Schedule.objects.filter(
        orchestrator=orchestrator, is_temporary=False, vanished_at__isnull=True
    ).exclude(external_id__in=listed).update(vanished_at=now)


def runs_mark_vanished(
    *, orchestrator: Orchestrator, external_ids: Sequence[str], now: datetime
) -> int:
    """Runs the orchestrator no longer knows stay as history, marked as vanished."""
    if not external_ids:
        return 0
    return Run.objects.filter(
        orchestrator=orchestrator, external_id__in=external_ids, vanished_at__isnull=True
    ).update(vanished_at=now)


def run_counts(results: Sequence[ResultSnapshot]) -> tuple[int, int, int, int]:
    """(total, passed, failed, other) over cases: of a case's several tries, the last counts."""
    last: dict[str, ResultSnapshot] = {}
    for result in sorted(results, key=lambda r: r.seq):
        last[result.case_key or result.external_id] = result
    statuses = [r.status for r in last.values()]
    passed = sum(1 for s in statuses if s == Status.PASSED)
    failed = sum(1 for s in statuses if s.is_failure)
    return len(statuses), passed, failed, len(statuses) - passed - failed


def _attempt_changed(existing: Run, snapshot: RunSnapshot, stored_ids: set[str]) -> bool:
    """A Conductor execution held as finished changed upstream: rerun, retried or restarted."""
    if not existing.is_terminal:
        return False
    if not snapshot.status.is_terminal:
        return True
    if stored_ids != {r.external_id for r in snapshot.results}:
        return True
    return existing.finished_at != snapshot.finished_at


@transaction.atomic
def runs_store(
    *,
    orchestrator: Orchestrator,
    snapshots: Sequence[RunSnapshot],
    report: SyncReport | None = None,
    now: datetime | None = None,
) -> dict[str, Run]:
    """Write a batch of run snapshots with their results; return {external_id: latest Run}."""
    report = report or SyncReport(orchestrator=orchestrator.name)
    now = now or timezone.now()
    if not snapshots:
        return {}
    snapshots = list({s.external_id: s for s in snapshots}.values())
    schedule_ids = _schedule_ids_ensure(orchestrator, snapshots)
    results = [r for s in snapshots for r in s.results]
    agent_ids = agents_upsert(
        orchestrator=orchestrator,
        agents={
            r.agent_id: AgentSnapshot(r.agent_id, r.agent_title or r.agent_id)
            for r in results
            if r.agent_id
        }.values(),
    )
    case_ids = _upsert(
        TestCase,
        orchestrator,
        {
            r.test_case_id: TestCase(
                orchestrator=orchestrator,
                external_id=r.test_case_id,
                title=(r.case_title or r.case_key)[:300],
                suite=r.suite[:300],
            )
            for r in results
        },
        ["title", "suite"],
    )

    existing: dict[str, Run] = {}
    for run in Run.objects.filter(
        orchestrator=orchestrator, external_id__in=[s.external_id for s in snapshots]
    ).order_by("external_id", "attempt"):
        existing[run.external_id] = run  # the highest attempt wins
    stored_ids: dict[int, set[str]] = {}
    if orchestrator.kind == OrchestratorKind.CONDUCTOR:
        finished = [r.pk for r in existing.values() if r.is_terminal]
        for run_id, external_id in ExecutionResult.objects.filter(run__in=finished).values_list(
            "run_id", "external_id"
        ):
            stored_ids.setdefault(run_id, set()).add(external_id)

    to_create: list[Run] = []
    to_update: list[Run] = []
    to_freeze: list[int] = []
    changed: dict[str, RunSnapshot] = {}
    for snapshot in snapshots:
        values = _run_values(snapshot, schedule_ids)
        run = existing.get(snapshot.external_id)
        if (
            run is not None
            and orchestrator.kind == OrchestratorKind.CONDUCTOR
            and _attempt_changed(run, snapshot, stored_ids.get(run.pk, set()))
        ):
            to_freeze.append(run.pk)
            to_create.append(
                Run(
                    orchestrator=orchestrator,
                    external_id=snapshot.external_id,
                    attempt=run.attempt + 1,
                    rerun_of_id=run.pk,
                    trigger=Trigger.RERUN,
                    variables=dict(snapshot.variables),
                    synced_at=now,
                    **values,
                )
            )
            report.attempts_created += 1
            changed[snapshot.external_id] = snapshot
        elif run is None:
            to_create.append(
                Run(
                    orchestrator=orchestrator,
                    external_id=snapshot.external_id,
                    trigger=_trigger(snapshot),
                    variables=dict(snapshot.variables),
                    synced_at=now,
                    **values,
                )
            )
            report.runs_created += 1
            changed[snapshot.external_id] = snapshot
        elif run.fingerprint != values["fingerprint"] or run.vanished_at is not None:
            for name, value in values.items():
                setattr(run, name, value)
            if snapshot.variables:
                run.variables = dict(snapshot.variables)
            run.synced_at = now
            to_update.append(run)
            report.runs_updated += 1
            changed[snapshot.external_id] = snapshot

    if to_freeze:
        Run.objects.filter(pk__in=to_freeze).update(is_frozen=True)
    if to_create:
        Run.objects.bulk_create(
            to_create,
            update_conflicts=True,
            unique_fields=["orchestrator", "external_id", "attempt"],
            update_fields=[*RUN_FIELDS, "synced_at"],
        )
    if to_update:
        Run.objects.bulk_update(to_update, [*RUN_FIELDS, "variables", "synced_at"])

    latest: dict[str, Run] = {}
    for run in Run.objects.filter(
        orchestrator=orchestrator, external_id__in=list(changed), is_frozen=False
    ).order_by("external_id", "attempt"):
        latest[run.external_id] = run
    report.results_written += _results_store(changed, latest, agent_ids, case_ids)
    _link_parents(orchestrator, snapshots)
    if schedule_ids:
        _touch_schedules(orchestrator, schedule_ids)
    return latest


def _schedule_ids_ensure(
    orchestrator: Orchestrator, snapshots: Sequence[RunSnapshot]
) -> dict[str, int]:
    """The schedules of these runs by external id, creating the ones not listed (temporary
    Leapwork schedules, Testsigma plans) without touching the ones the listing keeps."""
    wanted = {s.schedule_id: s for s in snapshots if s.schedule_id}
    known = dict(
        Schedule.objects.filter(
            orchestrator=orchestrator, external_id__in=list(wanted)
        ).values_list("external_id", "pk")
    )
    missing = [
        Schedule(
            orchestrator=orchestrator,
            external_id=key,
            title=(snapshot.schedule_title or key)[:300],
            is_temporary=snapshot.schedule_is_temporary,
        )
        for key, snapshot in wanted.items()
        if key not in known
    ]
    if not missing:
        return known
    Schedule.objects.bulk_create(missing, ignore_conflicts=True)
    return dict(
        Schedule.objects.filter(
            orchestrator=orchestrator, external_id__in=list(wanted)
        ).values_list("external_id", "pk")
    )


def _trigger(snapshot: RunSnapshot) -> str:
    if snapshot.parent_external_id:
        return Trigger.RERUN
    return snapshot.trigger if snapshot.trigger in Trigger.values else Trigger.SCHEDULED


def _run_values(snapshot: RunSnapshot, schedule_ids: dict[str, int]) -> dict[str, Any]:
    total, passed, failed, other = run_counts(snapshot.results)
    started = snapshot.started_at or timezone.now()
    duration = snapshot.duration
    if duration is None and snapshot.finished_at and snapshot.started_at:
        duration = snapshot.finished_at - snapshot.started_at
    return {
        "schedule_id": schedule_ids.get(snapshot.schedule_id),
        "status": snapshot.status.value,
        "vendor_status": snapshot.vendor_status[:100],
        "started_at": started,
        "finished_at": snapshot.finished_at,
        "duration": duration,
        "build": snapshot.build[:200],
        "environment": snapshot.environment[:200],
        "version": snapshot.version[:50],
        "correlation_id": snapshot.correlation_id[:300],
        "message": snapshot.message,
        "vendor_triggered_by": snapshot.triggered_by[:200],
        "total_count": total,
        "passed_count": passed,
        "failed_count": failed,
        "other_count": other,
        "vanished_at": None,
        "parent_external_id": snapshot.parent_external_id[:200],
        "latest_sibling_id": snapshot.latest_sibling_id[:200],
        "fingerprint": snapshot_fingerprint(snapshot),
    }


def snapshot_fingerprint(snapshot: RunSnapshot) -> str:
    """A digest of everything a snapshot says, results included: equal digests, nothing to write."""
    return hashlib.sha256(repr(snapshot).encode()).hexdigest()


def _results_store(
    changed: dict[str, RunSnapshot],
    latest: dict[str, Run],
    agent_ids: dict[str, int],
    case_ids: dict[str, int],
) -> int:
    rows: list[ExecutionResult] = []
    keep: dict[int, set[str]] = {}
    for external_id, snapshot in changed.items():
        run = latest.get(external_id)
        if run is None:
            continue
        keep[run.pk] = {r.external_id for r in snapshot.results}
        for r in snapshot.results:
            rows.append(
                ExecutionResult(
                    run_id=run.pk,
                    external_id=r.external_id,
                    test_case_id=case_ids.get(r.test_case_id),
                    agent_id=agent_ids.get(r.agent_id),
                    case_key=r.case_key[:300],
                    status=r.status.value,
                    vendor_status=r.vendor_status[:100],
                    started_at=r.started_at or run.started_at,
                    finished_at=r.finished_at,
                    duration=r.duration
                    if r.duration is not None
                    else (r.finished_at - r.started_at if r.finished_at and r.started_at else None),
                    message=r.message,
                    log_excerpt=r.log_excerpt,
                    seq=r.seq,
                    retry_count=r.retry_count,
                    input=dict(r.input),
                    is_data_driven=r.is_data_driven,
                    iterations=[
                        {
                            "id": i.external_id,
                            "name": i.title,
                            "status": i.status.value,
                            "vendor_status": i.vendor_status,
                        }
                        for i in r.iterations
                    ],
                )
            )
    if rows:
        ExecutionResult.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["run", "external_id"],
            update_fields=RESULT_FIELDS,
            batch_size=1000,
        )
    stale = [
        pk
        for pk, run_id, external_id in ExecutionResult.objects.filter(
            run_id__in=list(keep)
        ).values_list("pk", "run_id", "external_id")
        if external_id not in keep[run_id]
    ]
    if stale:
        # Deleted upstream from the current attempt (a rerun from a task drops later tasks);
        # a frozen earlier attempt keeps its own copy.
        ExecutionResult.objects.filter(pk__in=stale).delete()
    return len(rows)


def _link_parents(orchestrator: Orchestrator, snapshots: Sequence[RunSnapshot]) -> None:
    """Link reruns to the run they derive from (Testsigma reRunParentId), once both are known."""
    parents = {s.external_id: s.parent_external_id for s in snapshots if s.parent_external_id}
    if not parents:
        return
    orphans = list(
        Run.objects.filter(
            orchestrator=orchestrator,
            external_id__in=list(parents),
            rerun_of__isnull=True,
            attempt=1,
        )
    )
    if not orphans:
        return
    parent_pks = {}
    for run in Run.objects.filter(
        orchestrator=orchestrator, external_id__in=set(parents.values())
    ).order_by("external_id", "attempt"):
        parent_pks[run.external_id] = run.pk
    linked = []
    for run in orphans:
        parent = parent_pks.get(parents[run.external_id])
        if parent and parent != run.pk:
            run.rerun_of_id = parent
            linked.append(run)
    if linked:
        Run.objects.bulk_update(linked, ["rerun_of"])


def _touch_schedules(orchestrator: Orchestrator, schedule_ids: dict[str, int]) -> None:
    latest = (
        Run.objects.filter(schedule_id__in=list(schedule_ids.values()))
        .values("schedule_id")
        .annotate(last=Max("started_at"))
    )
    rows = [Schedule(pk=row["schedule_id"], last_run_at=row["last"]) for row in latest]
    Schedule.objects.bulk_update(rows, ["last_run_at"])


# Single runs ---------------------------------------------------------------------------------


def run_refresh(*, run: Run, client: OrchestratorClient | None = None) -> Run:
    """Fetch one run now (a watched page, a poll) and store it; errors are raised."""
    orchestrator = run.orchestrator
    own_client = client is None
    client = client or orchestrator_client(orchestrator)
    try:
        try:
            snapshot = client.get_run(run.external_id)
        except NotFound:
            runs_mark_vanished(
                orchestrator=orchestrator, external_ids=[run.external_id], now=timezone.now()
            )
            return Run.objects.get(pk=run.pk)
    finally:
        if own_client:
            client.close()
    latest = runs_store(orchestrator=orchestrator, snapshots=[snapshot])
    return latest.get(run.external_id) or Run.objects.get(pk=run.pk)


def run_track(
    *, orchestrator: Orchestrator, external_id: str, client: OrchestratorClient | None = None
) -> Run:
    """Start following a run by its vendor id (Testsigma lists no runs); raises NotFound."""
    own_client = client is None
    client = client or orchestrator_client(orchestrator)
    try:
        snapshot = client.get_run(external_id.strip())
    finally:
        if own_client:
            client.close()
    return runs_store(orchestrator=orchestrator, snapshots=[snapshot])[snapshot.external_id]


def run_is_stale(*, run: Run, now: datetime | None = None) -> bool:
    if run.is_terminal or run.is_frozen:
        return False
    now = now or timezone.now()
    seen = max(filter(None, [run.synced_at, run.orchestrator.last_synced_at]), default=None)
    return seen is None or now - seen > timedelta(seconds=settings.RUNBOARD_POLL_INTERVAL)


def run_refresh_if_stale(*, run: Run) -> bool:
    """A watched running run whose data is stale asks the poller to refresh it soon."""
    if not run_is_stale(run=run):
        return False
    from runs.tasks import poll_cycle_ensure

    poll_cycle_ensure()
    return True
