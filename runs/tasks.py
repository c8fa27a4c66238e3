"""Background work on Django's tasks API (django-tasks-db backend): it calls services only.

Two self-renewing chains: `sync_cycle` syncs every enabled orchestrator that is due, every
RUNBOARD_SYNC_INTERVAL seconds; `poll_cycle` refreshes running runs every
RUNBOARD_POLL_INTERVAL seconds and stops when nothing runs. Each enqueues its own next run
with `run_after`, guarded so only one of each chain is ever waiting.
"""

from __future__ import annotations

import logging
import zlib
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.tasks import task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runs.models import Orchestrator, Run
from runs.orchestrators.base import OrchestratorError
from runs.services import sync
from runs.status import IN_PROGRESS

logger = logging.getLogger(__name__)


def _chain_continue(chain_task, delay: float) -> bool:
    """Enqueue the next link of a chain unless one is already waiting; True if enqueued."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Serialize the check-then-enqueue across workers; SQLite's IMMEDIATE does it there.
            with connection.cursor() as cursor:
                key = zlib.crc32(chain_task.module_path.encode())
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        waiting = DBTaskResult.objects.filter(
            task_path=chain_task.module_path, status="READY"
        ).exists()
        if waiting:
            return False
        chain_task.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue()
        return True


def orchestrators_due():
    now = timezone.now()
    return Orchestrator.objects.filter(enabled=True).filter(
        Q(next_sync_after__isnull=True) | Q(next_sync_after__lte=now)
    )


def _running():
    """Runs still going on orchestrators that are enabled and not backing off."""
    return Run.objects.filter(
        status__in=IN_PROGRESS,
        is_frozen=False,
        vanished_at__isnull=True,
        orchestrator__in=orchestrators_due(),
    )


@task()
def sync_cycle() -> list[str]:
    """Sync every enabled orchestrator that is due (one broken one never stops the others)."""
    reports = []
    try:
        for orchestrator in orchestrators_due():
            try:
                reports.append(str(sync.orchestrator_sync(orchestrator=orchestrator)))
            except Exception:  # the pass records its own failures; this is the last guard
                logger.exception("sync of %s failed", orchestrator.name)
                reports.append(f"{orchestrator.name}: FAILED (see the log)")
        if _running().exists():
            poll_cycle_ensure()
    finally:
        _chain_continue(sync_cycle, settings.RUNBOARD_SYNC_INTERVAL)
    return reports


def sync_cycle_ensure() -> bool:
    """Start the periodic sync chain if it is not waiting already (called by `make run`)."""
    return _chain_continue(sync_cycle, 0)


@task()
def poll_cycle() -> int:
    """Refresh every running run; go on while any still runs."""
    running = list(_running().select_related("orchestrator"))
    by_orchestrator: dict[int, list[Run]] = {}
    for run in running:
        by_orchestrator.setdefault(run.orchestrator_id, []).append(run)
    still_running = 0
    for runs in by_orchestrator.values():
        orchestrator = runs[0].orchestrator
        try:
            with sync.orchestrator_session(orchestrator) as client:
                for run in runs:
                    refreshed = sync.run_refresh(run=run, client=client)
                    still_running += not refreshed.is_terminal
        except OrchestratorError as exc:
            # The periodic pass records it and backs off; polling just tries again.
            logger.warning("polling %s failed: %s", orchestrator.name, exc)
            still_running += len(runs)
    if still_running:
        _chain_continue(poll_cycle, settings.RUNBOARD_POLL_INTERVAL)
    return still_running


def poll_cycle_ensure() -> bool:
    return _chain_continue(poll_cycle, 0)
