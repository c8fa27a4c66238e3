"""Rerun planning at the size that hurts: a plan reads the results it reruns, not the run's
thousands of passes, and the plans of many runs read their results at once."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from runs.models import Agent, ExecutionResult, OrchestratorKind
from runs.services.rerun_plan import RerunInput, RerunInvalid, rerun_plan, rerun_plans
from runs.status import Status
from tests.factories import (
    make_agent,
    make_orchestrator,
    make_result,
    make_results,
    make_run,
    make_schedule,
)

pytestmark = pytest.mark.django_db


@contextmanager
def results_read():
    """The results a plan reads inside: the rows its query of results returns (that query,
    captured, run again), as ExecutionResults."""
    read: list[ExecutionResult] = []
    with CaptureQueriesContext(connection) as captured:
        yield read
    for query in captured.captured_queries:
        if query["sql"].startswith('SELECT "runs_executionresult"."id"'):
            with connection.cursor() as cursor:
                cursor.execute(query["sql"])
                ids = [row[0] for row in cursor.fetchall()]
            read += sorted(ExecutionResult.objects.filter(pk__in=ids), key=lambda r: r.pk)


def big_run(kind=OrchestratorKind.TESTSIGMA, passes=2000):
    """A run of `passes` passing results and three failed cases, one of which passed on a
    later try (so it no longer stands failed)."""
    schedule = make_schedule(make_orchestrator(kind))
    agent = make_agent(schedule.orchestrator)
    run = make_run(schedule, status=Status.FAILED)
    make_results(run, passes, agent=agent)
    seq = passes + 1
    for key, statuses in {"a": ["failed"], "b": ["error"], "c": ["failed", "passed"]}.items():
        for status in statuses:
            make_result(run, case_key=key, status=status, seq=seq, agent=agent)
            seq += 1
    return run


def test_rerunning_the_failed_of_a_big_run_reads_only_the_tries_of_its_failed_cases():
    run = big_run()

    with results_read() as read:
        plan = rerun_plan(source=run, data=RerunInput(scope="failed"))

    assert sorted(c.title for c in plan.cases) == ["a", "b"]
    # Its failures and the tries of their cases: "c"'s pass outlived its failure.
    assert sorted(r.case_key for r in read) == ["a", "b", "c", "c"]


def test_rerunning_everything_still_reads_every_result():
    run = big_run(passes=30)

    with results_read() as read:
        plan = rerun_plan(source=run, data=RerunInput(scope="all"))

    assert len(read) == 34 and len(plan.cases) == 33


def test_a_plan_reads_its_results_as_rows_not_model_objects():
    """Rerunning everything of a run of 10,000 results made 30,000 objects (each result, its
    agent, its case): 0.4 s. Rows and the run's few agents: 70 ms."""
    run = big_run(passes=300)
    agent = run.results.first().agent
    built = []

    def count(sender, **kwargs):
        built.append(sender)

    post_init.connect(count)
    try:
        plan = rerun_plan(source=run, data=RerunInput(scope="all"))
    finally:
        post_init.disconnect(count)

    assert len(plan.cases) == 303 and plan.cases[0].agents == (agent.title,)
    assert built == [Agent]  # the one agent the run ran on, and no result


def test_picked_cases_read_only_the_results_picked():
    run = big_run()
    picked = run.results.get(case_key="b")

    with results_read() as read:
        plan = rerun_plan(source=run, data=RerunInput(scope="picked", result_ids=(picked.pk,)))

    assert [c.title for c in plan.cases] == ["b"] and read == [picked]


def test_a_result_of_another_run_is_still_refused():
    run, other = big_run(passes=3), big_run(passes=3)
    stranger = other.results.get(case_key="a")

    with pytest.raises(RerunInvalid) as raised:
        rerun_plan(source=run, data=RerunInput(scope="picked", result_ids=(stranger.pk,)))

    assert "not results of this run" in str(raised.value.errors["cases"])


def test_the_plans_of_many_runs_read_their_results_and_agents_in_two_queries():
    def queries(runs):
        asked = [(run, RerunInput(scope="failed")) for run in runs]
        with CaptureQueriesContext(connection) as captured:
            plans = rerun_plans(asked)
        assert all(sorted(c.title for c in p.cases) == ["a", "b"] for p in plans)
        return len(captured)

    runs = [big_run(passes=5) for _ in range(6)]

    assert queries(runs[:1]) == queries(runs) == 2  # the results, then their agents


def test_a_case_that_failed_in_another_run_only_is_not_rerun_here():
    """The failed cases of all the runs are read as one set: each run keeps its own."""
    first, second = big_run(passes=2), big_run(passes=2)
    make_result(first, case_key="only-here", status="failed", seq=99)
    make_result(second, case_key="only-here", status="passed", seq=99)

    plans = rerun_plans([(first, RerunInput(scope="failed")), (second, RerunInput(scope="failed"))])

    assert sorted(c.title for c in plans[0].cases) == ["a", "b", "only-here"]
    assert sorted(c.title for c in plans[1].cases) == ["a", "b"]


def test_one_run_that_cannot_be_planned_leaves_the_others_planned():
    passing = make_run(make_schedule(make_orchestrator(OrchestratorKind.TESTSIGMA)))
    make_results(passing, 3)
    failing = big_run(passes=2)

    plans = rerun_plans(
        [(passing, RerunInput(scope="failed")), (failing, RerunInput(scope="failed"))]
    )

    assert isinstance(plans[0], RerunInvalid) and "no failed cases" in str(plans[0].errors)
    assert sorted(c.title for c in plans[1].cases) == ["a", "b"]


def test_what_the_vendor_could_not_be_asked_is_a_clear_refusal_not_an_error():
    """A Leapwork flow reruns on an agent: a failure that names none cannot be rerun, and
    the plan says so (a cause's batch leaves that run out, with the reason)."""
    run = make_run(make_schedule(make_orchestrator(OrchestratorKind.LEAPWORK)))
    make_result(run, case_key="flow-1", status="failed")

    with pytest.raises(RerunInvalid) as raised:
        rerun_plan(source=run, data=RerunInput(scope="failed"))

    assert raised.value.errors == {
        "scope": "Cannot be rerun: flow flow-1 needs an agent to run on."
    }
