"""Sync against the emulators over real HTTP on loopback: history, progress, attempts,
idempotence, concurrency and every fault of the fault switch."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from runs import models as m
from runs import status as vendor_status
from runs.models import Agent, ExecutionResult, Orchestrator, Run, Schedule
from runs.orchestrators.base import ResultSnapshot, RunSnapshot
from runs.orchestrators.emulation.faults import Fault
from runs.orchestrators.registry import KINDS, client_for
from runs.services.session import orchestrator_client
from runs.services.sync import (
    orchestrator_sync,
    run_refresh,
    run_track,
    runs_read,
    runs_store,
    schedules_touch,
)
from runs.status import Status
from tests.emulated import (
    emulated,
    emulator_control,
    emulator_state,
    orchestrator_for,
    step_clock,
    synced,
)
from tests.factories import make_run

pytestmark = pytest.mark.django_db


def table_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every mirrored row with every value, to compare before and after a pass."""
    return {
        model.__name__: sorted(model.objects.values_list(), key=repr)
        for model in (Schedule, Agent, m.TestCase, Run, ExecutionResult)
    }


def start_run(server: Any, schedule_id: str) -> str:
    """Start a run on the emulator the way a user of the vendor's own UI would."""
    client = client_for(server.app.kind, server.base_url, server.app.credential)
    try:
        return client.run_now(schedule_id)
    finally:
        client.close()


def writes(queries: CaptureQueriesContext) -> list[str]:
    verbs = ("INSERT", "UPDATE", "DELETE")
    return [
        q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(verbs)
    ]


# History ------------------------------------------------------------------------------------


def test_it_imports_a_leapwork_history_completely():
    with emulated("leapwork", history=2) as (_app, server):
        orchestrator = orchestrator_for(server)
        report = orchestrator_sync(orchestrator=orchestrator)
        state = emulator_state(server)

    assert report.ok, report.error
    runs = {run.external_id: run for run in Run.objects.filter(orchestrator=orchestrator)}
    assert set(runs) == {run["id"] for run in state["runs"]}
    agents = dict(Agent.objects.values_list("pk", "external_id"))
    for expected in state["runs"]:
        run = runs[expected["id"]]
        assert run.schedule.external_id == expected["schedule_id"]
        assert run.status == (Status.FAILED if expected["counts"]["failed"] else Status.PASSED)
        assert run.vendor_status == "Finished"
        assert (run.total_count, run.passed_count, run.failed_count, run.other_count) == (
            expected["counts"]["total"],
            expected["counts"]["passed"],
            expected["counts"]["failed"],
            expected["counts"]["other"],
        )
        assert run.finished_at is not None and run.duration is not None
        results = {r.external_id: r for r in run.results.all()}
        assert set(results) == {item["id"] for item in expected["items"]}
        for item in expected["items"]:
            result = results[item["id"]]
            assert result.status == vendor_status.leapwork_item_status(item["status"])
            assert result.case_key == item["flow_id"]
            assert agents[result.agent_id] == item["agent_id"]
            assert result.duration == timedelta(seconds=2)  # the emulator's pace
    listed = {s["id"] for s in state["schedules"] if not s["temporary"]}
    assert listed <= set(Schedule.objects.values_list("external_id", flat=True))
    assert Orchestrator.objects.get(pk=orchestrator.pk).last_synced_at is not None


