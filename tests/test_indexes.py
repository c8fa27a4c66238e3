"""The search and sort indexes exist on every database, and PostgreSQL's plans read them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from runs import selectors
from runs.models import (
    ExecutionResult,
    FailureGroup,
    OrchestratorKind,
    Run,
    RunAgent,
    Schedule,
)
from runs.services.agent_counts import agent_counts_rebuild
from runs.services.cause_reruns import cause_rerun_plan
from runs.status import FAILURE_VALUES
from tests.factories import (
    make_agent,
    make_agents,
    make_orchestrator,
    make_result,
    make_results,
    make_run,
    make_runs,
    make_schedule,
    make_test_case,
)

pytestmark = pytest.mark.django_db


def indexes_of(model) -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, model._meta.db_table)


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (Run, "run_external_trgm"),
        (Run, "run_build_trgm"),
        (Run, "run_duration_desc_idx"),
        (ExecutionResult, "result_case_started_idx"),
        (Schedule, "schedule_title_trgm"),
        (ExecutionResult, "result_run_agent_idx"),
        (ExecutionResult, "result_run_seq_idx"),
        (ExecutionResult, "result_case_cause_idx"),
        (ExecutionResult, "result_run_failure_seq_idx"),
        (Run, "run_schedule_vars_idx"),
        (RunAgent, "runagent_agent_started_idx"),
    ],
)
def test_it_has_each_index_under_its_name_on_every_database(model, name):
    assert indexes_of(model)[name]["index"]


def redundant_indexes(model) -> list[str]:
    """The model's plain indexes that another index or unique constraint leads with (same
    columns, same order): every write pays for them and no read needs them. Partial indexes
    (smaller than the one they lead) and PostgreSQL's `_like` ones (another operator class,
    for LIKE) are not redundant."""
    found = indexes_of(model)
    partial = {index.name for index in model._meta.indexes if index.condition is not None}
    # Each index's (column, order) pairs; a unique constraint's columns are in ascending order.
    keys = {
        name: tuple(zip(c["columns"], c.get("orders") or ["ASC"] * len(c["columns"]), strict=True))
        for name, c in found.items()
        if (c["index"] or c["unique"]) and c["columns"] and name not in partial
    }
    return [
        name
        for name, key in keys.items()
        if found[name]["index"]
        and not found[name]["unique"]
        and not name.endswith("_like")
        and any(len(other) > len(key) and other[: len(key)] == key for other in keys.values())
    ]


@pytest.mark.parametrize(
    "model", list(apps.get_app_config("runs").get_models()), ids=lambda model: model.__name__
)
def test_no_index_is_one_that_another_leads_with(model):
    assert redundant_indexes(model) == []


def test_results_keep_no_single_column_index_a_composite_one_leads_with():
    single = {
        tuple(found["columns"])
        for found in indexes_of(ExecutionResult).values()
        if found["index"] and not found["primary_key"] and len(found["columns"]) == 1
    }
    assert not single & {("run_id",), ("test_case_id",), ("agent_id",)}


def plan(queryset, *off: str) -> str:
    """PostgreSQL's plan for the queryset, with the planner's `off` methods ("seqscan",
    "bitmapscan", ...) forbidden: on tables this small a scan is cheapest, so forbidding it
    shows which indexes can answer the query."""
    return explain(*queryset.query.sql_with_params(), *off)


def analyze_results() -> None:
    """Statistics of the results this test made, for a plan that depends on them, not of
    another test's (ANALYZE's counts outlive a rollback)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runs_executionresult")


def explain(sql: str, params: Any = (), *off: str) -> str:
    """plan() for a query's SQL (one a page was seen to run)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for method in off:
            cursor.execute(f"SET LOCAL enable_{method} = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
def test_it_searches_runs_through_the_trigram_indexes():
    assert indexes_of(Run)["run_external_trgm"]["type"] == "gin"
    make_run(external_id="run-4242", build="build-7")
    # On a table this small a scan is cheapest, or walking the history's order; forbid
    # both to see which indexes can answer the search itself.
    found = plan(
        selectors.run_filter(Run.objects.all(), filters={"q": "un-42"}), "seqscan", "indexscan"
    )
    assert "run_external_trgm" in found and "run_build_trgm" in found


def agents_query(**asked: str) -> str:
    """The SQL of the agents page's own query, as asked, over a few hundred agents."""
    make_agents(300)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runs_agent")
    with CaptureQueriesContext(connection) as queries:
        selectors.agent_list_with_counts(**asked)
    sql = next(q["sql"] for q in queries.captured_queries if "runs_agent" in q["sql"])
    return sql.replace("%", "%%")  # a LIKE pattern's, run again without parameters


@pytest.mark.postgres
def test_the_agents_page_walks_the_agents_by_when_they_were_last_seen():
    """A page of a cluster's thousands of workers, from the index in the page's order."""
    found = explain(agents_query(), (), "seqscan")
    assert "Index Scan using agent_last_seen_idx" in found, found


