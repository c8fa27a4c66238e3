"""Each page runs a fixed number of SQL queries with 10,000 runs in the database."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs import selectors
from runs.models import (
    Agent,
    ExecutionResult,
    Orchestrator,
    OrchestratorKind,
    RerunRequest,
    RerunScope,
    RerunState,
    Run,
    Schedule,
    Trigger,
)
from runs.models import (
    TestCase as Case,
)
from runs.selectors import EPOCH, RERUN_DEPTH
from runs.services.revision import revision_bump
from runs.status import Status
from tests.factories import make_agent, make_orchestrator, make_run, make_schedule

pytestmark = pytest.mark.django_db

RUNS = 10_000
RESULTS_PER_RUN = 3


def build_history() -> dict:
    """10,000 runs over 30 days on three orchestrators, 3 results each, reruns and attempts."""
    rng = random.Random(7)
    now = timezone.now()
    orchestrators = Orchestrator.objects.bulk_create(
        Orchestrator(
            kind=kind, name=f"big-{kind}", base_url="http://127.0.0.1:9", last_synced_at=now
        )
        for kind in OrchestratorKind.values
    )
    orchestrators[0].last_sync_error, orchestrators[0].last_sync_error_at = "timed out", now
    orchestrators[0].save()
    schedules, agents, cases = [], [], []
    for orchestrator in orchestrators:
        schedules += Schedule.objects.bulk_create(
            Schedule(
                orchestrator=orchestrator,
                external_id=f"s{i}",
                title=f"{orchestrator.kind} suite {i}",
            )
            for i in range(4)
        )
        agents += Agent.objects.bulk_create(
            Agent(
                orchestrator=orchestrator,
                external_id=f"a{i}",
                title=f"{orchestrator.kind} agent {i}",
            )
            for i in range(4)
        )
        cases += Case.objects.bulk_create(
            Case(
                orchestrator=orchestrator,
                external_id=f"c{i}",
                title=f"{orchestrator.kind} case {i}",
            )
            for i in range(6)
        )
    by_orchestrator = {
        o.pk: (
            [s for s in schedules if s.orchestrator_id == o.pk],
            [a for a in agents if a.orchestrator_id == o.pk],
            [c for c in cases if c.orchestrator_id == o.pk],
        )
        for o in orchestrators
    }
    runs = []
    for i in range(RUNS):
        schedule = schedules[i % len(schedules)]
        running = i >= RUNS - 6
        status = (
            Status.RUNNING
            if running
            else rng.choices([Status.PASSED, Status.FAILED, Status.ERROR], [80, 15, 5])[0]
        )
        started = now - timedelta(days=30) + timedelta(minutes=4 * i)
        duration = None if running else timedelta(seconds=rng.randint(30, 900))
        runs.append(
            Run(
                orchestrator_id=schedule.orchestrator_id,
                schedule=schedule,
                external_id=f"run-{i}",
                status=status,
                started_at=started,
                finished_at=None if running else started + duration,
                duration=duration,
                build=f"1.{i % 50}.0",
                trigger=Trigger.SCHEDULED,
                total_count=RESULTS_PER_RUN,
                passed_count=RESULTS_PER_RUN if status == Status.PASSED else 2,
                failed_count=0 if status == Status.PASSED else 1,
            )
        )
    runs = Run.objects.bulk_create(runs, batch_size=2000)
    # Every 20th failed run was rerun; every 50th run has a second (Conductor-style) attempt.
    reruns = []
    for index, source in enumerate(runs):
        if source.status == Status.FAILED and index % 20 == 0:
            reruns.append(
                Run(
                    orchestrator_id=source.orchestrator_id,
                    schedule_id=source.schedule_id,
                    external_id=f"{source.external_id}-rerun",
                    status=Status.PASSED,
                    started_at=source.started_at + timedelta(minutes=1),
                    trigger=Trigger.RERUN,
                    rerun_of=source,
                    total_count=RESULTS_PER_RUN,
                    passed_count=RESULTS_PER_RUN,
                )
            )
        if index % 50 == 0:
            reruns.append(
                Run(
                    orchestrator_id=source.orchestrator_id,
                    schedule_id=source.schedule_id,
                    external_id=source.external_id,
                    attempt=2,
                    status=Status.PASSED,
                    started_at=source.started_at + timedelta(minutes=2),
                    trigger=Trigger.RERUN,
                    rerun_of=source,
                    total_count=RESULTS_PER_RUN,
                    passed_count=RESULTS_PER_RUN,
                )
            )
    runs += Run.objects.bulk_create(reruns, batch_size=2000)
    results = []
    for run in runs:
        _, run_agents, run_cases = by_orchestrator[run.orchestrator_id]
        for seq in range(RESULTS_PER_RUN):
            failed = seq == 0 and run.failed_count
            results.append(
                ExecutionResult(
                    run=run,
                    test_case=run_cases[(run.pk + seq) % len(run_cases)],
                    agent=run_agents[(run.pk + seq) % len(run_agents)],
                    external_id=f"r{seq}",
                    case_key=f"c{seq}",
                    status=Status.FAILED if failed else Status.PASSED,
                    started_at=run.started_at,
                    seq=seq,
                    message="assertion failed" if failed else "",
                    log_excerpt="log line\n" * 5 if failed else "",
                )
            )
    ExecutionResult.objects.bulk_create(results, batch_size=3000)
    rerun = next(run for run in runs if run.external_id.endswith("-rerun"))
    requests = RerunRequest.objects.bulk_create(
        RerunRequest(
            orchestrator_id=rerun.orchestrator_id,
            source_run_id=rerun.rerun_of_id,
            scope=RerunScope.FAILED,
            state=RerunState.ACCEPTED,
            idempotency_key=f"big-{n}",
        )
        for n in range(15)
    )
    Run.objects.filter(pk=rerun.pk).update(rerun_request=requests[-1])
    # Fresh planner statistics, as autovacuum would keep them in production.
    with connection.cursor() as cursor:
        for table in ["runs_run", "runs_executionresult", "runs_schedule", "runs_agent"]:
            cursor.execute(f"ANALYZE {table}")
    failed_run = Run.objects.get(pk=rerun.rerun_of_id)
    return {
        "failed_run": failed_run,
        "running_run": next(run for run in runs if run.status == Status.RUNNING),
        "schedule": schedules[0],
        # A case that failed in a run that was rerun: its page counts flakiness the long way.
        "case": failed_run.results.get(status=Status.FAILED).test_case,
        "agent": agents[0],
        "orchestrator": orchestrators[0],
    }


@pytest.fixture(scope="module")
def big_history(django_db_setup, django_db_blocker):
    """The history lives in an outer transaction that is rolled back after this module."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield build_history()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


