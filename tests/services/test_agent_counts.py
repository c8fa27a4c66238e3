"""The counts kept on agent rows: sync keeps them exact in a fixed number of statements per
batch, through changed statuses, pruned results and results that move agent; the rebuild
recounts them from scratch. The same for the runs counted on orchestrator rows, which reruns
create too."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Count, Max, Q
from django.test.utils import CaptureQueriesContext

from runs.models import Agent, ExecutionResult, Orchestrator, Run, RunAgent
from runs.orchestrators.base import ResultSnapshot, RunSnapshot
from runs.services.agent_counts import agent_counts_rebuild
from runs.services.reruns import RerunInput
from runs.services.sync import orchestrator_sync, run_track, runs_store
from runs.status import FAILURES, Status
from tests.emulated import (
    emulated,
    emulator_state,
    failed_run,
    orchestrator_for,
    step_clock,
    synced,
)
from tests.factories import make_agent, make_result, make_run, make_user
from tests.sending import rerun_sent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 4, 1, tzinfo=UTC)


def kept() -> dict[str, tuple]:
    """The counts on the agent rows, by "orchestrator/agent" external id."""
    return {
        f"{a.orchestrator.name}/{a.external_id}": (
            a.run_count,
            a.result_count,
            a.failed_count,
            a.last_seen_at,
        )
        for a in Agent.objects.select_related("orchestrator")
    }


def run_counts_kept() -> dict[int, list]:
    """Each run's results by agent and status, as sync keeps them on the run."""
    return {
        pk: None if counts is None else in_order(map(tuple, counts))
        for pk, counts in Run.objects.values_list("pk", "result_counts")
    }


def in_order(groups) -> list:
    return sorted(groups, key=lambda group: (group[0], group[1] or 0))


def run_counts_recounted() -> dict[int, list]:
    """The same groups, counted from the results."""
    counted: dict[int, list] = {pk: [] for pk in Run.objects.values_list("pk", flat=True)}
    rows = (
        ExecutionResult.objects.values_list("run_id", "status", "agent_id")
        .annotate(n=Count("id"), dd=Count("id", filter=Q(is_data_driven=True)))
        .order_by()
    )
    for run, *group in rows:
        counted[run].append(tuple(group))
    return {pk: in_order(groups) for pk, groups in counted.items()}


def run_agents_kept() -> set[tuple]:
    """The (run, agent, start) rows sync keeps for the history filtered by agent."""
    return set(RunAgent.objects.values_list("run_id", "agent_id", "started_at"))


def run_agents_recounted() -> set[tuple]:
    """The same, from the results and their runs."""
    return set(
        ExecutionResult.objects.filter(agent__isnull=False)
        .values_list("run_id", "agent_id", "run__started_at")
        .distinct()
    )


def runs_kept() -> dict[str, int]:
    return dict(Orchestrator.objects.values_list("name", "run_count"))


def runs_recounted() -> dict[str, int]:
    return dict(Orchestrator.objects.annotate(n=Count("runs")).values_list("name", "n"))


def recounted() -> dict[str, tuple]:
    """The same counts the old page aggregated over every result."""
    return {
        f"{a.orchestrator.name}/{a.external_id}": (a.n_runs, a.n_results, a.n_failed, a.last)
        for a in Agent.objects.select_related("orchestrator").annotate(
            n_runs=Count("results__run", distinct=True),
            n_results=Count("results"),
            n_failed=Count("results", filter=Q(results__status__in=[s.value for s in FAILURES])),
            last=Max("results__started_at"),
        )
    }


def result(n: int, *, agent: str, status: Status = Status.PASSED, at: int = 0) -> ResultSnapshot:
    return ResultSnapshot(
        external_id=f"item-{n}",
        case_key=f"flow-{n}",
        case_title=f"Flow {n}",
        status=status,
        vendor_status=status.value,
        agent_id=agent,
        agent_title=agent,
        started_at=NOW + timedelta(minutes=at),
        seq=n,
    )


def run(external_id: str, *results: ResultSnapshot, hours: int = 0) -> RunSnapshot:
    return RunSnapshot(
        external_id=external_id,
        schedule_id="nightly",
        schedule_title="Nightly",
        status=Status.FAILED,
        vendor_status="Finished",
        started_at=NOW + timedelta(hours=hours),
        finished_at=NOW + timedelta(hours=hours, minutes=5),
        results=tuple(results),
    )


@pytest.fixture
def orchestrator() -> Orchestrator:
    return Orchestrator.objects.create(kind="leapwork", name="lab", base_url="http://x")


