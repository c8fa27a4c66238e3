"""The history's revision: one number that moves whenever what the history pages show changes.

A page drawn at one revision stays right until the number moves, so it can be drawn once and
served again to everyone who asks for the same URL (runs.views.history). A second number, the
catalog's, moves only with orchestrators, schedules and agents: the history's filters (every
schedule and agent as an option) are drawn once per catalog revision, however often runs
move. The writes that move the history's number: every batch of runs stored (sync, polling, tracking), every change of the catalog a pass
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

HISTORY, CATALOG = 1, 2  # the rows: all the history shows; the orchestrators, schedules, agents


def revision_get() -> tuple[int, int]:
    """(history, catalog) revisions, 0 before their first change: one query."""
    values = dict(Revision.objects.filter(pk__in=(HISTORY, CATALOG)).values_list("pk", "value"))
    return values.get(HISTORY, 0), values.get(CATALOG, 0)


def revision_bump(*, catalog: bool = False) -> None:
    """Move the history's revision on once the current transaction commits (now, outside
    one); `catalog` for a change of orchestrators, schedules or agents, which moves both."""
    rows = (HISTORY, CATALOG) if catalog else (HISTORY,)
    transaction.on_commit(lambda: _bump(rows), robust=True)


def _bump(rows: tuple[int, ...]) -> None:
    if Revision.objects.filter(pk__in=rows).update(value=F("value") + 1) < len(rows):
        Revision.objects.bulk_create(
            [Revision(pk=row, value=1) for row in rows], ignore_conflicts=True
        )