@pytest.mark.postgres
def test_it_searches_agents_through_the_trigram_indexes():
    found = explain(agents_query(q="ker-7"), (), "seqscan", "indexscan")
    assert "agent_title_trgm" in found and "agent_host_trgm" in found, found


@pytest.mark.postgres
def test_the_build_filter_reads_a_range_of_the_prefix_index():
    """Not the trigram index: its lists for trigrams every build shares ("BUI", "LD-") are as
    long as the history."""
    make_run(build="build-100")
    found = plan(selectors.run_filter(Run.objects.all(), filters={"build": "Build-10"}), "seqscan")
    assert "run_build_prefix_idx" in found and "run_build_trgm" not in found, found
    assert "'BUILD-10'::text" in found and "'BUILD-11'::text" in found, found  # the range


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("2.0", ["2.0", "2.0.1", "2.0-RC"]),
        ("2.0.", ["2.0.1"]),
        ("2.0-rc", ["2.0-RC"]),
        ("0.1", []),
        ("2_", ["2_0"]),
    ],
)
def test_the_build_filter_keeps_the_builds_that_start_with_it_in_any_case(typed, found):
    for build in ("2.0", "2.0.1", "2.0-RC", "12.0.1", "2_0"):
        make_run(build=build)
    runs = selectors.run_history(filters={"build": typed}).items
    assert sorted(run.build for run in runs) == sorted(found)


@pytest.mark.postgres
@pytest.mark.parametrize("sort", ["-duration", "duration"])
def test_it_sorts_by_duration_from_an_index_both_ways(sort):
    schedule = make_schedule()
    for minutes in (3, 1, None):
        make_run(schedule, duration=timedelta(minutes=minutes) if minutes else None)
    key = selectors.RUN_SORT_KEYS[sort]
    found = plan(Run.objects.order_by(*key.ordering())[:51], "seqscan")
    assert "Index Scan" in found and "Sort" not in found, found


@pytest.mark.parametrize("text", ["NIGHTLY", "un-42", "uild-7"])
def test_a_search_finds_runs_by_schedule_title_id_or_build_in_any_case(text):
    target = make_run(make_schedule(title="Checkout nightly"), external_id="run-4242")
    Run.objects.filter(pk=target.pk).update(build="build-7")
    make_run(make_schedule(title="Login"), external_id="other", build="b")
    if text == "NIGHTLY":
        Run.objects.filter(pk=target.pk).update(external_id="x", build="")
    found = selectors.run_history(filters={"q": text}).items
    assert [run.pk for run in found] == [target.pk]


@pytest.mark.postgres
def test_a_test_case_page_reads_its_results_in_order_from_an_index():
    run = make_run()
    case = make_test_case(run.orchestrator)
    make_result(run, test_case=case)
    make_result(run, test_case=case, started_at=None)
    results = ExecutionResult.objects.filter(test_case=case)
    # On a table this small a bitmap scan and a sort are cheapest; forbid both scans but
    # the plain index scan to see whether an index gives the page's order.
    found = plan(results.order_by(*selectors.RESULT_KEY.ordering())[:31], "seqscan", "bitmapscan")
    assert "result_case_started_idx" in found and "Sort" not in found, found


@pytest.mark.postgres
def test_whether_a_cause_is_new_is_read_from_the_failures_of_the_cases_shown():
    """From the index of the cases' failures alone, which carries their runs: not every
    result of the cases, nor every failure of the causes (which the index by cause, carrying
    cases too, would offer)."""
    schedule = make_schedule()
    earlier, run = make_run(schedule), make_run(schedule)
    case = make_test_case(schedule.orchestrator)
    for source in (earlier, run):
        make_result(source, test_case=case, status="failed", fingerprint="0123456789abcdef")
    before = selectors.failures_before(run, ["0123456789abcdef"], [case.pk])
    found = plan(before.values_list("fingerprint", "test_case_id").order_by().distinct(), "seqscan")
    assert "Index Only Scan using result_case_cause_idx" in found, found


@pytest.mark.postgres
def test_a_run_page_reads_its_failures_in_order_from_the_failures_index():
    """The failures shown apart (and the failures filter's pages) walk an index of the run's
    failures alone: not every result of the run filtered, nor all its failures sorted."""
    run = make_run()
    for status in ("passed", "failed", "error", "passed"):
        make_result(run, status=status)
    failures = ExecutionResult.objects.filter(run=run, status__in=FAILURE_VALUES)
    found = plan(failures.order_by(*selectors.SEQ_KEY.ordering())[:21], "seqscan", "bitmapscan")
    assert "result_run_failure_seq_idx" in found and "Sort" not in found, found


@pytest.mark.postgres
def test_one_agents_failures_in_a_window_are_read_from_its_failures_index():
    """From the index alone: not the agent's every result ANDed with every failure of the
    history, nor every failure of the window filtered by agent."""
    run = make_run()
    case = make_test_case(run.orchestrator)
    make_result(run, test_case=case, status="failed", fingerprint="0123456789abcdef")
    since = run.started_at - timedelta(days=30)
    failures = ExecutionResult.objects.exclude(fingerprint="").filter(
        agent=1, started_at__gte=since
    )
    found = plan(failures.values("fingerprint").annotate(n=Count("id")).order_by(), "seqscan")
    assert "Index Only Scan using result_agent_failed_idx" in found, found


