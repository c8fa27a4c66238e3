"""The periodic chains: sync every orchestrator that is due, poll the runs still going, and
watch that both are alive.

Each chain enqueues its own next link with `run_after` (see runs.services.queue), guarded so
only one of each is ever waiting; runs.tasks only wraps these as tasks. The watch chain runs
every RUNBOARD_CHAIN_LEASE seconds and starts again a chain whose link died with its worker;
the sync chain's links keep the watch chain going in turn.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from runs.models import Orchestrator, Run
from runs.orchestrators.base import OrchestratorError
from runs.services.queue import chain_continue, chain_heartbeat, chain_recover
from runs.services.rerun_reconcile import reruns_reconcile_open
from runs.services.session import orchestrator_session
from runs.services.sync import orchestrator_sync, runs_read, side_by_side
from runs.status import IN_PROGRESS

logger = logging.getLogger(__name__)

SYNC_CHAIN = "sync"
POLL_CHAIN = "poll"
WATCH_CHAIN = "watch"
FINGERPRINTS_JOB = "fingerprints"


def orchestrators_due() -> QuerySet[Orchestrator]:
    now = timezone.now()
    return Orchestrator.objects.filter(enabled=True).filter(
        Q(next_sync_after__isnull=True) | Q(next_sync_after__lte=now)
    )


def _running() -> QuerySet[Run]:
    """Runs still going on orchestrators that are enabled and not backing off."""
    return Run.objects.filter(
        status__in=IN_PROGRESS,
        is_frozen=False,
        vanished_at__isnull=True,
        orchestrator__in=orchestrators_due(),
    )


def sync_cycle_run() -> list[str]:
    """Sync every enabled orchestrator that is due (one broken one never stops the others),
    and look again for what the unknown rerun calls of each started."""
    reports = []
    chain_heartbeat(SYNC_CHAIN)
    chain_continue(WATCH_CHAIN, settings.RUNBOARD_CHAIN_LEASE)
    try:
        for orchestrator in orchestrators_due():
            try:
                report = orchestrator_sync(
                    orchestrator=orchestrator,
                    periodic=True,
                    heartbeat=lambda: chain_heartbeat(SYNC_CHAIN),
                )
                reports.append(str(report))
                if report.ok:
                    reruns_reconcile_open(orchestrator)
            except Exception:  # the pass records its own failures; this is the last guard
                logger.exception("sync of %s failed", orchestrator.name)
                reports.append(f"{orchestrator.name}: FAILED (see the log)")
        if _running().exists():
            poll_cycle_ensure()
    finally:
        chain_continue(SYNC_CHAIN, settings.RUNBOARD_SYNC_INTERVAL)
    return reports


def sync_cycle_ensure() -> bool:
    """Start the periodic sync chain if it is not waiting already (called by `make run`), and
    the watch that keeps it alive."""
    watch_cycle_ensure()
    # Failures stored before fingerprints, or by an older version, are fingerprinted meanwhile.
    chain_continue(FINGERPRINTS_JOB, 0)
    return chain_continue(SYNC_CHAIN, 0)


def watch_cycle_ensure() -> bool:
    """Start the watch chain if it is not waiting already: a rerun relies on it to be sent
    again should its worker die."""
    return chain_continue(WATCH_CHAIN, settings.RUNBOARD_CHAIN_LEASE)


def watch_cycle_run() -> list[str]:
    """Start again the chains whose link died with its worker; returns their names."""
    try:
        restarted = [SYNC_CHAIN] if chain_recover(SYNC_CHAIN) else []
        if _running().exists() and chain_recover(POLL_CHAIN):
            restarted.append(POLL_CHAIN)
        return restarted
    finally:
        chain_continue(WATCH_CHAIN, settings.RUNBOARD_CHAIN_LEASE)


def poll_cycle_run() -> int:
    """Refresh every running run, each orchestrator's side by side (RUNBOARD_FETCH_CONCURRENCY
    at a time) and stored a batch at a time; go on while any still runs. Returns how many
    still run."""
    chain_heartbeat(POLL_CHAIN)
    by_orchestrator: dict[int, list[Run]] = {}
    for run in _running().select_related("orchestrator"):
        by_orchestrator.setdefault(run.orchestrator_id, []).append(run)
    for runs in by_orchestrator.values():
        orchestrator = runs[0].orchestrator
        try:
            with (
                orchestrator_session(orchestrator) as client,
                side_by_side(settings.RUNBOARD_FETCH_CONCURRENCY) as fan_out,
            ):
                runs_read(
                    orchestrator=orchestrator,
                    external_ids=[run.external_id for run in runs],
                    client=client,
                    fan_out=fan_out,
                    heartbeat=lambda: chain_heartbeat(POLL_CHAIN),
                )
        except OrchestratorError as exc:
            # The periodic pass records it and backs off; polling just tries again.
            logger.warning("polling %s failed: %s", orchestrator.name, exc)
    # Those not refreshed still run, and a rerun in place runs on as its new attempt.
    still_running = _running().count()
    if still_running:
        chain_continue(POLL_CHAIN, settings.RUNBOARD_POLL_INTERVAL)
    return still_running


def poll_cycle_ensure() -> bool:
    return chain_continue(POLL_CHAIN, 0)


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
    poll_cycle_ensure()
    return True
