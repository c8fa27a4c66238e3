"""The counts kept on the rows they describe: each agent's results (runs, results, failures,
last seen) and each orchestrator's runs, so the pages that show them read rows, not history.

Sync keeps them in the same transaction as the results they count, with a fixed number of
statements per batch: it tallies the batch's runs' results per agent before the write and
after it, and adds the difference. A run's results are written only by the batch that holds
the run, and the runs of a batch are disjoint from every other run, so even the distinct-run
difference is exact.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from runs.models import Agent, ExecutionResult, Orchestrator, Run
from runs.services import sql
from runs.status import FAILURES

FAILURE_VALUES = sorted(status.value for status in FAILURES)


@dataclass(frozen=True)
class Tally:
    """What some runs' results add to one agent's counts."""

    runs: int = 0
    results: int = 0
    failed: int = 0
    last: datetime | None = None


def agent_tally(*, run_pks: Collection[int]) -> dict[int, Tally]:
    """{agent pk: what these runs' results add to it}, in one aggregate over these runs only."""
    if not run_pks:
        return {}
    rows = (
        ExecutionResult.objects.filter(run_id__in=list(run_pks), agent_id__isnull=False)
        .values("agent_id")
        .annotate(
            runs=Count("run_id", distinct=True),
            results=Count("id"),
            failed=Count("id", filter=Q(status__in=FAILURE_VALUES)),
            last=Max("started_at"),
        )
        .order_by()
    )
    return {
        row["agent_id"]: Tally(row["runs"], row["results"], row["failed"], row["last"])
        for row in rows
    }


def agent_counts_apply(*, run_pks: Collection[int], before: dict[int, Tally]) -> None:
    """Add to each agent what the write of these runs' results changed since `before` (their
    `agent_tally` taken before the write): one aggregate and at most one UPDATE."""
    if not run_pks:
        return
    after = agent_tally(run_pks=run_pks)
    # The agent's newest result, where the batch may have moved it: one index probe each.
    newest = Subquery(
        ExecutionResult.objects.filter(agent_id=OuterRef("pk"), started_at__isnull=False)
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    changed = []
    for pk in sorted(before.keys() | after.keys()):
        old, new = before.get(pk, Tally()), after.get(pk, Tally())
        if old == new:
            continue
        changed.append(
            Agent(
                pk=pk,
                run_count=F("run_count") + (new.runs - old.runs),
                result_count=F("result_count") + (new.results - old.results),
                failed_count=F("failed_count") + (new.failed - old.failed),
                last_seen_at=newest if new.last != old.last else F("last_seen_at"),
            )
        )
    if changed:
        fields = ["run_count", "result_count", "failed_count", "last_seen_at"]
        Agent.objects.bulk_update(changed, fields)


def orchestrator_runs_added(orchestrator_pk: int, added: int) -> None:
    """Count the Run rows just created for an orchestrator (runs are never deleted, only
    marked vanished): one UPDATE, in the transaction that created them."""
    if added:
        Orchestrator.objects.filter(pk=orchestrator_pk).update(run_count=F("run_count") + added)


def agent_counts_rebuild() -> int:
    """Recount every agent from its results and every orchestrator's runs (a repair): one
    set-based statement each. Returns the number of agents."""
    runs = Run.objects.filter(orchestrator=OuterRef("pk")).order_by().values("orchestrator")
    Orchestrator.objects.update(
        run_count=Coalesce(Subquery(runs.annotate(n=Count("pk")).values("n")), 0)
    )
    return sql.agent_counts_rebuild(failure_statuses=FAILURE_VALUES)
