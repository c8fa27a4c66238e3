"""Sync: the only code that turns orchestrator snapshots into rows.

One pass per orchestrator asks only for what may have changed (discovery), fetches it a
batch at a time (RUNBOARD_FETCH_CONCURRENCY runs side by side), decides what each snapshot
changes (classify, pure) and stores it in bulk (write), so the number of queries grows with
the number of runs, never with their results. This module holds the entry points: a pass,
refreshing one run or reading a few (a rerun's new runs), following one by id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.utils import timezone

from runs.models import Orchestrator, Run
from runs.orchestrators.base import NotFound, OrchestratorClient, OrchestratorError, RunSnapshot
from runs.services import notifications
from runs.services.errors import TrackError
from runs.services.session import orchestrator_session
from runs.services.sync.catalog import (
    agents_upsert,
    schedules_ensure,
    schedules_mark_vanished,
    schedules_upsert,
)
from runs.services.sync.classify import snapshot_fingerprint
from runs.services.sync.discovery import run_ids_to_fetch, run_leads
from runs.services.sync.write import SyncReport, runs_mark_vanished, runs_store, schedules_touch

__all__ = [
    "SyncReport",
    "agents_upsert",
    "orchestrator_sync",
    "run_refresh",
    "run_track",
    "runs_mark_vanished",
    "runs_read",
    "runs_store",
    "schedules_touch",
    "schedules_upsert",
    "side_by_side",
    "snapshot_fingerprint",
]

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
# Incremental passes look back a little before the last one, for clocks that disagree.
OVERLAP = timedelta(minutes=10)
# How far back a pass walks the links of a vendor without a run list (reRunParentId).
MAX_PARENT_HOPS = 20
BACKOFF_CAP = timedelta(minutes=30)
# Maps a call over its arguments, answering in their order: the builtin map makes the calls
# one at a time, a thread pool's map side by side.
FanOut = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[Any]]


@contextmanager
def side_by_side(width: int) -> Iterator[FanOut]:
    """A fan-out making `width` calls at a time: the builtin map for one, else a thread pool's,
    whose threads end with the block (waiting for the calls in flight, dropping the others)."""
    if width <= 1:
        yield map
        return
    pool = ThreadPoolExecutor(width, thread_name_prefix="fan-out")
    try:
        yield pool.map
    finally:
        pool.shutdown(cancel_futures=True)


def orchestrator_sync(
    *,
    orchestrator: Orchestrator,
    client: OrchestratorClient | None = None,
    now: datetime | None = None,
    periodic: bool = False,
    heartbeat: Callable[[], None] | None = None,
) -> SyncReport:
    """One sync pass; any failure is recorded on the Orchestrator, never raised.

    Only failures of the periodic pass (`periodic`) count toward its backoff: a pass someone
    asked for shows its error but does not park the orchestrator. `heartbeat` is called after
    each batch of runs (the periodic chain renews its lease with it).
    """
    now = now or timezone.now()
    report = SyncReport(orchestrator=orchestrator.name, started_at=now)
    # Another pass (another worker) may have moved it on since this instance was loaded.
    orchestrator.refresh_from_db(fields=["last_synced_at", "consecutive_failures"])
    try:
        with (
            orchestrator_session(orchestrator, client=client) as session,
            side_by_side(settings.RUNBOARD_FETCH_CONCURRENCY) as fan_out,
        ):
            _sync(orchestrator, session, report, now, heartbeat or (lambda: None), fan_out)
    except OrchestratorError as exc:
        report.error = str(exc)
        logger.warning("sync of %s failed: %s", orchestrator.name, exc)
    except Exception as exc:  # one orchestrator's bug must not stop the others
        report.error = f"Internal error while syncing: {exc.__class__.__name__}: {exc}"
        logger.exception("sync of %s failed", orchestrator.name)
    _record_outcome(orchestrator, report, now, periodic=periodic)
    return report


def _record_outcome(
    orchestrator: Orchestrator, report: SyncReport, now: datetime, *, periodic: bool
) -> None:
    if report.ok:
        values: dict[str, Any] = {
            "last_synced_at": now,
            "last_sync_error": "",
            "last_sync_error_at": None,
            "consecutive_failures": 0,
            "next_sync_after": None,
        }
    elif not periodic:
        values = {"last_sync_error": report.error, "last_sync_error_at": now}
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
    Orchestrator.objects.filter(pk=orchestrator.pk).update(**values)
    for name, value in values.items():
        setattr(orchestrator, name, value)
    if values.get("consecutive_failures") == 1:  # the periodic sync failed after a success
        notifications.sync_failing_notify(orchestrator=orchestrator, error=report.error, since=now)


def _sync(
    orchestrator: Orchestrator,
    client: OrchestratorClient,
    report: SyncReport,
    now: datetime,
    heartbeat: Callable[[], None],
    fan_out: FanOut,
) -> None:
    schedules = client.list_schedules()
    agents = client.list_agents()
    if client.capabilities.lists_schedules:
        report.schedules = len(schedules_upsert(orchestrator=orchestrator, schedules=schedules))
        schedules_mark_vanished(orchestrator, {s.external_id for s in schedules}, now)
    else:
        # The configured schedules are created once, named later by their runs.
        wanted = {s.external_id: (s.title, False) for s in schedules}
        report.schedules = len(schedules_ensure(orchestrator, wanted))
    report.agents = len(agents_upsert(orchestrator=orchestrator, agents=agents))

    first_pass = orchestrator.last_synced_at is None
    since = (
        now - timedelta(days=settings.RUNBOARD_HISTORY_DAYS)
        if first_pass
        else orchestrator.last_synced_at - OVERLAP
    )
    wanted_runs = run_ids_to_fetch(
        orchestrator, client, schedules, since=since, incremental=not first_pass
    )
    _fetch_and_store(
        orchestrator, client, wanted_runs, report, now=now, heartbeat=heartbeat, fan_out=fan_out
    )
    if not client.capabilities.lists_runs:
        _follow_leads(orchestrator, client, report, now=now, heartbeat=heartbeat, fan_out=fan_out)


def _fetch_and_store(
    orchestrator: Orchestrator,
    client: OrchestratorClient,
    external_ids: Sequence[str],
    report: SyncReport,
    *,
    now: datetime,
    heartbeat: Callable[[], None] = lambda: None,
    fan_out: FanOut = map,
) -> None:
    """Fetch runs a batch at a time, side by side as `fan_out` makes the calls, and store each
    batch, so a failure keeps the batches before (and the runs before it in its batch)."""
    fetch = partial(_fetched, client)
    for start in range(0, len(external_ids), BATCH_SIZE):
        batch = external_ids[start : start + BATCH_SIZE]
        snapshots: list[RunSnapshot] = []
        vanished: list[str] = []
        try:
            for external_id, snapshot in zip(batch, fan_out(fetch, batch), strict=True):
                if snapshot is None:
                    vanished.append(external_id)
                else:
                    snapshots.append(snapshot)
        finally:
            # Whatever was fetched before an error is stored before the error surfaces.
            report.runs_fetched += len(snapshots)
            runs_store(orchestrator=orchestrator, snapshots=snapshots, report=report, now=now)
            report.vanished += runs_mark_vanished(
                orchestrator=orchestrator, external_ids=vanished, now=now
            )
            heartbeat()


def _fetched(client: OrchestratorClient, external_id: str) -> RunSnapshot | None:
    """The run as the orchestrator has it, or None when it no longer has it."""
    try:
        return client.get_run(external_id)
    except NotFound:
        return None


def _follow_leads(
    orchestrator: Orchestrator,
    client: OrchestratorClient,
    report: SyncReport,
    *,
    now: datetime,
    heartbeat: Callable[[], None],
    fan_out: FanOut,
) -> None:
    """A vendor without a run list: follow the runs the stored ones point at, hop by hop."""
    tried: set[str] = set()
    for _hop in range(MAX_PARENT_HOPS):
        leads = run_leads(orchestrator) - tried
        if not leads:
            return
        tried |= leads
        _fetch_and_store(
            orchestrator,
            client,
            sorted(leads),
            report,
            now=now,
            heartbeat=heartbeat,
            fan_out=fan_out,
        )


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


def runs_read(
    *,
    orchestrator: Orchestrator,
    external_ids: Sequence[str],
    client: OrchestratorClient,
    fan_out: FanOut = map,
    heartbeat: Callable[[], None] = lambda: None,
) -> SyncReport:
    """Fetch these runs now and store them (the runs still going, those a rerun just
    started): `fan_out` maps the fetch over them, `heartbeat` is called after each batch. An
    error is raised once the runs fetched before it are stored."""
    report = SyncReport(orchestrator=orchestrator.name, started_at=timezone.now())
    _fetch_and_store(
        orchestrator,
        client,
        external_ids,
        report,
        now=report.started_at,
        heartbeat=heartbeat,
        fan_out=fan_out,
    )
    return report


def run_track(
    *, orchestrator: Orchestrator, external_id: str, client: OrchestratorClient | None = None
) -> Run:
    """Start following a run by its vendor id (for vendors without a run list); raises
    TrackError when the orchestrator cannot give it."""
    try:
        with orchestrator_session(orchestrator, client=client) as session:
            snapshot = session.get_run(external_id.strip())
    except OrchestratorError as exc:
        raise TrackError(str(exc)) from exc
    return runs_store(orchestrator=orchestrator, snapshots=[snapshot])[snapshot.external_id]
