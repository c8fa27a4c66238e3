from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from runs.models import ExecutionResult, OrchestratorKind, RerunRequest, Run
from tests.factories import (
    make_agent,
    make_orchestrator,
    make_result,
    make_run,
    make_schedule,
    make_test_case,
    rerunners_ensure,
)

pytestmark = pytest.mark.django_db


def test_a_second_attempt_of_one_conductor_workflow_is_a_second_run():
    schedule = make_schedule(make_orchestrator(OrchestratorKind.CONDUCTOR, credential=""))
    first = make_run(schedule, external_id="wf-1")
    second = make_run(schedule, external_id="wf-1", attempt=2, rerun_of=first)
    assert Run.objects.filter(external_id="wf-1").count() == 2
    assert list(first.reruns.all()) == [second]


def test_it_refuses_a_duplicate_attempt():
    schedule = make_schedule()
    make_run(schedule, external_id="r-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_run(schedule, external_id="r-1")


def test_the_same_external_id_may_live_on_two_orchestrators():
    make_run(make_schedule(), external_id="same")
    make_run(make_schedule(), external_id="same")
    assert Run.objects.filter(external_id="same").count() == 2


@pytest.mark.parametrize("factory", [make_agent, make_test_case])
def test_agents_and_cases_are_unique_by_orchestrator_and_external_id(factory):
    orchestrator = make_orchestrator()
    factory(orchestrator, external_id="x")
    factory(make_orchestrator(), external_id="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(orchestrator, external_id="x")


def test_schedules_are_unique_by_orchestrator_and_external_id():
    orchestrator = make_orchestrator()
    make_schedule(orchestrator, external_id="s")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_schedule(orchestrator, external_id="s")


def test_orchestrator_names_are_unique():
    make_orchestrator(name="lab")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_orchestrator(name="lab")


def test_results_are_unique_by_run_and_vendor_result_id():
    run = make_run()
    make_result(run, external_id="item-1")
    make_result(make_run(), external_id="item-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_result(run, external_id="item-1")
    assert ExecutionResult.objects.filter(external_id="item-1").count() == 2


def test_a_rerun_request_names_a_source_run_or_a_schedule_not_both():
    run = make_run()
    RerunRequest.objects.create(orchestrator=run.orchestrator, source_run=run, scope="failed")
    RerunRequest.objects.create(
        orchestrator=run.orchestrator, schedule=run.schedule, scope="run_now"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        RerunRequest.objects.create(
            orchestrator=run.orchestrator, source_run=run, schedule=run.schedule, scope="all"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        RerunRequest.objects.create(orchestrator=run.orchestrator, scope="all")


def test_idempotency_keys_are_unique():
    run = make_run()
    RerunRequest.objects.create(
        orchestrator=run.orchestrator, source_run=run, scope="all", idempotency_key="k"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        RerunRequest.objects.create(
            orchestrator=run.orchestrator, source_run=run, scope="all", idempotency_key="k"
        )


def test_lineage_links_a_rerun_to_its_source_and_request():
    source = make_run()
    request = RerunRequest.objects.create(
        orchestrator=source.orchestrator, source_run=source, scope="failed"
    )
    rerun = make_run(source.schedule, rerun_of=source, rerun_request=request, trigger="rerun")
    assert list(source.reruns.all()) == [rerun]
    assert list(request.runs.all()) == [rerun]


def test_the_rerunners_group_holds_the_rerun_and_mute_permissions():
    # What the migrations do, again: a transactional test on this process may have flushed
    # what they wrote before (the order of tests on a pytest-xdist process is not fixed).
    group = rerunners_ensure()
    codenames = group.permissions.values_list("codename", flat=True)
    assert sorted(codenames) == ["add_rerunrequest", "mute_failuregroup"]
