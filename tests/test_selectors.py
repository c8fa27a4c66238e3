"""Selectors: keyset pagination over ties and nulls, filters, lineage, trends, flakiness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs import selectors
from runs.models import ExecutionResult, RerunRequest, Run, Trigger
from runs.selectors import RUN_SORT_KEYS, SortKey
from runs.services.agent_counts import agent_counts_rebuild
from runs.services.failure_groups import fingerprints_refresh
from runs.status import Status
from tests.factories import (
    make_agent,
    make_result,
    make_run,
    make_schedule,
    make_test_case,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def walk(sort: str, size: int) -> list[int]:
    """Every run id, following `after` cursors page by page."""
    seen, after = [], ""
    while True:
        page = selectors.run_history(sort=sort, after=after, size=size)
        seen += [run.pk for run in page.items]
        if not page.next_cursor:
            return seen
        after = page.next_cursor


def walk_back(sort: str, size: int) -> list[int]:
    """Every run id from the last page to the first, following `before` cursors."""
    pages = []
    page = selectors.run_history(sort=sort, size=size)
    while page.next_cursor:
        page = selectors.run_history(sort=sort, after=page.next_cursor, size=size)
    pages.append([run.pk for run in page.items])
    while page.prev_cursor:
        page = selectors.run_history(sort=sort, before=page.prev_cursor, size=size)
        pages.append([run.pk for run in page.items])
    return [pk for chunk in reversed(pages) for pk in chunk]


@pytest.fixture
def tied_runs():
    """Runs sharing start times and durations, some still running (no duration)."""
    schedule = make_schedule()
    runs = []
    for i in range(17):
        running = i % 5 == 0
        runs.append(
            make_run(
                schedule,
                started_at=T0 + timedelta(minutes=i // 3),
                duration=None if running else timedelta(seconds=(i % 4) * 10),
                status=Status.RUNNING if running else Status.PASSED,
            )
        )
    return runs


@pytest.mark.parametrize("sort", list(RUN_SORT_KEYS))
def test_it_walks_every_sort_forward_and_back_without_gaps_or_repeats(tied_runs, sort):
    expected = [run.pk for run in Run.objects.order_by(*RUN_SORT_KEYS[sort].ordering())]
    assert walk(sort, size=4) == expected
    assert walk_back(sort, size=4) == expected
    assert len(expected) == 17


def test_duration_sorts_put_unknown_durations_last(tied_runs):
    ordered = walk("-duration", size=50)
    running = {run.pk for run in tied_runs if run.duration is None}
    assert set(ordered[-len(running) :]) == running


def test_a_cursor_round_trips_and_junk_is_refused():
    key = SortKey("started_at", descending=True)
    run = Run(pk=7, started_at=datetime(2026, 6, 1, 12, 30, 15, 123456, tzinfo=UTC))
    assert key.decode(key.encode(run)) == (run.started_at, 7)
    assert key.decode("x_1") is None and key.decode("") is None and key.decode("5_") is None
    assert key.decode("n_3") is None  # started_at is never null
    nullable = SortKey("duration", descending=False, nullable=True)
    assert nullable.decode("n_3") == (None, 3)


def test_run_filter_matches_agent_through_the_runs_agents():
    schedule = make_schedule()
    agent = make_agent(schedule.orchestrator)
    on_agent = make_run(schedule)
    make_result(on_agent, agent=agent)
    make_result(on_agent, agent=agent)  # two results, still one row
    make_run(schedule)
    agent_counts_rebuild()  # factories write results directly; sync keeps RunAgent
    page = selectors.run_history(filters={"agent": agent})
    assert [run.pk for run in page.items] == [on_agent.pk]


@pytest.mark.parametrize("sort", ["-started", "started", "-duration", "duration"])
def test_an_agents_history_pages_through_its_runs_in_the_historys_order(sort):
    schedule = make_schedule()
    agent, other = make_agent(schedule.orchestrator), make_agent(schedule.orchestrator)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    runs = []
    for n in range(12):
        # Two runs at each start (ties broken by id), durations out of step with starts.
        run = make_run(
            schedule, started_at=start + timedelta(hours=n // 2), duration=timedelta(seconds=n % 5)
        )
        make_result(run, agent=agent if n % 3 else other)
        runs.append(run)
    agent_counts_rebuild()
    on_agent = {run.pk for n, run in enumerate(runs) if n % 3}
    # The whole history's order, kept to the agent's runs.
    expected = [run.pk for run in selectors.run_history_queryset(sort=sort) if run.pk in on_agent]

    seen, after = [], ""
    while True:
        page = selectors.run_history(filters={"agent": agent}, sort=sort, after=after, size=3)
        seen += [run.pk for run in page.items]
        if not page.next_cursor:
            break
        after = page.next_cursor
    back = selectors.run_history(filters={"agent": agent}, sort=sort, before=after, size=3)

    assert seen == expected and len(seen) == 8
    assert [run.pk for run in back.items] == expected[-6:-3]


def test_it_puts_the_first_failures_apart_and_pages_the_rest_by_seq():
    run = make_run()
    passed = make_result(run, status=Status.PASSED, seq=1)
    running = make_result(run, status=Status.RUNNING, seq=2)
    errored = make_result(run, status=Status.ERROR, seq=3)
    failed = make_result(run, status=Status.FAILED, seq=4)
    results = selectors.run_result_page(run=run)
    assert [r.pk for r in results.failures] == [errored.pk, failed.pk]
    assert [r.pk for r in results.page.items] == [passed.pk, running.pk]
    assert [r.pk for r in results.shown] == [passed.pk, running.pk, errored.pk, failed.pk]
    filtered = selectors.run_result_page(run=run, filters={"status": "failures"})
    assert filtered.failures == [] and [r.pk for r in filtered.page.items] == [
        errored.pk,
        failed.pk,
    ]


def test_a_run_page_reads_each_result_as_one_row_of_values_with_its_case_and_agent(
    django_assert_num_queries,
):
    run = make_run()
    case = make_test_case(run.orchestrator, title="Checkout")
    agent = make_agent(run.orchestrator, title="Alpha")
    failed = make_result(
        run,
        status=Status.FAILED,
        seq=1,
        test_case=case,
        agent=agent,
        message="boom",
        input={"a": 1},
    )
    bare = make_result(run, status=Status.PASSED, seq=2, case_key="loose")
    with django_assert_num_queries(2):
        results = selectors.run_result_page(run=run)
        row, other = results.failures[0], results.page.items[0]
    assert isinstance(row, selectors.ResultRow)
    assert row.pk == failed.pk
    assert row.test_case == selectors.Titled(case.pk, "Checkout")
    assert row.agent == selectors.Titled(agent.pk, "Alpha")
    assert (row.message, row.input, row.status_enum) == ("boom", {"a": 1}, Status.FAILED)
    assert (other.pk, other.case_key, other.test_case, other.agent) == (
        bare.pk,
        "loose",
        None,
        None,
    )


def test_it_walks_a_big_run_by_key_in_pages_of_the_size_asked():
    run = make_run()
    ExecutionResult.objects.bulk_create(
        ExecutionResult(run=run, external_id=f"r{n}", seq=n % 7, status=Status.PASSED)
        for n in range(25)
    )
    seen, after = [], ""
    for _ in range(3):
        page = selectors.run_result_page(run=run, after=after, size=10).page
        seen += [(r.seq, r.pk) for r in page.items]
        after = page.next_cursor or ""
    assert after == "" and len(seen) == 25 and seen == sorted(seen)
    back = selectors.run_result_page(run=run, before=page.prev_cursor, size=10).page
    assert [(r.seq, r.pk) for r in back.items] == seen[10:20]


def test_it_bounds_the_failures_shown_apart_and_says_there_are_more():
    run = make_run()
    ExecutionResult.objects.bulk_create(
        ExecutionResult(run=run, external_id=f"r{n}", seq=n, status=Status.FAILED)
        for n in range(selectors.FAILURES_SHOWN + 5)
    )
    results = selectors.run_result_page(run=run)
    assert len(results.failures) == selectors.FAILURES_SHOWN and results.more_failures
    assert results.page.items == []


def test_it_counts_results_by_status_and_agent_in_one_query(django_assert_num_queries):
    run = make_run()
    alpha = make_agent(run.orchestrator, title="Alpha")
    beta = make_agent(run.orchestrator, title="Beta")
    make_result(run, agent=alpha, status=Status.PASSED)
    make_result(run, agent=alpha, status=Status.FAILED, is_data_driven=True)
    make_result(run, agent=beta, status=Status.ERROR)
    make_result(run, status=Status.PASSED)
    with django_assert_num_queries(1):
        counts = selectors.run_result_counts(run=run)
    assert counts.statuses == [("passed", 2), ("failed", 1), ("error", 1)]
    assert counts.total == 4 and counts.failures == 2 and counts.failures_data_driven == 1
    assert [(a.pk, a.results, a.failed) for a in counts.agents] == [
        (alpha.pk, 2, 1),
        (beta.pk, 1, 1),
    ]
    assert counts.failures_on(beta.pk) == 1 and counts.failures_on(None) == 2


def test_lineage_lists_source_reruns_and_attempts():
    source = make_run(external_id="wf-1")
    second = make_run(source.schedule, external_id="wf-1", attempt=2, rerun_of=source)
    rerun = make_run(source.schedule, rerun_of=source, trigger=Trigger.RERUN)
    lineage = selectors.run_lineage(run=selectors.run_get(pk=source.pk))
    assert lineage.source is None
    assert {run.pk for run in lineage.reruns} == {second.pk, rerun.pk}
    assert [run.pk for run in lineage.attempts] == [second.pk]
    lineage = selectors.run_lineage(run=selectors.run_get(pk=second.pk))
    assert lineage.source.pk == source.pk and [r.pk for r in lineage.attempts] == [source.pk]


def test_a_run_s_page_reads_its_lineage_and_reruns_only_when_it_has_them():
    source = make_run(external_id="wf-1")
    alone = make_run(source.schedule, external_id="wf-2")
    retried = make_run(source.schedule, external_id="wf-1", attempt=2)  # no rerun_of
    rerun = make_run(source.schedule, rerun_of=alone, trigger=Trigger.RERUN)
    # A rerun asked of attempt 2 counts on attempt 1's page too (the same vendor run).
    RerunRequest.objects.create(orchestrator=retried.orchestrator, source_run=retried)
    lone = make_run(source.schedule, external_id="wf-3")
    found = {run.pk: selectors.run_get_for_page(pk=run.pk) for run in (source, alone, lone)}
    assert [run.pk for run in selectors.run_lineage(run=found[source.pk]).attempts] == [retried.pk]
    assert [run.pk for run in selectors.run_lineage(run=found[alone.pk]).reruns] == [rerun.pk]
    assert len(selectors.rerun_request_list(run=found[source.pk])) == 1
    assert selectors.rerun_request_list(run=found[alone.pk]) == []
    # A run neither rerun nor a rerun, with no other attempt: neither is read.
    with CaptureQueriesContext(connection) as queries:
        assert selectors.run_lineage(run=found[lone.pk]).is_empty
        assert selectors.rerun_request_list(run=found[lone.pk]) == []
    assert not queries.captured_queries
    # A rerun with nothing else still names its source.
    rerun = selectors.run_get_for_page(pk=rerun.pk)
    assert selectors.run_lineage(run=rerun).source.pk == alone.pk


def test_flakiness_follows_rerun_chains():
    schedule = make_schedule()
    case = make_test_case(schedule.orchestrator)
    first = make_run(schedule, status=Status.FAILED)
    make_result(first, test_case=case, status=Status.FAILED)
    again = make_run(schedule, rerun_of=first, status=Status.FAILED)
    make_result(again, test_case=case, status=Status.FAILED)
    finally_ = make_run(schedule, rerun_of=again)
    make_result(finally_, test_case=case, status=Status.PASSED)
    stubborn = make_run(schedule, status=Status.FAILED)
    make_result(stubborn, test_case=case, status=Status.FAILED)
    stats = selectors.test_case_stats(test_case=case)
    flakiness = stats.flakiness
    assert (flakiness.results, flakiness.failed, flakiness.flaky) == (2, 2, 1)
    assert flakiness.share == 0.5
    assert (stats.results, stats.rerun_results, stats.failed) == (4, 2, 3)


def test_schedule_trend_is_oldest_first_and_skips_runs_in_progress():
    schedule = make_schedule()
    a = make_run(schedule, started_at=T0, total_count=4, passed_count=1, status=Status.FAILED)
    b = make_run(schedule, started_at=T0 + timedelta(hours=1), total_count=2, passed_count=2)
    make_run(schedule, started_at=T0 + timedelta(hours=2), status=Status.QUEUED)
    trend = selectors.schedule_trend(schedule=schedule)
    assert [(p.run_id, p.rate) for p in trend] == [(a.pk, 0.25), (b.pk, 1.0)]


def test_go_finds_the_newest_attempt_by_orchestrator_name():
    run = make_run(external_id="abc")
    newer = make_run(run.schedule, external_id="abc", attempt=3)
    found = selectors.run_find_by_external_id(orchestrator=run.orchestrator.name, external_id="abc")
    assert found.pk == newer.pk
    assert selectors.run_find_by_external_id(orchestrator="nope", external_id="abc") is None


@pytest.fixture
def rerun_estate():
    """Three original runs of a schedule and their reruns, all under that schedule."""
    schedule = make_schedule()
    case_x, case_y, case_z = (make_test_case(schedule.orchestrator) for _ in range(3))

    def run_with(started, statuses, **fields):
        counts = {
            "total_count": len(statuses),
            "passed_count": sum(s == Status.PASSED for s in statuses.values()),
            "failed_count": sum(s in (Status.FAILED, Status.ERROR) for s in statuses.values()),
        }
        status = Status.PASSED if counts["failed_count"] == 0 else Status.FAILED
        run = make_run(schedule, started_at=started, status=status, **counts, **fields)
        for case, result_status in statuses.items():
            make_result(run, test_case=case, status=result_status)
        return run

    # a: two of three cases failed; a 2-case rerun (Leapwork: one run per case) saves one.
    a = run_with(T0, {case_x: Status.FAILED, case_y: Status.ERROR, case_z: Status.PASSED})
    per_case_x = run_with(
        T0 + timedelta(minutes=5), {case_x: Status.PASSED}, trigger=Trigger.RERUN, rerun_of=a
    )
    per_case_y = run_with(
        T0 + timedelta(minutes=6), {case_y: Status.FAILED}, trigger=Trigger.RERUN, rerun_of=a
    )
    # b: passed, never rerun.
    b = run_with(T0 + timedelta(hours=1), {case_x: Status.PASSED, case_y: Status.PASSED})
    # c: failed twice over; a retry (attempt 2) saves x, a rerun of that attempt saves y.
    c = run_with(
        T0 + timedelta(hours=2),
        {case_x: Status.FAILED, case_y: Status.FAILED, case_z: Status.PASSED},
        external_id="wf-c",
    )
    attempt = run_with(
        T0 + timedelta(hours=2, minutes=5),
        {case_x: Status.PASSED, case_y: Status.FAILED},
        external_id="wf-c",
        attempt=2,
        trigger=Trigger.RERUN,
        rerun_of=c,
    )
    again = run_with(
        T0 + timedelta(hours=2, minutes=9), {case_y: Status.PASSED}, trigger=Trigger.RERUN
    )
    again.rerun_of = attempt
    again.save()
    # A rerun whose source Runboard never saw is still a rerun, not a run of the schedule.
    orphan = run_with(T0 + timedelta(hours=3), {case_x: Status.PASSED}, trigger=Trigger.RERUN)
    return {
        "schedule": schedule,
        "originals": [a, b, c],
        "reruns": [per_case_x, per_case_y, attempt, again, orphan],
    }


def test_schedule_trend_has_one_point_per_original_run_with_its_verdict_after_reruns(
    rerun_estate,
):
    trend = selectors.schedule_trend(schedule=rerun_estate["schedule"])
    a, b, c = rerun_estate["originals"]
    assert [point.run_id for point in trend] == [a.pk, b.pk, c.pk]
    assert [(p.passed, p.passed_after_reruns, p.total, p.reruns) for p in trend] == [
        (1, 2, 3, 2),  # x passed on its rerun, y failed again
        (2, 2, 2, 0),
        (1, 3, 3, 2),  # x on attempt 2, y on the rerun of attempt 2
    ]
    assert trend[2].rate_after_reruns == 1.0 and round(trend[0].rate_after_reruns, 2) == 0.67


def test_schedule_trend_reads_rerun_chains_in_a_fixed_number_of_queries(
    django_assert_max_num_queries,
):
    schedule = make_schedule()
    case = make_test_case(schedule.orchestrator)
    for i in range(12):
        source = make_run(
            schedule,
            started_at=T0 + timedelta(hours=i),
            status=Status.FAILED,
            total_count=1,
            failed_count=1,
        )
        make_result(source, test_case=case, status=Status.FAILED)
        for _ in range(3):  # a chain: rerun of a rerun of a rerun
            source = make_run(schedule, rerun_of=source, trigger=Trigger.RERUN)
            make_result(source, test_case=case, status=Status.PASSED)
    # The originals, one query per level of reruns, the results of originals and reruns.
    with django_assert_max_num_queries(1 + selectors.RERUN_DEPTH + 1):
        trend = selectors.schedule_trend(schedule=schedule)
    assert len(trend) == 12
    assert all((p.rate, p.rate_after_reruns, p.reruns) == (0.0, 1.0, 3) for p in trend)


def test_the_failures_per_day_are_counted_by_the_database_own_date_not_a_python_function():
    """SQLite's TruncDate calls a Python function per row; its date() reads the stored UTC
    text, microseconds and all."""
    now = datetime(2026, 3, 10, 15, tzinfo=UTC)
    run = make_run(started_at=datetime(2026, 3, 8, tzinfo=UTC))
    for at in (
        datetime(2026, 3, 8, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 9, tzinfo=UTC),
    ):
        make_result(run, status=Status.FAILED, message="Timeout after 30s", started_at=at)
    fingerprints_refresh()
    with CaptureQueriesContext(connection) as queries:
        [group] = selectors.failure_groups(days=3, now=now)
    assert group.per_day == [1, 1, 0]
    assert not any("django_datetime_cast_date" in q["sql"] for q in queries.captured_queries)


def test_the_failures_per_day_count_each_day_of_the_window_from_midnight_utc():
    now = datetime(2026, 3, 10, 15, tzinfo=UTC)
    run = make_run(started_at=datetime(2026, 3, 3, tzinfo=UTC))
    for at in (
        datetime(2026, 3, 3, 23, 59, 59, tzinfo=UTC),  # the day before a 7-day window
        datetime(2026, 3, 4, tzinfo=UTC),  # its first day, from midnight
        datetime(2026, 3, 4, 12, tzinfo=UTC),
        datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 10, tzinfo=UTC),  # today
    ):
        make_result(run, status=Status.FAILED, message="Timeout after 30s", started_at=at)
    fingerprints_refresh()
    [group] = selectors.failure_groups(days=7, now=now)
    assert group.per_day == [2, 0, 0, 0, 0, 1, 1]
    assert group.results == 4
