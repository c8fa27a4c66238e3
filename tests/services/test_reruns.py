"""The rerun service against the emulators over loopback HTTP, for each vendor and scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.core.exceptions import PermissionDenied

from runs.models import RerunRequest, RerunState, Run, Schedule
from runs.selectors import orchestrator_list_with_counts, rerun_verdict
from runs.services.reruns import (
    PlanChanged,
    RerunInput,
    RerunInvalid,
    rerun_plan,
)
from runs.services.sync import orchestrator_sync
from tests.emulated import (
    emulator_control,
    failed_run,
    step_clock,
    synced,
    vendor_writes,
)
from tests.factories import make_agent, make_orchestrator, make_user
from tests.sending import rerun_sent

pytestmark = pytest.mark.django_db


@pytest.fixture
def rerunner():
    return make_user("ana", rerunner=True)


# Leapwork ------------------------------------------------------------------------------------


def test_it_reruns_leapwork_failures_on_another_agent_with_a_changed_variable(rerunner):
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        used = set(source.results.values_list("agent_id", flat=True))
        other = orchestrator.agents.exclude(pk__in=used).first() or orchestrator.agents.first()
        failed_flows = set(
            source.results.filter(status__in=["failed", "error"]).values_list("case_key", flat=True)
        )

        request, sent = rerun_sent(
            user=rerunner,
            idempotency_key="leap-1",
            data=RerunInput(scope="failed", agents=(other,), variables={"Browser": "firefox"}),
            source=source,
        )

        assert sent and request.state == RerunState.ACCEPTED
        writes = vendor_writes(server)
        assert {w["path"] for w in writes} == {
            f"/api/v4/flows/{flow}/agent/{other.external_id}" for flow in failed_flows
        }
        for write in writes:
            assert ("Browser", "firefox") in write["query"]
            assert ("isDelete", "true") in write["query"]
        runs = list(request.runs.all())
        assert len(runs) == len(failed_flows)
        assert all(r.rerun_of_id == source.pk and r.trigger == "rerun" for r in runs)
        assert all(r.triggered_by == rerunner for r in runs)
        assert request.requested_by == rerunner
        assert (
            "failed only" in request.options["summary"]
            and other.title in request.options["summary"]
        )


def test_a_leapwork_failed_only_rerun_stays_under_its_source_schedule_with_one_verdict(rerunner):
    with synced("leapwork", pace=1.0) as (server, orchestrator):
        source = failed_run(orchestrator)
        failures = source.results.filter(status__in=["failed", "error"]).count()
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="leap-verdict",
            data=RerunInput(scope="failed"),
            source=source,
        )
        runs = list(request.runs.select_related("vendor_schedule"))
        assert len(runs) == failures > 1
        # Followed by run id, under the source's schedule; the temporary schedule is kept apart.
        assert {r.schedule_id for r in runs} == {source.schedule_id}
        assert all(r.vendor_schedule is not None and r.vendor_schedule.is_temporary for r in runs)
        verdict = rerun_verdict(RerunRequest.objects.get(pk=request.pk))
        assert verdict is not None and not verdict.is_over and verdict.status == "running"

        step_clock(server, 3600)  # every run is over; Leapwork deletes their temporary schedules
        report = orchestrator_sync(orchestrator=orchestrator)
        assert report.ok, report.error
        runs = list(Run.objects.filter(rerun_request=request))
        assert all(r.is_terminal and r.schedule_id == source.schedule_id for r in runs)
        verdict = rerun_verdict(RerunRequest.objects.get(pk=request.pk))
        assert verdict.is_over and verdict.total == failures
        assert verdict.passed + verdict.failing + verdict.other == failures
        assert verdict.status == ("failed" if verdict.failing else "passed")
        assert (f"{verdict.failing} still failing" in verdict.text) == bool(verdict.failing)
        # Temporary schedules are not counted as the orchestrator's schedules.
        listed = next(o for o in orchestrator_list_with_counts() if o.pk == orchestrator.pk)
        assert (
            listed.schedule_count
            == Schedule.objects.filter(orchestrator=orchestrator, is_temporary=False).count()
        )


def test_with_no_agent_chosen_each_failure_reruns_on_the_agent_it_ran_on(rerunner):
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        failures = source.results.filter(status__in=["failed", "error"]).select_related("agent")
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="leap-own",
            data=RerunInput(scope="failed"),
            source=source,
        )
        assert request.state == RerunState.ACCEPTED
        assert "each case on the agent it ran on" in request.options["summary"]
        assert {w["path"] for w in vendor_writes(server)} == {
            f"/api/v4/flows/{r.case_key}/agent/{r.agent.external_id}" for r in failures
        }


def test_with_agents_chosen_every_failure_moves_to_each_of_them(rerunner):
    """Checking another agent moves the rerun there, even beside the agent a case ran on."""
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        failures = source.results.filter(status__in=["failed", "error"]).select_related("agent")
        own = failures[0].agent
        other = orchestrator.agents.exclude(pk=own.pk).first()
        plan = rerun_plan(source=source, data=RerunInput(scope="failed", agents=(other, own)))
        assert plan.summary.startswith(f"failed only, on {other.title}, {own.title}")
        assert all(case.agents == (other.title, own.title) for case in plan.cases)
        # The preview lists each case once, and exactly the calls that will be sent.
        assert len(plan.cases) == len({r.case_key for r in failures})
        assert len(plan.calls) == 2 * len(plan.cases)
        rerun_sent(
            user=rerunner,
            idempotency_key="leap-moved",
            data=RerunInput(scope="failed", agents=(other,)),
            source=source,
        )
        assert {w["path"] for w in vendor_writes(server)} == {
            f"/api/v4/flows/{flow}/agent/{other.external_id}"
            for flow in {r.case_key for r in failures}
        }


def test_send_refuses_inputs_that_plan_otherwise_than_the_preview(rerunner):
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        other = orchestrator.agents.first()
        previewed = rerun_plan(source=source, data=RerunInput(scope="failed"))
        changed = RerunInput(scope="failed", agents=(other,))
        with pytest.raises(PlanChanged) as refused:
            rerun_sent(
                user=rerunner,
                idempotency_key="leap-digest",
                data=changed,
                source=source,
                previewed_digest=previewed.digest,
            )
        assert refused.value.plan.digest == rerun_plan(source=source, data=changed).digest
        assert vendor_writes(server) == [] and not RerunRequest.objects.exists()
        request, sent = rerun_sent(
            user=rerunner,
            idempotency_key="leap-digest",
            data=changed,
            source=source,
            previewed_digest=refused.value.plan.digest,
        )
        assert sent and request.state == RerunState.ACCEPTED


def test_it_reruns_all_of_a_leapwork_run_on_agents_per_step(rerunner):
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        agents = list(orchestrator.agents.all()[:2])
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="leap-all",
            data=RerunInput(scope="all", agents=tuple(agents), variables={"Env": "qa"}),
            source=source,
        )
        assert request.state == RerunState.ACCEPTED
        (write,) = vendor_writes(server)
        assert write["path"] == f"/api/v4/run/{source.external_id}/reRunOnAgents"
        assert write["body"]["Variables"] == [{"Name": "Env", "Value": "qa"}]
        assert [s["RunListStepId"] for s in write["body"]["Steps"]] == [
            step["id"] for step in source.schedule.steps
        ]
        assert all(s["AgentIds"] == [a.external_id for a in agents] for s in write["body"]["Steps"])
        (new_run,) = request.runs.all()
        assert new_run.rerun_of == source and new_run.variables == {"Env": "qa"}


def test_a_picked_leapwork_case_runs_on_its_own_agent(rerunner):
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        result = source.results.select_related("agent").first()
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="leap-pick",
            data=RerunInput(scope="picked", result_ids=(result.pk,)),
            source=source,
        )
        (write,) = vendor_writes(server)
        assert write["path"] == f"/api/v4/flows/{result.case_key}/agent/{result.agent.external_id}"
        assert request.runs.count() == 1


def test_some_failed_run_flow_calls_make_a_partial_request(rerunner):
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        flows = sorted(
            set(
                source.results.filter(status__in=["failed", "error"]).values_list(
                    "case_key", flat=True
                )
            )
        )
        assert len(flows) >= 2
        emulator_control(
            server, "faults", {"path": f"/flows/{flows[0]}/", "error_rate": 1.0, "status": 500}
        )
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="leap-partial",
            data=RerunInput(scope="failed"),
            source=source,
        )
        assert request.state == RerunState.PARTIAL
        assert flows[0] in request.message
        assert request.runs.count() >= 1


def test_run_now_sends_the_variables_as_query_parameters(rerunner):
    with synced("leapwork") as (server, orchestrator):
        schedule = orchestrator.schedules.filter(is_temporary=False).first()
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="leap-now",
            data=RerunInput(scope="run_now", variables={"Browser": "edge"}),
            schedule=schedule,
        )
        assert request.state == RerunState.ACCEPTED
        (write,) = vendor_writes(server)
        assert write["path"] == f"/api/v3/schedules/{schedule.external_id}/runNow"
        assert ("Browser", "edge") in write["query"]
        (run,) = request.runs.all()
        assert (
            run.schedule == schedule
            and run.trigger == "manual"
            and run.variables == {"Browser": "edge"}
        )


# Idempotency, permission, faults ---------------------------------------------------------------


def test_the_same_key_twice_shows_the_existing_request_and_sends_nothing(rerunner):
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        first, sent = rerun_sent(
            user=rerunner, idempotency_key="twice", data=RerunInput(scope="all"), source=source
        )
        again, sent_again = rerun_sent(
            user=rerunner, idempotency_key="twice", data=RerunInput(scope="all"), source=source
        )
        assert sent and not sent_again and again.pk == first.pk
        assert len(vendor_writes(server)) == 1
        assert RerunRequest.objects.count() == 1


def test_a_user_without_the_permission_cannot_rerun():
    with synced("leapwork") as (server, orchestrator):
        with pytest.raises(PermissionDenied):
            rerun_sent(
                user=make_user("viewer"),
                idempotency_key="nope",
                data=RerunInput(scope="all"),
                source=failed_run(orchestrator),
            )
        assert vendor_writes(server) == [] and RerunRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("fault", "state"),
    [
        ({"error_rate": 1.0, "status": 500}, RerunState.FAILED),
        ({"error_rate": 1.0, "status": 455}, RerunState.FAILED),
        # A call held past the timeout (the emulator then drops it: nothing started).
        ({"timeout": 3.0}, RerunState.UNKNOWN),
    ],
)
def test_an_orchestrator_fault_leaves_the_request_in_the_right_state(
    rerunner, fault, state, settings
):
    settings.RUNBOARD_HTTP_TIMEOUT = 1.0
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        emulator_control(server, "faults", {"path": "reRunOnAgents", **fault})
        request, _ = rerun_sent(
            user=rerunner, idempotency_key="fault", data=RerunInput(scope="all"), source=source
        )
        assert request.state == state
        assert request.message
        assert request.runs.count() == 0
        sent = len(vendor_writes(server))
        rerun_sent(
            user=rerunner, idempotency_key="fault", data=RerunInput(scope="all"), source=source
        )
        assert len(vendor_writes(server)) == sent


def test_a_refused_credential_fails_the_request_with_the_vendors_message(rerunner):
    with synced("leapwork") as (_server, orchestrator):
        source = failed_run(orchestrator)
        orchestrator.credential = "wrong"
        orchestrator.save()
        source.refresh_from_db()
        request, _ = rerun_sent(
            user=rerunner, idempotency_key="401", data=RerunInput(scope="all"), source=source
        )
        assert request.state == RerunState.FAILED
        assert "401" in request.message


@pytest.mark.parametrize(
    ("make_input", "field"),
    [
        (lambda run, other: RerunInput(scope="failed", agents=(other,)), "agents"),
        (lambda run, other: RerunInput(scope="picked", result_ids=(999_999,)), "cases"),
        (lambda run, other: RerunInput(scope="from_task", result_ids=()), "scope"),
        (lambda run, other: RerunInput(scope="all", variables={"bad name": "x"}), "variables"),
    ],
)
def test_it_refuses_invalid_specs_with_a_clear_message(rerunner, make_input, field):
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        foreign = make_agent(make_orchestrator())
        with pytest.raises(RerunInvalid) as refused:
            rerun_sent(
                user=rerunner,
                idempotency_key="bad",
                data=make_input(source, foreign),
                source=source,
            )
        assert field in refused.value.errors
        assert vendor_writes(server) == [] and RerunRequest.objects.count() == 0


def test_the_preview_says_what_will_run_and_sends_nothing():
    with synced("leapwork") as (server, orchestrator):
        source = failed_run(orchestrator)
        plan = rerun_plan(source=source, data=RerunInput(scope="failed", variables={"A": "1"}))
        assert plan.cases and plan.calls
        assert all(call.method == "PUT" and "/flows/" in call.path for call in plan.calls)
        assert plan.variables == {"A": "1"}
        assert vendor_writes(server) == []


# Conductor -------------------------------------------------------------------------------------


def test_conductor_failed_only_retries_and_keeps_the_earlier_attempt(rerunner):
    with synced("conductor") as (server, orchestrator):
        source = failed_run(orchestrator)
        results_before = source.results.count()
        request, _ = rerun_sent(
            user=rerunner, idempotency_key="c-retry", data=RerunInput(scope="failed"), source=source
        )
        assert request.state == RerunState.ACCEPTED
        assert [w["path"] for w in vendor_writes(server)] == [
            f"/api/workflow/{source.external_id}/retry"
        ]
        source.refresh_from_db()
        assert source.is_frozen and source.results.count() == results_before
        (attempt,) = request.runs.all()
        assert attempt.external_id == source.external_id
        assert attempt.attempt == source.attempt + 1 and attempt.rerun_of == source


@pytest.mark.parametrize("scope", ["failed", "all"])
def test_a_conductor_attempt_runboard_sent_has_its_own_start_and_duration(rerunner, scope):
    # The workflow keeps its first startTime (hours ago) when it is retried or rerun in place.
    with synced("conductor") as (server, orchestrator):
        source = failed_run(orchestrator)
        step_clock(server, 90)
        now = server.app.now()
        sent_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # Conductor's ms
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key=f"c-own-{scope}",
            data=RerunInput(scope=scope),
            source=source,
        )
        (attempt,) = request.runs.all()
        assert attempt.started_at == sent_at and attempt.duration is None
        step_clock(server, 3600)
        report = orchestrator_sync(orchestrator=orchestrator)
        wf = httpx.get(f"{server.base_url}/api/workflow/{source.external_id}").json()

    assert report.ok and report.runs_updated >= 1 and report.attempts_created == 0
    attempt.refresh_from_db()
    assert attempt.is_terminal and attempt.started_at == sent_at
    assert attempt.finished_at == datetime.fromtimestamp(wf["endTime"] / 1000, UTC)
    assert attempt.duration == attempt.finished_at - sent_at < timedelta(minutes=5)
    assert wf["startTime"] == int(source.started_at.timestamp() * 1000)


def test_conductor_reruns_from_a_picked_task_with_edited_input(rerunner):
    with synced("conductor") as (server, orchestrator):
        source = failed_run(orchestrator)
        task = source.results.filter(status="failed").first()
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="c-task",
            data=RerunInput(scope="from_task", result_ids=(task.pk,), task_input={"retries": 3}),
            source=source,
        )
        assert request.state == RerunState.ACCEPTED, request.message
        (write,) = vendor_writes(server)
        assert write["path"] == f"/api/workflow/{source.external_id}/rerun"
        assert write["body"]["reRunFromTaskId"] == task.external_id
        assert write["body"]["taskInput"] == {"retries": 3}
        assert Run.objects.filter(external_id=source.external_id).count() == 2


def test_conductor_reruns_all_with_edited_workflow_input(rerunner):
    with synced("conductor") as (server, orchestrator):
        source = failed_run(orchestrator)
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="c-all",
            data=RerunInput(
                scope="all", workflow_input={"env": "staging"}, correlation_id="ticket-42"
            ),
            source=source,
        )
        (write,) = vendor_writes(server)
        assert write["body"]["workflowInput"] == {"env": "staging"}
        assert write["body"]["correlationId"] == "ticket-42"
        (attempt,) = request.runs.all()
        assert attempt.variables == {"env": "staging"}


def test_conductor_cannot_pick_agents(rerunner):
    with synced("conductor") as (_server, orchestrator):
        source = failed_run(orchestrator)
        agent = orchestrator.agents.first()
        with pytest.raises(RerunInvalid) as refused:
            rerun_plan(source=source, data=RerunInput(scope="failed", agents=(agent,)))
        assert "agents" in refused.value.errors


# Testsigma -------------------------------------------------------------------------------------


def test_testsigma_failed_only_reruns_only_failed_tests(rerunner):
    with synced("testsigma") as (server, orchestrator):
        source = failed_run(orchestrator)
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="t-failed",
            data=RerunInput(scope="failed"),
            source=source,
        )
        assert request.state == RerunState.ACCEPTED, request.message
        (write,) = vendor_writes(server)
        assert write["body"]["reRunType"] == "ONLY_FAILED_TESTS"
        assert str(write["body"]["executionResultId"]) == source.external_id
        (new_run,) = request.runs.all()
        assert new_run.rerun_of == source


def test_testsigma_reruns_only_the_failed_iterations(rerunner):
    with synced("testsigma") as (server, orchestrator):
        source = (
            Run.objects.filter(
                orchestrator=orchestrator, results__is_data_driven=True, results__status="failed"
            )
            .distinct()
            .first()
        )
        assert source is not None
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="t-iter",
            data=RerunInput(scope="failed", only_failed_iterations=True),
            source=source,
        )
        (write,) = vendor_writes(server)
        assert write["body"]["reRunType"] == "ONLY_FAILED_ITERATIONS"
        assert request.state == RerunState.ACCEPTED


def test_testsigma_reruns_two_picked_cases(rerunner):
    with synced("testsigma") as (server, orchestrator):
        source = failed_run(orchestrator)
        picked = list(source.results.order_by("pk")[:2])
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="t-pick",
            data=RerunInput(scope="picked", result_ids=tuple(r.pk for r in picked)),
            source=source,
        )
        (write,) = vendor_writes(server)
        assert write["body"]["reRunType"] == "USER_PICKED"
        assert [str(c["id"]) for c in write["body"]["testCaseResultRequests"]] == [
            r.external_id for r in picked
        ]
        assert request.state == RerunState.ACCEPTED


def test_testsigma_run_now_triggers_the_plan_with_build_and_runtime_data(rerunner):
    with synced("testsigma") as (server, orchestrator):
        schedule = orchestrator.schedules.first()
        request, _ = rerun_sent(
            user=rerunner,
            idempotency_key="t-now",
            data=RerunInput(scope="run_now", variables={"user": "qa"}, build="1.2.3"),
            schedule=schedule,
        )
        (write,) = vendor_writes(server)
        assert str(write["body"]["executionId"]) == schedule.external_id
        assert write["body"]["buildNo"] == "1.2.3"
        assert write["body"]["runtimeData"] == {"user": "qa"}
        assert request.state == RerunState.ACCEPTED


def test_testsigma_takes_no_agents_or_variables_on_a_rerun(rerunner):
    with synced("testsigma") as (_server, orchestrator):
        source = failed_run(orchestrator)
        with pytest.raises(RerunInvalid) as refused:
            rerun_plan(source=source, data=RerunInput(scope="all", variables={"a": "b"}))
        assert "variables" in refused.value.errors
