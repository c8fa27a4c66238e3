"""The history's revision: one number that moves whenever what the history pages show changes.

A page drawn at one revision stays right until the number moves, so it can be drawn once and
served again to everyone who asks for the same URL (runs.views.history). The writes that move
it: every batch of runs stored (sync, polling, tracking), every pass's end (schedules, agents,
an orchestrator's state), the runs a rerun starts, connecting an orchestrator, and any admin
save or delete of an orchestrator, schedule or agent (signals, runs.apps). A cached page also
expires after RUNBOARD_PAGE_CACHE_SECONDS, so a write that forgot to move it, or the clock
(a running run's duration), is never shown stale for longer.

The bump is the last statement of its transaction: nothing else waits while the row is locked,
so writers only queue for it for the moment their transaction takes to commit, and a reader
never sees the new number before the data it stands for.
"""

from __future__ import annotations

from django.db.models import F

from runs.models import Revision

ROW = 1


def revision_get() -> int:
    """The current revision (0 before the first change)."""
    return Revision.objects.filter(pk=ROW).values_list("value", flat=True).first() or 0


def revision_bump() -> None:
    """Move the revision on; call it last in the transaction that made the change."""
    if not Revision.objects.filter(pk=ROW).update(value=F("value") + 1):
        Revision.objects.bulk_create([Revision(pk=ROW, value=1)], ignore_conflicts=True)