def test_it_counts_runs_results_failures_and_the_newest_result_on_first_store(orchestrator):
    runs_store(
        orchestrator=orchestrator,
        snapshots=[
            run("r1", result(1, agent="a"), result(2, agent="a", status=Status.FAILED, at=9)),
            run("r2", result(1, agent="a", status=Status.ERROR), result(2, agent="b"), hours=1),
        ],
    )
    assert kept() == recounted()
    assert kept()["lab/a"] == (2, 3, 2, NOW + timedelta(minutes=9))
    assert run_counts_kept() == run_counts_recounted()
    assert run_agents_kept() == run_agents_recounted()


def test_it_follows_statuses_that_change_on_a_later_store(orchestrator):
    first = run("r1", result(1, agent="a", status=Status.RUNNING), result(2, agent="a"))
    runs_store(orchestrator=orchestrator, snapshots=[first])
    assert kept()["lab/a"][:3] == (1, 2, 0)
    failed = replace(
        first, results=(result(1, agent="a", status=Status.FAILED, at=30), *first.results[1:])
    )
    runs_store(orchestrator=orchestrator, snapshots=[failed])

    assert kept() == recounted()
    assert kept()["lab/a"] == (1, 2, 1, NOW + timedelta(minutes=30))
    assert run_counts_kept() == run_counts_recounted()
    assert run_agents_kept() == run_agents_recounted()


def test_it_forgets_results_pruned_upstream(orchestrator):
    whole = run("r1", result(1, agent="a"), result(2, agent="b", at=5), result(3, agent="a", at=9))
    runs_store(
        orchestrator=orchestrator, snapshots=[whole, run("r0", result(1, agent="a"), hours=-1)]
    )
    runs_store(orchestrator=orchestrator, snapshots=[replace(whole, results=whole.results[:1])])

    assert kept() == recounted()
    assert kept()["lab/a"] == (2, 2, 0, NOW)  # its newest result (at 9) is gone
    assert kept()["lab/b"] == (0, 0, 0, None)
    assert run_counts_kept() == run_counts_recounted()
    assert run_agents_kept() == run_agents_recounted()


def test_it_moves_a_runs_results_from_one_agent_to_another(orchestrator):
    on_a = run("r1", result(1, agent="a", status=Status.FAILED), result(2, agent="a"))
    runs_store(
        orchestrator=orchestrator,
        snapshots=[on_a, run("r2", result(1, agent="a", at=-120), hours=-2)],
    )
    on_b = replace(
        on_a, results=tuple(replace(r, agent_id="b", agent_title="b") for r in on_a.results)
    )
    runs_store(orchestrator=orchestrator, snapshots=[on_b])

    assert kept() == recounted()
    assert kept()["lab/a"] == (1, 1, 0, NOW - timedelta(hours=2))
    assert kept()["lab/b"] == (1, 2, 1, NOW)
    assert run_counts_kept() == run_counts_recounted()
    assert run_agents_kept() == run_agents_recounted()


def test_a_store_that_changes_nothing_writes_no_agent(orchestrator):
    snapshots = [run("r1", result(1, agent="a")), run("r2", result(1, agent="b"), hours=1)]
    runs_store(orchestrator=orchestrator, snapshots=snapshots)
    # A new run elsewhere: only its own agent's row is written.
    with CaptureQueriesContext(connection) as queries:
        runs_store(
            orchestrator=orchestrator, snapshots=[*snapshots, run("r3", result(1, agent="c"))]
        )
    updates = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "runs_agent"')
    ]
    assert len(updates) == 1 and kept() == recounted()


def test_a_batch_of_new_runs_counts_the_rows_it_wrote_without_reading_them_back(orchestrator):
    # The vendor lists item-1 twice: stored once (the last reading), so counted once.
    twice = run(
        "r1",
        result(1, agent="a", status=Status.FAILED),
        result(1, agent="b", at=3),
        result(2, agent="a", status=Status.ERROR, at=7),
    )
    with CaptureQueriesContext(connection) as queries:
        runs_store(
            orchestrator=orchestrator, snapshots=[twice, run("r2", result(1, agent="b"), hours=1)]
        )

    grouped = [
        q["sql"]
        for q in queries.captured_queries
        if 'FROM "runs_executionresult"' in q["sql"] and "GROUP BY" in q["sql"]
    ]
    assert grouped == []
    assert kept() == recounted()
    assert kept()["lab/a"] == (1, 1, 1, NOW + timedelta(minutes=7))
    assert run_counts_kept() == run_counts_recounted()
    assert run_agents_kept() == run_agents_recounted()