# Session + user are 2 of each budget; the run, schedule and orchestrators pages include the
# rerun panel, run-now form and track-run form, whose contexts (runs.views.reruns) count too.
# A savepoint and its release, a check, an insert of the task, and on PostgreSQL a lock.
REFRESH_HOOK = 5
# The history pages read the history's revision first (runs.services.revision): one more.
BUDGETS = {
    # Whether any mute is in force is asked first: without one, the failing schedules are
    # read by their kept latest run alone (runs.selectors.schedules_failing).
    "overview": ("/", 9),
    "history": ("/runs/", 7),
    # One more with a search: the schedules whose title matches, read first (runs.selectors).
    "history, every filter, by duration": (
        "/runs/?orchestrator={orchestrator.name}&schedule={schedule.pk}&status=failures"
        "&agent={agent.pk}&trigger=scheduled&build=1.&date_from=2000-01-01&date_to=2100-01-01"
        "&q=suite&sort=-duration",
        11,
    ),
    "history, a later page": ("/runs/?after={cursor}", 7),
    "history, an earlier page": ("/runs/?before={cursor}&sort=-started", 7),
    "run page": ("/runs/{failed_run.pk}/", 11),
    # The run page: its counts (one aggregate), the first failures apart, a page of the rest.
    "run page, failures only": ("/runs/{failed_run.pk}/?status=failures", 10),
    # Polls of a stale running run also ask the poller to refresh it: run_refresh_if_stale.
    "run poll": ("/runs/{running_run.pk}/poll/", 5 + REFRESH_HOOK),
    "history row poll": ("/runs/{running_run.pk}/row/", 3 + REFRESH_HOOK),
    # The case, a page (or, from a run, that run's result and the windows above and below it),
    # one aggregate of every count, and flakiness: ancestors of reruns, failed results among them.
    "test case": ("/cases/{case.pk}/", 7),
    "test case from a run": ("/cases/{case.pk}/?from={failed_run.pk}", 9),
    # The trend reads one level of reruns per query, RERUN_DEPTH at most, then their results.
    "schedule": ("/schedules/{schedule.pk}/", 8 + RERUN_DEPTH + 1),
    "agents": ("/agents/", 3),
    "orchestrators": ("/orchestrators/", 4),
    "go": ("/go/{orchestrator.name}/run-0", 3),
}


