"""Discovery: which runs a pass fetches.

The client says which runs of its schedules may be new or changed (`discover`); what
Runboard already holds adds the rest, as the capabilities say: runs not finished yet, and for
a vendor without a run list (`lists_runs` False) the runs the stored ones point at (their
parents, their schedule's newest run).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery

from runs.models import Orchestrator, Run, Schedule
from runs.orchestrators.base import OrchestratorClient, ScheduleSnapshot
from runs.status import IN_PROGRESS


def run_ids_to_fetch(
    orchestrator: Orchestrator,
    client: OrchestratorClient,
    schedules: Sequence[ScheduleSnapshot],
    *,
    since: datetime,
    incremental: bool,
) -> list[str]:
    """New runs of each schedule since the last pass, then every known run not yet terminal."""
    capabilities = client.capabilities
    candidates = dict.fromkeys(
        client.discover(
            [s.external_id for s in schedules],
            since=since,
            incremental=incremental,
            limit=settings.RUNBOARD_HISTORY_RUNS,
        )
    )
    if not capabilities.reruns_in_place:
        # A finished run never changes unless it can be worked again in place.
        known_finished = set(
            Run.objects.filter(
                orchestrator=orchestrator, external_id__in=list(candidates), is_frozen=False
            )
            .exclude(status__in=IN_PROGRESS)
            .values_list("external_id", flat=True)
        )
        candidates = {key: None for key in candidates if key not in known_finished}
    if not capabilities.lists_runs:
        # Each schedule's newest known run says (latest_sibling_id) whether a newer one exists.
        candidates.update(dict.fromkeys(_newest_runs(orchestrator)))
    for external_id in Run.objects.filter(
        orchestrator=orchestrator,
        status__in=IN_PROGRESS,
        is_frozen=False,
        vanished_at__isnull=True,
    ).values_list("external_id", flat=True):
        candidates[external_id] = None
    return list(candidates)


def _newest_runs(orchestrator: Orchestrator) -> list[str]:
    newest = (
        Run.objects.filter(schedule=OuterRef("pk"), is_frozen=False)
        .order_by("-started_at", "-id")
        .values("external_id")[:1]
    )
    return list(
        Schedule.objects.filter(orchestrator=orchestrator)
        .annotate(newest=Subquery(newest))
        .exclude(newest=None)
        .values_list("newest", flat=True)
    )


def run_leads(orchestrator: Orchestrator) -> set[str]:
    """Run ids the stored runs point at and Runboard does not hold yet: their parents
    (reRunParentId) and their schedules' newest runs (lastRunId)."""
    leads: set[str] = set()
    for parent, latest in (
        Run.objects.filter(orchestrator=orchestrator)
        .filter(~Q(parent_external_id="") | ~Q(latest_sibling_id=""))
        .values_list("parent_external_id", "latest_sibling_id")
    ):
        leads.update(value for value in (parent, latest) if value)
    known = set(Run.objects.filter(orchestrator=orchestrator).values_list("external_id", flat=True))
    return leads - known
