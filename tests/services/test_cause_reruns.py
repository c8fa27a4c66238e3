"""Issue 15: rerun every failure of one cause, across runs and orchestrators, in one send:
previewed per orchestrator, one digest over the batch, idempotent by the batch's key."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from runs.models import (
    ExecutionResult,
    FailureGroup,
    OrchestratorKind,
    RerunBatch,
    RerunRequest,
    RerunState,
)
from runs.services.cause_reruns import (
    BATCH_RUNS,
    CausePlanChanged,
    cause_rerun_plan,
    cause_rerun_send,
)
from runs.status import Status
from tests.emulated import synced, vendor_writes
from tests.factories import (
    make_orchestrator,
    make_result,
    make_results,
    make_runs,
    make_schedule,
    make_user,
)
from tests.sending import deliver_pending

pytestmark = pytest.mark.django_db

DAYS = 30


def shared_cause() -> FailureGroup:
    """The cause that struck on the most orchestrators (then in the most runs)."""
    row = (
        ExecutionResult.objects.exclude(fingerprint="")
        .values("fingerprint")
        .annotate(
            orchestrators=Count("run__orchestrator", distinct=True),
            runs=Count("run", distinct=True),
        )
        .order_by("-orchestrators", "-runs")
        .first()
    )
    assert row and row["orchestrators"] > 1, "the emulators share causes across vendors"
    return FailureGroup.objects.get(fingerprint=row["fingerprint"])


@pytest.fixture
def three():
    with (
        synced("leapwork", history=2) as leap,
        synced("conductor", history=2) as cond,
        synced("testsigma", history=2) as ts,
    ):
        yield {"leapwork": leap[0], "conductor": cond[0], "testsigma": ts[0]}


def writes(servers) -> int:
    return sum(len(vendor_writes(server)) for server in servers.values())


def test_a_cause_is_rerun_on_every_orchestrator_it_struck_in_one_send(three):
    group = shared_cause()
    plan = cause_rerun_plan(group=group, days=DAYS)
    assert len(plan.per_orchestrator()) > 1 and len(plan.reruns) <= BATCH_RUNS
    assert writes(three) == 0, "a preview sends nothing"
    # Each run reruns its failures of this cause (picked), or its failed ones.
    for rerun in plan.reruns:
        mine = set(
            rerun.source.results.filter(fingerprint=group.fingerprint).values_list("pk", flat=True)
        )
        assert rerun.data.scope == "failed" or set(rerun.data.result_ids) == mine

    user = make_user("ana", rerunner=True)
    key = str(uuid.uuid4())
    batch, recorded = cause_rerun_send(
        group=group, days=DAYS, user=user, idempotency_key=key, previewed_digest=plan.digest
    )
    assert recorded and batch.requests.count() == len(plan.reruns)
    assert {r.source_run_id for r in batch.requests.all()} == {r.source.pk for r in plan.reruns}
    deliver_pending()
    sent = writes(three)
    assert sent >= len(plan.reruns)
    states = set(batch.requests.values_list("state", flat=True))
    assert states == {RerunState.ACCEPTED}

    # The same batch again (a double click, a retry): nothing recorded, nothing sent.
    again, recorded = cause_rerun_send(
        group=group, days=DAYS, user=user, idempotency_key=key, previewed_digest=plan.digest
    )
    deliver_pending()
    assert (again, recorded) == (batch, False) and writes(three) == sent
    assert RerunRequest.objects.count() == len(plan.reruns)
    # Rerun already: the runs the batch reran are out of the next plan.
    rerun_again = cause_rerun_plan(group=group, days=DAYS)
    assert not {r.source.pk for r in rerun_again.reruns} & {r.source.pk for r in plan.reruns}


def test_a_batch_whose_plan_changed_since_its_preview_sends_nothing(three):
    group = shared_cause()
    plan = cause_rerun_plan(group=group, days=DAYS)
    with pytest.raises(CausePlanChanged):
        cause_rerun_send(
            group=group,
            days=DAYS,
            user=make_user("ana", rerunner=True),
            idempotency_key=str(uuid.uuid4()),
            previewed_digest=plan.digest[::-1],
        )
    assert not RerunBatch.objects.exists() and not RerunRequest.objects.exists()
    assert writes(three) == 0


def test_a_viewer_cannot_rerun_a_cause(three):
    group = shared_cause()
    plan = cause_rerun_plan(group=group, days=DAYS)
    with pytest.raises(PermissionDenied):
        cause_rerun_send(
            group=group,
            days=DAYS,
            user=make_user("vic"),
            idempotency_key=str(uuid.uuid4()),
            previewed_digest=plan.digest,
        )
    assert not RerunBatch.objects.exists()


# At the size that hurts ----------------------------------------------------------------------


def struck(runs: int, *, passes: int = 3) -> FailureGroup:
    """A cause that struck `runs` runs of one Testsigma schedule (a minute apart), once each
    among `passes` passing results."""
    group = FailureGroup.objects.create(fingerprint="c0ffee", version=1, normalized="boom")
    schedule = make_schedule(make_orchestrator(OrchestratorKind.TESTSIGMA))
    for run in make_runs(runs, schedule, status=Status.FAILED):
        make_results(run, passes)
        make_result(
            run, case_key="login", status=Status.FAILED, fingerprint=group.fingerprint, seq=99
        )
    return group


def queries(group: FailureGroup) -> int:
    with CaptureQueriesContext(connection) as captured:
        plan = cause_rerun_plan(group=group, days=DAYS)
    assert plan.reruns and not plan.skipped
    return len(captured)


def test_a_previews_queries_do_not_grow_with_the_runs_it_reruns():
    few = queries(struck(2))
    ExecutionResult.objects.all().delete()
    FailureGroup.objects.all().delete()

    assert queries(struck(BATCH_RUNS, passes=40)) == few


def test_a_batch_holds_the_runs_struck_most_recently_and_says_there_are_more():
    group = struck(BATCH_RUNS + 7)
    newest = list(
        ExecutionResult.objects.filter(fingerprint=group.fingerprint)
        .order_by("-started_at", "-id")
        .values_list("run_id", flat=True)[:BATCH_RUNS]
    )

    plan = cause_rerun_plan(group=group, days=DAYS)

    assert plan.more and [r.source.pk for r in plan.reruns] == newest
    assert all([c.title for c in r.plan.cases] == ["login"] for r in plan.reruns)
