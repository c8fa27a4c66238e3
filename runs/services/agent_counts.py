"""The counts kept on the rows they describe: each agent's results (runs, results, failures,
last seen), each run's results by agent and status and the agents they ran on (RunAgent),
and each orchestrator's runs, so the pages that show them read rows, not history (a run page
of 10,000 results no longer groups them on every request, the history filtered by agent no
longer asks every run's results).

Sync keeps them in the same transaction as the results they count, with a fixed number of
statements per batch: it groups the batch's runs' results by run, agent and status before the
write and after it, adds the difference to the agents and writes each run's groups (the runs
the batch made are grouped from the rows it wrote: nothing of theirs is read back). A run's
results are written only by the batch that holds the run, and the runs of a batch are
disjoint from every other run, so even the distinct-run difference is exact.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from runs.models import Agent, ExecutionResult, Orchestrator, Run
from runs.services import sql
from runs.status import FAILURE_VALUES


@dataclass(frozen=True)
class Tally:
    """What some runs' results add to one agent's counts."""

    runs: int = 0
    results: int = 0
    failed: int = 0
    last: datetime | None = None


# One group of a run's results: (run pk, agent pk or None, status) -> (results, data-driven
# ones, the newest start).
Groups = dict[tuple[int, int | None, str], tuple[int, int, datetime | None]]


def result_groups(*, run_pks: Collection[int]) -> Groups:
    """These runs' results grouped by run, agent and status: one aggregate over these runs
    only, from which both the agents' and the runs' counts are taken."""
    if not run_pks:
        return {}
    rows = (
        ExecutionResult.objects.filter(run_id__in=list(run_pks))
        .values_list("run_id", "agent_id", "status")
        .annotate(
            n=Count("id"),
            data_driven=Count("id", filter=Q(is_data_driven=True)),
            last=Max("started_at"),
        )
        .order_by()
    )
    return {(run, agent, status): (n, dd, last) for run, agent, status, n, dd, last in rows}


def agent_tally(groups: Groups) -> dict[int, Tally]:
    """{agent pk: what these groups' results add to it}."""
    runs: dict[int, set[int]] = {}
    sums: dict[int, list[Any]] = {}
    for (run, agent, status), (n, _, last) in groups.items():
        if agent is None:
            continue
        runs.setdefault(agent, set()).add(run)
        counted = sums.setdefault(agent, [0, 0, None])
        counted[0] += n
        counted[1] += n if status in FAILURE_VALUES else 0
        if last is not None and (counted[2] is None or last > counted[2]):
            counted[2] = last
    return {agent: Tally(len(runs[agent]), *sums[agent]) for agent in sums}


def run_counts(groups: Groups, run_pks: Collection[int]) -> dict[int, list[list[Any]]]:
    """{run pk: its Run.result_counts} for these runs (an empty list for a run with none)."""
    counts: dict[int, list[list[Any]]] = {pk: [] for pk in run_pks}
    for (run, agent, status), (n, data_driven, _) in sorted(groups.items(), key=_by_key):
        counts[run].append([status, agent, n, data_driven])
    return counts


def _by_key(item: tuple[tuple[int, int | None, str], Any]) -> tuple[int, int, str]:
    run, agent, status = item[0]
    return run, agent or 0, status


def counts_apply(
    *,
    run_pks: Collection[int],
    before: Groups,
    written: Groups | None = None,
    made: Collection[int] = (),
) -> None:
    """Keep the counts and agents of these runs that the write just changed: each agent gets
    the difference from `before` (their result_groups taken before the write), each run its
    counts and agents anew. The runs the write `made` are not read back: their results are
    the rows it wrote, grouped in `written`. At most one aggregate and four statements."""
    if not run_pks:
        return
    stored = sorted(set(run_pks) - set(made))
    after = {**result_groups(run_pks=stored), **(written or {})}
    _agents_apply(agent_tally(before), agent_tally(after))
    sql.run_counts_write(run_counts(after, run_pks))
    pairs = {(run, agent) for run, agent, _ in after if agent is not None}
    sql.run_agents_write(pairs, stored_runs=stored)


def _agents_apply(before: dict[int, Tally], after: dict[int, Tally]) -> None:
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
    """Recount every agent and every run (its counts and its agents) from the results and
    every orchestrator's runs (a repair): set-based statements. Returns the number of agents."""
    runs = Run.objects.filter(orchestrator=OuterRef("pk")).order_by().values("orchestrator")
    Orchestrator.objects.update(
        run_count=Coalesce(Subquery(runs.annotate(n=Count("pk")).values("n")), 0)
    )
    sql.run_counts_rebuild()
    sql.run_agents_rebuild()
    return sql.agent_counts_rebuild(failure_statuses=FAILURE_VALUES)
