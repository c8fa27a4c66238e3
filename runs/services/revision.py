"""The history's revision: one number that moves whenever what the history pages show changes.

A page drawn at one revision stays right until the number moves, so it can be drawn once and
served again to everyone who asks for the same URL (runs.views.history). The writes that move
it: every batch of runs stored (sync, polling, tracking), every change of the catalog a pass
makes (schedules, agents), the runs a rerun starts, connecting an orchestrator, and any admin
save or delete of an orchestrator, schedule or agent (signals, runs.apps). A cached page also
expires after RUNBOARD_PAGE_CACHE_SECONDS, so a write that forgot to move it, or the clock
(a running run's duration), is never shown stale for longer.

The bump runs once its transaction commits (at once outside one), as its own statement: no
writer holds the row while it works, and a page drawn between the commit and the bump shows
the new data under the old number, which is only fresher. A process that dies in between
leaves the old pages to their time limit.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from runs.models import Revision

ROW = 1


def revision_get() -> int:
    """The current revision (0 before the first change)."""
    return Revision.objects.filter(pk=ROW).values_list("value", flat=True).first() or 0


def revision_bump() -> None:
    """Move the revision on once the current transaction commits (now, outside one)."""
    transaction.on_commit(_bump, robust=True)


def _bump() -> None:
    if not Revision.objects.filter(pk=ROW).update(value=F("value") + 1):
        Revision.objects.bulk_create([Revision(pk=ROW, value=1)], ignore_conflicts=True)