def _conductor_counts(tasks: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    last = {t["referenceTaskName"]: t for t in sorted(tasks, key=lambda t: t["seq"])}
    statuses = [vendor_status.conductor_task_status(t["status"]) for t in last.values()]
    passed = statuses.count(Status.PASSED)
    failed = sum(s.is_failure for s in statuses)
    return len(statuses), passed, failed, len(statuses) - passed - failed


def test_it_imports_a_conductor_history_completely():
    with emulated("conductor", history=3) as (_app, server):
        orchestrator = orchestrator_for(server)
        report = orchestrator_sync(orchestrator=orchestrator)
        state = emulator_state(server)

    assert report.ok, report.error
    runs = {run.external_id: run for run in Run.objects.filter(orchestrator=orchestrator)}
    assert set(runs) == {wf["workflowId"] for wf in state["workflows"]}
    for wf in state["workflows"]:
        run = runs[wf["workflowId"]]
        assert run.attempt == 1 and not run.is_frozen
        assert run.schedule.external_id == wf["workflowName"]
        assert run.version == str(wf["workflowVersion"])
        assert run.status == vendor_status.conductor_workflow_status(wf["status"])
        assert run.started_at == datetime.fromtimestamp(wf["startTime"] / 1000, UTC)
        assert run.duration == run.finished_at - run.started_at
        counts = (run.total_count, run.passed_count, run.failed_count, run.other_count)
        assert counts == _conductor_counts(wf["tasks"])
        results = {r.external_id: r for r in run.results.select_related("agent")}
        assert set(results) == set(wf["taskIds"])
        for task in wf["tasks"]:
            result = results[task["taskId"]]
            assert result.status == vendor_status.conductor_task_status(task["status"])
            assert result.seq == task["seq"]
            assert (result.agent.external_id if result.agent else None) == task["workerId"]
    assert Schedule.objects.filter(orchestrator=orchestrator).count() == len(
        {d["name"] for d in state["definitions"]}
    )


def test_it_follows_testsigma_runs_from_the_ids_it_was_given():
    with emulated("testsigma", history=3) as (_app, server):
        state = emulator_state(server)
        plans = {plan["id"]: plan for plan in state["test_plans"]}
        # The oldest run of plan 103 leads (lastRunId) to its newest, a rerun of a rerun.
        plan = next(
            p
            for p in plans.values()
            if any(r["rerun_parent_id"] for r in state["runs"] if r["plan_id"] == p["id"])
        )
        first = str(plan["run_ids"][0])
        orchestrator = orchestrator_for(server, test_plan_ids=[str(p) for p in plans])
        tracked = run_track(orchestrator=orchestrator, external_id=first)
        report = orchestrator_sync(orchestrator=orchestrator)

    assert report.ok, report.error
    assert tracked.external_id == first
    by_id = {str(r["id"]): r for r in state["runs"]}
    runs = {run.external_id: run for run in Run.objects.filter(orchestrator=orchestrator)}
    # Reached: the given run, its plan's newest run, and that run's reRunParentId chain.
    expected = {first, str(plan["last_run_id"])}
    lead = by_id[str(plan["last_run_id"])]
    while lead["rerun_parent_id"]:
        expected.add(str(lead["rerun_parent_id"]))
        lead = by_id[str(lead["rerun_parent_id"])]
    assert expected <= set(runs)
    for external_id in expected:
        run, source = runs[external_id], by_id[external_id]
        assert run.schedule.external_id == str(source["plan_id"])
        assert (run.total_count, run.passed_count, run.failed_count, run.other_count) == tuple(
            source["counts"].values()
        )
        results = {r.external_id: r for r in run.results.select_related("agent", "test_case")}
        assert set(results) == {str(c["id"]) for c in source["case_results"]}
        for case in source["case_results"]:
            result = results[str(case["id"])]
            assert result.status == vendor_status.testsigma_result_status(case["result"])
            assert result.agent.external_id == str(case["machine_id"])
            assert result.test_case.external_id == str(case["test_case_id"])
        if source["rerun_parent_id"]:
            assert run.rerun_of == runs[str(source["rerun_parent_id"])]
            assert run.trigger == "rerun"


def test_it_discovers_a_new_testsigma_run_through_the_plans_newest_run():
    with emulated("testsigma", history=2) as (_app, server):
        state = emulator_state(server)
        plan = state["test_plans"][0]
        orchestrator = orchestrator_for(server, test_plan_ids=[str(plan["id"])])
        run_track(orchestrator=orchestrator, external_id=str(plan["run_ids"][0]))
        orchestrator_sync(orchestrator=orchestrator)
        before = set(Run.objects.values_list("external_id", flat=True))

        new_id = start_run(server, str(plan["id"]))
        orchestrator_sync(orchestrator=orchestrator)

    assert new_id not in before
    assert new_id in set(Run.objects.values_list("external_id", flat=True))


# Progress -----------------------------------------------------------------------------------


def test_it_follows_a_run_from_start_to_end_with_all_results():
    with emulated("leapwork", history=1, pace=1.0) as (_app, server):
        orchestrator = orchestrator_for(server)
        orchestrator_sync(orchestrator=orchestrator)
        schedule = Schedule.objects.filter(orchestrator=orchestrator, is_temporary=False).first()
        run_id = start_run(server, schedule.external_id)

        orchestrator_sync(orchestrator=orchestrator)
        run = Run.objects.get(external_id=run_id)
        assert run.status == Status.QUEUED

        step_clock(server, 2.5)
        orchestrator_sync(orchestrator=orchestrator)
        run.refresh_from_db()
        assert run.status == Status.RUNNING
        assert run.results.filter(status__in=[Status.PASSED, Status.FAILED]).exists()

        step_clock(server, 3600)
        run = run_refresh(run=run)
        state = next(r for r in emulator_state(server)["runs"] if r["id"] == run_id)

    assert run.is_terminal
    assert run.total_count == state["counts"]["total"]
    assert set(run.results.values_list("external_id", flat=True)) == {
        item["id"] for item in state["items"]
    }
    assert not run.results.filter(status__in=[Status.QUEUED, Status.RUNNING]).exists()


# Seconds of emulated time between two refreshes: a Leapwork run's flows last minutes, so a
# 2-second step took some 200 refreshes (each reading every run item) to see it through.
PROGRESS_STEP = {"leapwork": 10}


@pytest.mark.parametrize("kind", KINDS)
def test_progress_counts_only_finished_results_and_tells_queued_from_running(kind):
    with synced(kind, pace=1.0) as (server, orchestrator):
        schedule = Schedule.objects.filter(orchestrator=orchestrator, is_temporary=False).first()
        run = run_track(
            orchestrator=orchestrator, external_id=start_run(server, schedule.external_id)
        )
        seen: list[tuple[int, int, int, int]] = []
        for _ in range(200):
            step_clock(server, PROGRESS_STEP.get(kind, 2))
            run = run_refresh(run=run)
            unfinished = run.results.filter(status__in=[Status.QUEUED, Status.RUNNING])
            if run.total_count and unfinished.exists():
                seen.append((run.done_count, run.total_count, run.queued_count, run.running_count))
                assert run.done_count < run.total_count
                assert run.queued_count + run.running_count >= 1
            assert run.total_count == (
                run.passed_count
                + run.failed_count
                + run.other_count
                + run.queued_count
                + run.running_count
            )
            if run.is_terminal:
                break
    assert run.is_terminal and run.done_count == run.total_count
    assert run.queued_count == run.running_count == 0
    assert seen, "the run was seen in progress"
    # The bar advances as results finish: it never goes back and starts short of full.
    assert [done for done, *_ in seen] == sorted(done for done, *_ in seen)
    assert seen[0][0] < seen[0][1]


def test_it_keeps_a_conductor_rerun_in_place_as_two_attempts():
    with emulated("conductor", history=2) as (_app, server):
        orchestrator = orchestrator_for(server)
        orchestrator_sync(orchestrator=orchestrator)
        first = Run.objects.filter(orchestrator=orchestrator, status=Status.FAILED).first()
        first_results = set(first.results.values_list("external_id", "status"))
        answer = httpx.post(
            f"{server.base_url}/api/workflow/{first.external_id}/rerun",
            json={"reRunFromWorkflowId": first.external_id},
        )
        assert answer.status_code == 200, answer.text
        step_clock(server, 3600)
        report = orchestrator_sync(orchestrator=orchestrator)
        searches = [
            dict(entry["query"])["query"]
            for entry in server.app.requests(path="/api/workflow/search")
        ]
        state = emulator_state(server)

    assert report.ok and report.attempts_created == 1
    assert any("updateTime >" in query for query in searches)
    attempts = list(
        Run.objects.filter(orchestrator=orchestrator, external_id=first.external_id).order_by(
            "attempt"
        )
    )
    assert [a.attempt for a in attempts] == [1, 2]
    one, two = attempts
    assert one.pk == first.pk and one.is_frozen and one.status == Status.FAILED
    assert set(one.results.values_list("external_id", "status")) == first_results
    assert two.rerun_of == one and two.trigger == "rerun" and not two.is_frozen
    wf = next(w for w in state["workflows"] if w["workflowId"] == first.external_id)
    assert set(two.results.values_list("external_id", flat=True)) == set(wf["taskIds"])
    assert two.status == vendor_status.conductor_workflow_status(wf["status"])


def _to_the_ms(moment: datetime) -> datetime:
    """A moment as Conductor keeps it: epoch milliseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _work_again(server: Any, run: Run, how: str) -> None:
    """Rerun, retry or restart an execution in place, as a user of Conductor's own UI would."""
    path = f"{server.base_url}/api/workflow/{run.external_id}"
    if how == "retry":
        answer = httpx.post(f"{path}/retry")
    elif how == "restart":
        answer = httpx.post(f"{path}/restart")
    elif how == "rerun":
        answer = httpx.post(f"{path}/rerun", json={"reRunFromWorkflowId": run.external_id})
    else:
        task = run.results.filter(status__in=[Status.FAILED, Status.ERROR]).order_by("-seq")[0]
        body = {"reRunFromWorkflowId": run.external_id, "reRunFromTaskId": task.external_id}
        answer = httpx.post(f"{path}/rerun", json=body)
    assert answer.is_success, answer.text


@pytest.mark.parametrize(
    ("how", "orkes"),
    [("retry", False), ("rerun", False), ("restart", False), ("rerun from task", True)],
)
def test_a_conductor_attempt_has_its_own_start_and_duration_through_later_passes(how, orkes):
    # An old execution (hours or days old) worked again in place keeps its workflow startTime.
    with emulated("conductor", history=2, orkes=orkes) as (app, server):
        orchestrator = orchestrator_for(server)
        orchestrator_sync(orchestrator=orchestrator)
        first = Run.objects.filter(orchestrator=orchestrator, status=Status.FAILED).first()
        first_started = first.started_at
        step_clock(server, 90)
        sent_at = _to_the_ms(app.now())
        _work_again(server, first, how)
        step_clock(server, 0.5)  # its first task is queued or started, none finished
        report = orchestrator_sync(orchestrator=orchestrator)
        running = Run.objects.get(
            orchestrator=orchestrator, external_id=first.external_id, attempt=2
        )
        step_clock(server, 3600)
        later = orchestrator_sync(orchestrator=orchestrator)
        wf = httpx.get(f"{server.base_url}/api/workflow/{first.external_id}").json()

    assert report.attempts_created == 1 and later.runs_updated >= 1
    assert running.status == Status.RUNNING
    assert running.started_at == sent_at and running.duration is None
    two = Run.objects.get(pk=running.pk)
    assert two.is_terminal and two.started_at == sent_at
    assert wf["startTime"] == int(first_started.timestamp() * 1000)  # Conductor's stays the first
    assert two.finished_at == datetime.fromtimestamp(wf["endTime"] / 1000, UTC)
    assert two.duration == two.finished_at - sent_at
    assert two.duration < timedelta(minutes=5) < two.finished_at - first_started
    first.refresh_from_db()
    assert first.is_frozen and first.started_at == first_started


# Idempotence and cost -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_it_writes_nothing_on_a_second_pass_and_only_the_new_on_a_third(kind):
    with emulated(kind, history=1, pace=0.5) as (_app, server):
        state = emulator_state(server)
        fields = {}
        if kind == "testsigma":
            fields["test_plan_ids"] = [str(p["id"]) for p in state["test_plans"]]
        orchestrator = orchestrator_for(server, **fields)
        if kind == "testsigma":
            for plan in state["test_plans"]:
                run_track(orchestrator=orchestrator, external_id=str(plan["run_ids"][0]))
        orchestrator_sync(orchestrator=orchestrator)
        before = table_snapshot()

        with CaptureQueriesContext(connection) as queries:
            report = orchestrator_sync(orchestrator=orchestrator)
        assert report.ok, report.error
        assert table_snapshot() == before
        assert all("runs_orchestrator" in sql for sql in writes(queries)), writes(queries)

        schedule = Run.objects.filter(orchestrator=orchestrator).first().schedule
        new_id = start_run(server, schedule.external_id)
        step_clock(server, 3600)
        report = orchestrator_sync(orchestrator=orchestrator)
        after = table_snapshot()

    assert report.ok, report.error
    assert report.runs_created == 1
    new_run = Run.objects.get(orchestrator=orchestrator, external_id=new_id)
    assert new_run.is_terminal
    old_runs = [row for row in after["Run"] if row[0] != new_run.pk]
    new_run_columns = [f.attname for f in Run._meta.concrete_fields]
    latest_sibling = new_run_columns.index("latest_sibling_id")
    fingerprint = new_run_columns.index("fingerprint")
    synced = new_run_columns.index("synced_at")

    def stable(row: tuple[Any, ...]) -> tuple[Any, ...]:
        # A Testsigma plan's newest run learns its newer sibling: only that may change.
        skip = {latest_sibling, fingerprint, synced} if kind == "testsigma" else set()
        return tuple(value for index, value in enumerate(row) if index not in skip)

    assert [stable(r) for r in old_runs] == [stable(r) for r in before["Run"]]
    old_results = [r for r in after["ExecutionResult"] if r[1] != new_run.pk]
    assert old_results == before["ExecutionResult"]
    assert len(after["ExecutionResult"]) == len(before["ExecutionResult"]) + new_run.total_count


def _snapshots(runs: int, results: int) -> list[RunSnapshot]:
    now = datetime.now(UTC)
    return [
        RunSnapshot(
            external_id=f"run-{n}",
            schedule_id="nightly",
            schedule_title="Nightly",
            status=Status.FAILED,
            vendor_status="Finished",
            started_at=now - timedelta(hours=n),
            finished_at=now - timedelta(hours=n) + timedelta(minutes=5),
            results=tuple(
                ResultSnapshot(
                    external_id=f"run-{n}-item-{i}",
                    case_key=f"flow-{i}",
                    case_title=f"Flow {i}",
                    status=Status.PASSED if i % 7 else Status.FAILED,
                    vendor_status="Passed" if i % 7 else "Failed",
                    agent_id=f"agent-{i % 3}",
                    agent_title=f"Agent {i % 3}",
                    started_at=now - timedelta(hours=n),
                    duration=timedelta(seconds=i),
                    seq=i,
                    input={"i": i},
                )
                for i in range(results)
            ),
        )
        for n in range(runs)
    ]


def test_it_needs_no_more_queries_for_ten_times_the_results():
    small = Orchestrator.objects.create(kind="leapwork", name="small", base_url="http://x")
    large = Orchestrator.objects.create(kind="leapwork", name="large", base_url="http://y")
    with CaptureQueriesContext(connection) as few:
        runs_store(orchestrator=small, snapshots=_snapshots(40, 10))
    with CaptureQueriesContext(connection) as many:
        runs_store(orchestrator=large, snapshots=_snapshots(40, 100))

    assert ExecutionResult.objects.filter(run__orchestrator=large).count() == 4000
    assert len(many.captured_queries) <= len(few.captured_queries)
    stored = Run.objects.get(orchestrator=large, external_id="run-3")
    assert (stored.total_count, stored.failed_count) == (100, 15)
    result = stored.results.get(external_id="run-3-item-8")
    assert result.duration == timedelta(seconds=8) and result.input == {"i": 8}
    assert result.agent.external_id == "agent-2" and result.test_case.title == "Flow 8"


def test_it_drops_results_gone_upstream_and_keeps_the_rest():
    orchestrator = Orchestrator.objects.create(kind="leapwork", name="o", base_url="http://x")
    [snapshot] = _snapshots(1, 5)
    runs_store(orchestrator=orchestrator, snapshots=[snapshot])
    trimmed = RunSnapshot(**{**snapshot.__dict__, "results": snapshot.results[:3]})
    runs_store(orchestrator=orchestrator, snapshots=[trimmed])

    run = Run.objects.get(orchestrator=orchestrator)
    assert sorted(run.results.values_list("seq", flat=True)) == [0, 1, 2]
    assert run.total_count == 3


# Faults -------------------------------------------------------------------------------------

FAULTS = {
    "5xx": {"error_rate": 1.0, "status": 503},
    "446": {"error_rate": 1.0, "status": 446},
    "455": {"error_rate": 1.0, "status": 455},
    "timeout": {"timeout": 1.0},
    "malformed": {"malformed": True},
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# 446 and 455 are Leapwork's own codes; a Conductor credential to refuse means Orkes.
FAULT_CASES = [
    (kind, fault)
    for kind in ("leapwork", "conductor", "testsigma")
    for fault in [*FAULTS, "401", "refused"]
    if kind == "leapwork" or fault not in ("446", "455")
]


@pytest.mark.parametrize(("kind", "fault"), FAULT_CASES)
def test_it_keeps_data_and_shows_the_error_on_every_fault_then_recovers(kind, fault, settings):
    settings.RUNBOARD_HTTP_TIMEOUT = 0.3
    options = {"credential": "key:secret"} if (kind, fault) == ("conductor", "401") else {}
    with emulated(kind, history=1, pace=0.5, **options) as (_app, server):
        state = emulator_state(server)
        fields = {}
        if kind == "testsigma":
            fields["test_plan_ids"] = [str(p["id"]) for p in state["test_plans"]]
        orchestrator = orchestrator_for(server, **fields)
        if kind == "testsigma":
            run_track(orchestrator=orchestrator, external_id=str(state["runs"][0]["id"]))
        assert orchestrator_sync(orchestrator=orchestrator).ok
        # Something new for the failing pass to miss, on a plan Runboard follows (Testsigma).
        schedule = Run.objects.filter(orchestrator=orchestrator).first().schedule
        start_run(server, schedule.external_id)
        before = table_snapshot()

        good_url, good_credential = orchestrator.base_url, orchestrator.credential
        if fault == "401":
            Orchestrator.objects.filter(pk=orchestrator.pk).update(credential="wrong")
        elif fault == "refused":
            Orchestrator.objects.filter(pk=orchestrator.pk).update(
                base_url=f"http://127.0.0.1:{_closed_port()}"
            )
        else:
            emulator_control(server, "faults", FAULTS[fault])
        orchestrator.refresh_from_db()
        report = orchestrator_sync(orchestrator=orchestrator, periodic=True)  # it backs off

        assert not report.ok
        assert table_snapshot() == before
        failed = Orchestrator.objects.get(pk=orchestrator.pk)
        assert failed.last_sync_error == report.error
        assert failed.last_sync_error_at is not None
        assert failed.next_sync_after > failed.last_sync_error_at
        assert failed.consecutive_failures == 1

        emulator_control(server, "faults", None)
        Orchestrator.objects.filter(pk=orchestrator.pk).update(
            base_url=good_url, credential=good_credential
        )
        orchestrator.refresh_from_db()
        recovered = orchestrator_sync(orchestrator=orchestrator)

    assert recovered.ok, recovered.error
    assert recovered.runs_created >= 1
    healthy = Orchestrator.objects.get(pk=orchestrator.pk)
    assert healthy.last_sync_error == "" and healthy.next_sync_after is None
    assert healthy.consecutive_failures == 0


def test_it_keeps_what_a_pass_stored_before_a_fault_midway():
    with emulated("leapwork", history=2) as (_app, server):
        orchestrator = orchestrator_for(server)
        emulator_control(server, "faults", {"path": "/keyframes", "error_rate": 1.0, "status": 500})
        report = orchestrator_sync(orchestrator=orchestrator)
        assert not report.ok
        stored = Run.objects.filter(orchestrator=orchestrator).count()
        emulator_control(server, "faults", None)
        orchestrator.refresh_from_db()
        assert orchestrator_sync(orchestrator=orchestrator).ok
        state = emulator_state(server)

    assert stored < len(state["runs"])
    assert Run.objects.filter(orchestrator=orchestrator).count() == len(state["runs"])


# Concurrency --------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_creates_no_duplicate_and_loses_no_update_with_two_passes_at_once():
    with emulated("conductor", history=3) as (_app, server):
        orchestrator = orchestrator_for(server)
        barrier = threading.Barrier(2)
        reports = []

        def one_pass() -> None:
            try:
                barrier.wait(timeout=10)
                own = Orchestrator.objects.get(pk=orchestrator.pk)
                reports.append(orchestrator_sync(orchestrator=own))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=one_pass) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        state = emulator_state(server)

    assert [r.ok for r in reports] == [True, True], [r.error for r in reports]
    runs = list(Run.objects.filter(orchestrator=orchestrator).values_list("external_id", "attempt"))
    assert len(runs) == len(set(runs)) == len(state["workflows"])
    assert {external_id for external_id, _ in runs} == {w["workflowId"] for w in state["workflows"]}
    assert ExecutionResult.objects.filter(run__orchestrator=orchestrator).count() == sum(
        len(w["taskIds"]) for w in state["workflows"]
    )
    for wf in state["workflows"]:
        run = Run.objects.get(orchestrator=orchestrator, external_id=wf["workflowId"])
        assert run.status == vendor_status.conductor_workflow_status(wf["status"])
        assert run.total_count == _conductor_counts(wf["tasks"])[0]
    assert Agent.objects.filter(orchestrator=orchestrator).count() == len(
        {t["workerId"] for w in state["workflows"] for t in w["tasks"] if t["workerId"]}
    )


def test_a_testsigma_plan_takes_its_name_from_its_runs():
    with emulated("testsigma", history=1) as (_app, server):
        state = emulator_state(server)
        plans = {str(p["id"]): p["name"] for p in state["test_plans"]}
        orchestrator = orchestrator_for(server, test_plan_ids=list(plans))
        assert orchestrator_sync(orchestrator=orchestrator).ok
        assert set(orchestrator.schedules.values_list("title", flat=True)) == {
            f"Test plan {plan}" for plan in plans
        }, "before any run is known, a plan is only its id"
        tracked = state["runs"][0]
        run_track(orchestrator=orchestrator, external_id=str(tracked["id"]))
        assert orchestrator_sync(orchestrator=orchestrator).ok
        plan_id = str(tracked["plan_id"])
        assert orchestrator.schedules.get(external_id=plan_id).title == plans[plan_id]
        assert orchestrator_sync(orchestrator=orchestrator).ok
        assert orchestrator.schedules.get(external_id=plan_id).title == plans[plan_id]


@pytest.mark.parametrize("kind", ["conductor", "leapwork"])
def test_a_pass_fetches_runs_side_by_side_at_most_the_setting_and_stores_the_same(settings, kind):
    with emulated(kind, history=1) as (app, server):
        passes = {}
        for width in (1, 3):
            settings.RUNBOARD_FETCH_CONCURRENCY = width
            orchestrator = orchestrator_for(server, name=f"{kind}-{width}")
            # Every call is held long enough for the next ones to overlap it, if they are sent.
            app.faults = [Fault(path=".*", latency=0.01)]
            emulator_control(server, "in-flight")  # its peak starts again
            report = orchestrator_sync(orchestrator=orchestrator)
            assert report.ok, report.error
            passes[width] = (app.in_flight_peak, report.runs_fetched, _read_rows(orchestrator))
    (one_peak, one_runs, one_rows), (side_peak, side_runs, side_rows) = passes[1], passes[3]
    assert one_peak == 1
    # Leapwork's items share a pool of the same size: at most twice as many in flight there.
    assert 1 < side_peak <= (3 if kind == "conductor" else 6)
    assert one_runs == side_runs > 3
    assert one_rows == side_rows  # the same runs and results, whichever came back first


def test_it_reads_runs_side_by_side_as_it_reads_them_one_by_one():
    with synced("leapwork") as (_server, orchestrator):
        held = Run.objects.filter(orchestrator=orchestrator).order_by("external_id")
        ids = list(held.values_list("external_id", flat=True)[:4])
        synced_rows = _read_rows(orchestrator)
        # Stale copies of four runs, and one run the orchestrator no longer has.
        ExecutionResult.objects.filter(run__external_id__in=ids).delete()
        held.filter(external_id__in=ids).update(status=Status.QUEUED, fingerprint="")
        gone = make_run(held.first().schedule, external_id="gone-1")

        client = orchestrator_client(orchestrator)
        with ThreadPoolExecutor(3) as pool:
            report = runs_read(
                orchestrator=orchestrator,
                external_ids=[ids[0], "gone-1", *ids[1:]],
                client=client,
                fan_out=pool.map,
            )
        client.close()

    assert report.runs_fetched == 4 and report.vanished == 1
    gone.refresh_from_db()
    assert gone.vanished_at is not None
    gone.delete()
    assert _read_rows(orchestrator) == synced_rows


def _read_rows(orchestrator: Orchestrator) -> tuple[list[tuple[Any, ...]], ...]:
    """What a read of the orchestrator's runs stores, by the orchestrator's own ids."""
    runs = Run.objects.filter(orchestrator=orchestrator)
    results = ExecutionResult.objects.filter(run__orchestrator=orchestrator)
    return (
        sorted(runs.values_list("external_id", "status", "total_count", "failed_count")),
        sorted(
            results.values_list(
                *("run__external_id", "seq", "external_id", "status", "message"),
                *("test_case__title", "agent__external_id"),
            )
        ),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_each_client_is_told_the_fetch_concurrency_setting(kind, settings):
    settings.RUNBOARD_FETCH_CONCURRENCY = 3
    orchestrator = Orchestrator.objects.create(kind=kind, name=kind, base_url="http://x")
    client = orchestrator_client(orchestrator)
    client.close()
    assert client.concurrency == 3


def test_it_keeps_each_schedules_newest_run_whatever_order_its_runs_arrive_in():
    orchestrator = Orchestrator.objects.create(kind="leapwork", name="o", base_url="http://x")
    newest, middle, oldest = _snapshots(3, 2)

    def latest() -> tuple[str | None, datetime | None]:
        schedule = Schedule.objects.select_related("latest_run").get(orchestrator=orchestrator)
        run = schedule.latest_run
        return (run.external_id if run else None), schedule.last_run_at

    runs_store(orchestrator=orchestrator, snapshots=[middle])
    assert latest() == ("run-1", middle.started_at)
    runs_store(orchestrator=orchestrator, snapshots=[oldest])  # an older run, found later
    assert latest() == ("run-1", middle.started_at)
    runs_store(orchestrator=orchestrator, snapshots=[newest, oldest])
    assert latest() == ("run-0", newest.started_at)
    # A run gone leaves no dangling key; touching the schedules again finds the next newest.
    Run.objects.filter(external_id="run-0").delete()
    assert latest() == (None, newest.started_at)
    schedules_touch()
    assert latest() == ("run-1", middle.started_at)