@pytest.mark.parametrize("page", list(BUDGETS))
def test_it_answers_within_its_query_budget(
    viewer_client, big_history, django_assert_max_num_queries, page
):
    template, budget = BUDGETS[page]
    cursor = f"{(big_history['failed_run'].started_at - EPOCH) // timedelta(microseconds=1)}_1"
    url = template.format(cursor=cursor, **big_history)
    with django_assert_max_num_queries(budget):
        response = viewer_client.get(url)
    assert response.status_code in (200, 302), url


@pytest.mark.parametrize("fragment", [False, True], ids=["page", "htmx fragment"])
def test_a_history_page_drawn_at_this_revision_is_served_again_with_three_queries(
    viewer_client, big_history, django_assert_num_queries, fragment
):
    headers = {"HX-Request": "true"} if fragment else {}
    url = "/runs/?status=failures&sort=-duration"
    first = viewer_client.get(url, headers=headers)
    # Session, user, the revision: nothing of the history is read again.
    with django_assert_num_queries(3):
        again = viewer_client.get(url, headers=headers)
    # The same page (the frame around it carries a fresh CSRF token each time).
    main = re.compile(rb"<main.*</main>" if not fragment else rb".*", re.DOTALL)
    assert main.search(again.content)[0] == main.search(first.content)[0]


def test_after_runs_change_the_history_redraws_its_runs_but_not_its_filters(
    viewer_client, big_history, django_assert_num_queries, django_capture_on_commit_callbacks
):
    viewer_client.get("/runs/?status=failures")
    with django_capture_on_commit_callbacks(execute=True):
        revision_bump()  # as every store of runs does
    # Session, user, the revisions, the runs: not the orchestrators, schedules and agents.
    with django_assert_num_queries(4):
        response = viewer_client.get("/runs/?status=failures")
    assert 'id="run-filters"' in response.content.decode()
    assert len(response.context["page"].items) == 50


def test_the_history_pages_hold_50_runs_and_polling_rows_only_for_runs_in_progress(
    viewer_client, big_history
):
    response = viewer_client.get("/runs/")
    assert len(response.context["page"].items) == 50
    assert response.content.decode().count('hx-trigger="every 3s"') == 6


def test_the_test_case_page_holds_a_full_page_and_counts_every_result(viewer_client, big_history):
    response = viewer_client.get(f"/cases/{big_history['case'].pk}/")
    assert len(response.context["page"].items) == 30  # the strip shows this same page
    stats = response.context["stats"]
    assert stats.flakiness.results > 500
    assert stats.results == stats.flakiness.results + stats.rerun_results


# A run's page costs the same at any size ----------------------------------------------------


def _run_of(schedule: Schedule, size: int) -> Run:
    """A finished run of `size` results on four agents, one in seven failed, some data-driven."""
    run = make_run(schedule, status=Status.FAILED, total_count=size)
    agents = [make_agent(schedule.orchestrator) for _ in range(4)]
    ExecutionResult.objects.bulk_create(
        ExecutionResult(
            run=run,
            agent=agents[n % 4],
            external_id=f"r{n}",
            case_key=f"case-{n}",
            seq=n,
            status=Status.FAILED if n % 7 == 3 else Status.PASSED,
            message="assertion failed" if n % 7 == 3 else "",
            is_data_driven=n % 5 == 0,
            iterations=[{"id": "1", "name": "row", "status": "passed"}] if n % 5 == 0 else [],
        )
        for n in range(size)
    )
    return run


@pytest.mark.parametrize(
    ("kind", "picker"),
    [("leapwork", "checkbox"), ("conductor", "radio"), ("testsigma", "checkbox")],
)
def test_it_keeps_the_run_page_s_queries_and_size_whatever_the_run_s_size(
    rerunner_client, kind, picker
):
    schedule = make_schedule(make_orchestrator(kind))
    pages = {}
    for size in (30, 600, 1200):
        run = _run_of(schedule, size)
        with CaptureQueriesContext(connection) as queries:
            html = rerunner_client.get(f"/runs/{run.pk}/").content.decode()
        pages[size] = (len(queries), len(html), html)
    assert pages[30][0] == pages[600][0] == pages[1200][0]
    # Past a page, the same rows whatever the size: the HTML grows by a few digits at most.
    assert abs(pages[1200][1] - pages[600][1]) < 0.02 * pages[600][1]
    html = pages[1200][2]
    shown = selectors.FAILURES_SHOWN + selectors.RESULT_PAGE_SIZE
    assert html.count('<tr id="result-') == shown
    pickers = re.findall(r'<input type="(\w+)" name="cases"', html)
    assert 0 < len(pickers) <= shown and set(pickers) == {picker}
    assert html.count('name="iterations"') <= shown
    assert 'rel="next"' in html and "All 171 failures" in html
