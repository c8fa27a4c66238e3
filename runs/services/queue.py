"""The background chains as services see them: by name, never by importing runs.tasks.

runs.tasks imports the services, so the services cannot import it back: runs.tasks registers
the task behind each chain name when it is imported (RunsConfig.ready imports it in every
process), and services continue or start a chain by its name.

A chain survives the death of the worker running its link (kill -9, a lost machine): the link
renews its chain's lease while it works (chain_heartbeat), and the watch chain
(runs.services.polling) restarts any chain that has no link waiting and none running on a live
lease (chain_recover), marking the dead link as failed. Each chain's links also keep the watch
chain going, so no single death stops them all.
"""

from __future__ import annotations

import logging
import zlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.tasks import Task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runs.models import ChainLease
from runs.services.sql import advisory_xact_lock

logger = logging.getLogger(__name__)

_CHAINS: dict[str, Task] = {}


def chain_register(name: str, task: Task) -> Task:
    """Say which task runs the chain (or the job) `name` (runs.tasks does, once per process)."""
    _CHAINS[name] = task
    return task


def task_enqueue(name: str, *args: object, run_after: datetime | None = None) -> str:
    """Enqueue the task registered as `name` (on its own queue) with these arguments, to run
    at `run_after` or as soon as possible; return the task result's id. Inside a transaction,
    the task row commits (or not) with the rest."""
    task = _CHAINS[name]
    if run_after is not None:
        task = task.using(run_after=run_after)
    return task.enqueue(*args).id


def chain_continue(name: str, delay: float) -> bool:
    """Enqueue the next link of a chain unless one is already waiting; True if enqueued."""
    chain_task = _CHAINS[name]
    with transaction.atomic():
        # Serialize the check-then-enqueue across workers; SQLite's IMMEDIATE does it there.
        advisory_xact_lock(zlib.crc32(chain_task.module_path.encode()))
        if _links(chain_task, "READY").exists():
            return False
        chain_task.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue()
        return True


def chain_heartbeat(name: str) -> None:
    """The running link of `name` is alive: renew its lease for RUNBOARD_CHAIN_LEASE seconds."""
    ChainLease.objects.update_or_create(name=name, defaults={"renewed_at": timezone.now()})


def chain_recover(name: str) -> bool:
    """Start `name` again if it has no link waiting and none running on a live lease; a link
    left running past its lease is marked failed (its worker died). True if it was started."""
    chain_task = _CHAINS[name]
    lease = timedelta(seconds=settings.RUNBOARD_CHAIN_LEASE)
    with transaction.atomic():
        advisory_xact_lock(zlib.crc32(chain_task.module_path.encode()))
        if _links(chain_task, "READY").exists():
            return False
        running = _links(chain_task, "RUNNING")
        renewed = ChainLease.objects.filter(name=name).values_list("renewed_at", flat=True)
        # A link that never renewed a lease (started by an older version) counts from its start.
        alive_at = renewed.first() or running.aggregate(at=Max("started_at"))["at"]
        now = timezone.now()
        if running.exists() and (alive_at or now) > now - lease:
            return False
        dead = running.update(
            status="FAILED",
            finished_at=now,
            exception_class_path="runs.services.queue.LeaseExpired",
            traceback=f"No heartbeat for {lease}: the worker running this link died.",
        )
        if dead:
            logger.warning("%s: %d link(s) died with their worker; starting it again", name, dead)
        chain_task.using(run_after=now).enqueue()
        return True


def _links(chain_task: Task, status: str):
    return DBTaskResult.objects.filter(task_path=chain_task.module_path, status=status)
