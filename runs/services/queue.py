"""The background chains as services see them: by name, never by importing runs.tasks.

runs.tasks imports the services, so the services cannot import it back: runs.tasks registers
the task behind each chain name when it is imported (RunsConfig.ready imports it in every
process), and services continue or start a chain by its name.
"""

from __future__ import annotations

import zlib
from datetime import timedelta

from django.db import transaction
from django.tasks import Task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runs.services.sql import advisory_xact_lock

_CHAINS: dict[str, Task] = {}


def chain_register(name: str, task: Task) -> Task:
    """Say which task runs the chain `name` (runs.tasks does, once per process)."""
    _CHAINS[name] = task
    return task


def chain_continue(name: str, delay: float) -> bool:
    """Enqueue the next link of a chain unless one is already waiting; True if enqueued."""
    chain_task = _CHAINS[name]
    with transaction.atomic():
        # Serialize the check-then-enqueue across workers; SQLite's IMMEDIATE does it there.
        advisory_xact_lock(zlib.crc32(chain_task.module_path.encode()))
        waiting = DBTaskResult.objects.filter(
            task_path=chain_task.module_path, status="READY"
        ).exists()
        if waiting:
            return False
        chain_task.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue()
        return True