@pytest.mark.postgres
def test_the_failures_of_the_causes_shown_are_expected_in_their_number():
    """Told `fingerprint <> ''` beside `fingerprint IN (...)`, PostgreSQL multiplies the two
    as if apart and expects a twentieth of the rows here (a fortieth at 100k runs), then
    sorts them to count them per day where it would hash."""
    run = make_run()
    make_results(run, 1900)
    make_results(run, 60, status="failed", fingerprint="aaaaaaaaaaaaaaaa")
    make_results(run, 40, status="failed", fingerprint="bbbbbbbbbbbbbbbb")
    analyze_results()
    causes = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]
    failures = selectors._failures_in(run.started_at, {}, causes=causes)
    sql, params = failures.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        expected = cursor.fetchone()[0][0]["Plan"]["Plan Rows"]
    assert failures.count() == 100 and expected >= 100 / 3


@pytest.mark.postgres
def test_a_rerun_form_finds_the_newest_variables_of_a_schedule_from_its_runs_that_had_any():
    """Not by walking back through every run of the schedule that had none."""
    schedule = make_schedule()
    make_run(schedule, variables={"browser": "firefox"})
    make_run(schedule)
    latest = schedule.runs.exclude(variables={}).order_by("-started_at")[:1]
    assert "run_schedule_vars_idx" in plan(latest.values_list("variables"), "seqscan")


@pytest.mark.postgres
def test_a_windows_failures_are_counted_from_the_failures_index_alone():
    """The failures page's reach of each cause reads every failure of the window: from the
    index's own entries, not a heap page per failure."""
    run = make_run()
    make_results(run, 30, status="failed", fingerprint="aaaaaaaaaaaaaaaa")
    analyze_results()
    with CaptureQueriesContext(connection) as queries:
        selectors.failure_groups(days=30)
    reach = next(q["sql"] for q in queries.captured_queries if "runs_executionresult" in q["sql"])
    found = explain(reach, (), "seqscan", "bitmapscan")
    assert "Index Only Scan using result_failed_started_idx" in found, found


@pytest.mark.postgres
def test_a_causes_page_counts_its_failures_from_the_cause_index_alone():
    """Its spreads (cases, agents, schedules) and count read the cause's failures of the
    window from the index by cause, which carries what they count."""
    run = make_run()
    make_results(run, 30, status="failed", fingerprint="a" * 16)
    make_results(run, 600, status="failed", fingerprint="b" * 16)
    analyze_results()
    group = FailureGroup.objects.create(fingerprint="a" * 16, version=1, normalized="boom")
    failures = selectors._group_failures(group, 30)
    found = plan(failures.values("agent_id").annotate(n=Count("id")), "seqscan", "bitmapscan")
    assert "Index Only Scan using result_fingerprint_idx" in found, found


@pytest.mark.postgres
def test_the_runs_a_cause_struck_are_told_from_those_rerun_by_an_anti_join():
    """A cause's rerun batch walks its failures newest first and leaves out the runs rerun
    already. Asked as `reruns.id IS NULL` after a left join, PostgreSQL expected one run to
    remain and joined every run of the history to its results one by one (230 ms at 10k
    runs); as NOT EXISTS it knows how many are left."""
    group = FailureGroup.objects.create(fingerprint="a" * 16, version=1, normalized="boom")
    schedule = make_schedule(make_orchestrator(OrchestratorKind.TESTSIGMA))
    for run in make_runs(40, schedule):
        make_results(run, 3, status="failed", fingerprint=group.fingerprint)
    analyze_results()
    with CaptureQueriesContext(connection) as queries:
        cause_rerun_plan(group=group, days=30)
    struck = next(q["sql"] for q in queries.captured_queries if "LIMIT" in q["sql"])
    assert "Anti Join" in explain(struck), explain(struck)


@pytest.mark.postgres
def test_an_agents_history_walks_the_agents_own_runs_newest_first():
    """From the pairs sync keeps (RunAgent), by the agent and the run's start: not every run
    of the history, newest first, asking its results whether the agent ran any (for an agent
    retired long ago, every run of the history)."""
    schedule = make_schedule()
    agent = make_agent(schedule.orchestrator)
    make_result(make_run(schedule), agent=agent)
    agent_counts_rebuild()
    for sort in ("-started", "started"):
        history = selectors.run_history_queryset(filters={"agent": agent}, sort=sort)[:51]
        # Sorting forbidden too: the index itself gives the history's order, either way.
        found = plan(history, "seqscan", "bitmapscan", "sort")
        assert "runagent_agent_started_idx" in found and "run_started_idx" not in found, found
        assert "Sort" not in found, found