def test_a_runs_agents_follow_its_results_and_its_start(orchestrator):
    first = run("r1", result(1, agent="a"), result(2, agent="b"))
    runs_store(orchestrator=orchestrator, snapshots=[first])
    stored = Run.objects.get()
    assert run_agents_kept() == {
        (stored.pk, a, NOW) for a in Agent.objects.values_list("pk", flat=True)
    }

    # Later the vendor tells another start, and the results all ran on b.
    moved = replace(
        first,
        started_at=NOW + timedelta(hours=1),
        results=tuple(replace(r, agent_id="b", agent_title="b") for r in first.results),
    )
    runs_store(orchestrator=orchestrator, snapshots=[moved])

    b = Agent.objects.get(external_id="b")
    assert run_agents_kept() == {(stored.pk, b.pk, NOW + timedelta(hours=1))}
    assert run_agents_kept() == run_agents_recounted()


def many(runs: int, agents: int, per_run: int) -> list[RunSnapshot]:
    return [
        run(
            f"run-{n}",
            *(result(i, agent=f"agent-{(n + i) % agents}") for i in range(per_run)),
            hours=n,
        )
        for n in range(runs)
    ]


def test_a_batch_needs_no_more_queries_for_ten_times_the_agents_and_results():
    small = Orchestrator.objects.create(kind="leapwork", name="small", base_url="http://x")
    large = Orchestrator.objects.create(kind="leapwork", name="large", base_url="http://y")
    with CaptureQueriesContext(connection) as few:
        runs_store(orchestrator=small, snapshots=many(20, 3, 10))
    with CaptureQueriesContext(connection) as more:
        runs_store(orchestrator=large, snapshots=many(20, 30, 100))

    assert len(more.captured_queries) <= len(few.captured_queries)
    assert kept() == recounted()
    assert run_counts_kept() == run_counts_recounted()
    assert run_agents_kept() == run_agents_recounted()


@pytest.mark.parametrize("kind", ["leapwork", "conductor", "testsigma"])
def test_the_counts_match_a_recount_after_syncing_an_emulated_history(kind):
    with emulated(kind, history=1, pace=0.5) as (_app, server):
        state = emulator_state(server)
        plans = [str(p["id"]) for p in state.get("test_plans", [])]
        orchestrator = orchestrator_for(server, **({"test_plan_ids": plans} if plans else {}))
        for plan in state.get("test_plans", []):
            run_track(orchestrator=orchestrator, external_id=str(plan["run_ids"][0]))
        report = orchestrator_sync(orchestrator=orchestrator)
    assert report.ok, report.error
    assert ExecutionResult.objects.filter(agent__isnull=False).exists()
    assert kept() == recounted()
    assert runs_kept() == runs_recounted() and runs_kept()[orchestrator.name] > 0
    # Every run sync stored has its results counted on it, as a recount finds them.
    assert None not in run_counts_kept().values()
    assert run_counts_kept() == run_counts_recounted()
    assert run_agents_kept() == run_agents_recounted()


@pytest.mark.parametrize("kind", ["leapwork", "conductor", "testsigma"])
def test_the_runs_a_rerun_makes_are_counted_once_whoever_stores_them_first(kind):
    with synced(kind) as (server, orchestrator):
        source = failed_run(orchestrator)
        request, sent = rerun_sent(
            user=make_user("ana", rerunner=True),
            idempotency_key=f"count-{kind}",
            data=RerunInput(scope="failed"),
            source=source,
        )
        assert sent and request.runs.exists()
        assert runs_kept() == runs_recounted()
        step_clock(server, 3600)
        assert orchestrator_sync(orchestrator=orchestrator).ok
    assert runs_kept() == runs_recounted()


def test_the_rebuild_repairs_counts_that_drifted():
    first = make_run()
    second = make_run(first.schedule)
    agent = make_agent(first.orchestrator, title="A")
    idle = make_agent(first.orchestrator, title="Idle")
    make_result(first, agent=agent, status=Status.FAILED)
    make_result(first, agent=agent)
    make_result(second, agent=agent)
    Agent.objects.filter(pk=idle.pk).update(run_count=7, result_count=9, failed_count=3)
    Orchestrator.objects.update(run_count=40)
    Run.objects.filter(pk=first.pk).update(result_counts=[["passed", None, 99, 0]])
    RunAgent.objects.create(run=second, agent=idle, started_at=second.started_at)  # it never ran

    agent_counts_rebuild()

    assert kept() == recounted()
    assert runs_kept() == runs_recounted() == {first.orchestrator.name: 2}
    name = first.orchestrator.name
    assert kept()[f"{name}/{agent.external_id}"][:3] == (2, 3, 1)
    assert kept()[f"{name}/{idle.external_id}"] == (0, 0, 0, None)
    assert run_counts_kept() == run_counts_recounted()
    assert run_agents_kept() == run_agents_recounted()
    assert {(run, a) for run, a, _ in run_agents_kept()} == {
        (first.pk, agent.pk),
        (second.pk, agent.pk),
    }
    assert run_counts_kept()[first.pk] == [("failed", agent.pk, 1, 0), ("passed", agent.pk, 1, 0)]
