"""The events webhooks are told, noticed where they happen (runs.services.notifications): each
once, for the webhooks subscribed to it, and at a cost that does not grow with the batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import (
    FailureGroup,
    FailureMute,
    Run,
    Schedule,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from runs.orchestrators.base import ResultSnapshot, RunSnapshot
from runs.services.sync import orchestrator_sync, runs_store
from runs.status import Status
from tests.emulated import emulated, emulator_control, orchestrator_for
from tests.factories import make_orchestrator

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(microsecond=0)
TIMEOUT = "Timeout waiting for #login-button after 30 s"


def subscribe(*events: str, **fields) -> Webhook:
    values = {"name": "team", "url": "https://chat.example/hook", "events": list(events)}
    return Webhook.objects.create(**{**values, **fields})


def run(run_id: str, status: Status, *, schedule: str = "nightly", hours: float = 0, **result):
    """A finished run of one case, failing with `message` when it failed."""
    started = NOW - timedelta(hours=hours)
    failed = status.is_failure
    case = ResultSnapshot(
        external_id=f"{run_id}-login",
        case_key="login",
        case_title="Login",
        status=Status.FAILED if failed else Status.PASSED,
        agent_id="agent-1",
        agent_title="Agent 1",
        started_at=started,
        message=result.get("message", TIMEOUT) if failed else "",
    )
    return RunSnapshot(
        external_id=run_id,
        schedule_id=schedule,
        schedule_title=schedule.title(),
        status=status,
        vendor_status="Finished",
        started_at=started,
        finished_at=started + timedelta(minutes=5),
        results=(case,),
    )


@pytest.fixture
def orchestrator():
    """An orchestrator synced before: what its next passes find is news."""
    return make_orchestrator(last_synced_at=timezone.now())


def keys(event: str) -> list[str]:
    return sorted(WebhookDelivery.objects.filter(event=event).values_list("key", flat=True))


# schedule.failing ------------------------------------------------------------------------------


def test_a_schedule_is_told_failing_once_when_a_failure_follows_a_pass(orchestrator):
    subscribe(WebhookEvent.SCHEDULE_FAILING)
    runs_store(orchestrator=orchestrator, snapshots=[run("r1", Status.PASSED, hours=3)])
    assert keys(WebhookEvent.SCHEDULE_FAILING) == []
    runs_store(orchestrator=orchestrator, snapshots=[run("r2", Status.FAILED, hours=2)])
    schedule = Schedule.objects.get(external_id="nightly")
    failed = Run.objects.get(external_id="r2")
    assert keys(WebhookEvent.SCHEDULE_FAILING) == [f"schedule:{schedule.pk}:run:{failed.pk}"]

    # Stored again, and failing again: still failing, not news.
    runs_store(orchestrator=orchestrator, snapshots=[run("r2", Status.FAILED, hours=2)])
    runs_store(orchestrator=orchestrator, snapshots=[run("r3", Status.ERROR, hours=1)])
    assert len(keys(WebhookEvent.SCHEDULE_FAILING)) == 1
    # A pass, then a failure: it started failing again.
    runs_store(orchestrator=orchestrator, snapshots=[run("r4", Status.PASSED, hours=0.5)])
    runs_store(orchestrator=orchestrator, snapshots=[run("r5", Status.FAILED)])
    assert len(keys(WebhookEvent.SCHEDULE_FAILING)) == 2

    [delivery] = WebhookDelivery.objects.filter(key__endswith=f":run:{failed.pk}")
    assert delivery.payload["data"]["schedule"]["title"] == "Nightly"
    assert delivery.payload["data"]["schedule"]["previous_status"] == "passed"
    assert delivery.payload["url"].endswith(f"/runs/{failed.pk}/")


def test_a_failure_for_a_muted_cause_does_not_make_a_schedule_failing(orchestrator, user):
    subscribe(WebhookEvent.SCHEDULE_FAILING)
    runs_store(orchestrator=orchestrator, snapshots=[run("o1", Status.FAILED, schedule="other")])
    FailureMute.objects.create(group=FailureGroup.objects.get(), reason="known", muted_by=user)
    runs_store(orchestrator=orchestrator, snapshots=[run("r1", Status.PASSED, hours=3)])
    runs_store(orchestrator=orchestrator, snapshots=[run("r2", Status.FAILED, hours=2)])
    nightly = Schedule.objects.get(external_id="nightly")
    assert not WebhookDelivery.objects.filter(key__startswith=f"schedule:{nightly.pk}:")


def test_an_orchestrators_first_import_is_not_news():
    subscribe(*WebhookEvent.values)
    first = make_orchestrator()  # never synced: this is its history
    runs_store(
        orchestrator=first,
        snapshots=[run("r1", Status.PASSED, hours=3), run("r2", Status.FAILED, hours=2)],
    )
    assert not WebhookDelivery.objects.exists()


def test_only_active_webhooks_subscribed_to_the_event_are_told(orchestrator):
    told = subscribe(WebhookEvent.SCHEDULE_FAILING)
    subscribe(WebhookEvent.SCHEDULE_FAILING, active=False, name="off")
    subscribe(WebhookEvent.RERUN_FINISHED, name="reruns only")
    runs_store(orchestrator=orchestrator, snapshots=[run("r1", Status.PASSED, hours=3)])
    runs_store(orchestrator=orchestrator, snapshots=[run("r2", Status.FAILED, hours=2)])
    assert list(WebhookDelivery.objects.values_list("webhook", flat=True)) == [told.pk]


# failure.new -----------------------------------------------------------------------------------


def test_a_cause_never_seen_before_is_told_once(orchestrator):
    subscribe(WebhookEvent.FAILURE_NEW)
    runs_store(orchestrator=orchestrator, snapshots=[run("r1", Status.FAILED, hours=2)])
    group = FailureGroup.objects.get()
    assert keys(WebhookEvent.FAILURE_NEW) == [f"failure:{group.fingerprint}"]
    # The same cause elsewhere, later: known.
    other = make_orchestrator(last_synced_at=timezone.now())
    runs_store(orchestrator=other, snapshots=[run("x1", Status.FAILED, schedule="smoke")])
    runs_store(orchestrator=orchestrator, snapshots=[run("r2", Status.FAILED, hours=1)])
    assert len(keys(WebhookEvent.FAILURE_NEW)) == 1
    # Another cause: news.
    runs_store(
        orchestrator=orchestrator,
        snapshots=[run("r3", Status.FAILED, message="NullPointerException in CartService")],
    )
    assert len(keys(WebhookEvent.FAILURE_NEW)) == 2

    delivery = WebhookDelivery.objects.get(key=f"failure:{group.fingerprint}")
    data = delivery.payload["data"]
    assert data["failure_group"]["normalized"] == group.normalized
    assert data["failure_group"]["url"].endswith(f"/failures/{group.pk}/")
    assert data["run"]["id"] == Run.objects.get(external_id="r1").pk
    assert delivery.payload["url"].endswith(f"/runs/{data['run']['id']}/")


# The cost of telling ---------------------------------------------------------------------------


def _batch(schedules: int) -> list[RunSnapshot]:
    """A pass then a failure on each schedule, each failing for a cause of its own."""
    return [
        run(f"{name}-{n}", status, schedule=name, hours=hours, message=f"No element {word}")
        for n in range(schedules)
        # Letters, not numbers: fingerprints ignore numbers.
        for name, word in ((f"schedule-{n}", "login-" + "".join(chr(97 + int(d)) for d in str(n))),)
        for status, hours in ((Status.PASSED, 2), (Status.FAILED, 1))
    ]


def test_telling_costs_no_more_queries_for_ten_times_the_events():
    subscribe(*WebhookEvent.values)
    few_at = make_orchestrator(name="few", last_synced_at=timezone.now())
    many_at = make_orchestrator(name="many", last_synced_at=timezone.now())
    with CaptureQueriesContext(connection) as few:
        runs_store(orchestrator=few_at, snapshots=_batch(3))
    with CaptureQueriesContext(connection) as many:
        runs_store(orchestrator=many_at, snapshots=_batch(30))

    assert len(many.captured_queries) <= len(few.captured_queries)
    # Each schedule's failure followed a pass: told, each. The second batch's first three
    # causes are the first batch's: known by then.
    assert len(keys(WebhookEvent.SCHEDULE_FAILING)) == 33
    assert len(keys(WebhookEvent.FAILURE_NEW)) == 30


def test_a_batch_with_nothing_to_tell_asks_nothing_of_the_webhooks(orchestrator):
    subscribe(*WebhookEvent.values)
    with CaptureQueriesContext(connection) as queries:
        runs_store(orchestrator=orchestrator, snapshots=[run("r1", Status.PASSED)])
    assert not [q for q in queries.captured_queries if "runs_webhook" in q["sql"]]


# sync.failing ----------------------------------------------------------------------------------


def test_a_periodic_sync_is_told_failing_when_it_starts_failing(settings):
    settings.RUNBOARD_SYNC_INTERVAL = 1
    subscribe(WebhookEvent.SYNC_FAILING)
    with emulated("conductor", history=1) as (_app, server):
        orchestrator = orchestrator_for(server)
        assert orchestrator_sync(orchestrator=orchestrator, periodic=True).ok
        emulator_control(server, "faults", {"error_rate": 1.0, "status": 500})
        failed = orchestrator_sync(orchestrator=orchestrator, periodic=True)
        assert not failed.ok
        [first] = keys(WebhookEvent.SYNC_FAILING)
        assert not orchestrator_sync(orchestrator=orchestrator, periodic=True).ok
        assert not orchestrator_sync(orchestrator=orchestrator).ok  # by hand: not counted
        assert keys(WebhookEvent.SYNC_FAILING) == [first]  # still failing: not news

        emulator_control(server, "faults")
        assert orchestrator_sync(orchestrator=orchestrator, periodic=True).ok
        emulator_control(server, "faults", {"error_rate": 1.0, "status": 500})
        assert not orchestrator_sync(orchestrator=orchestrator, periodic=True).ok
    assert len(keys(WebhookEvent.SYNC_FAILING)) == 2
    delivery = WebhookDelivery.objects.get(key=first)
    assert delivery.payload["data"]["orchestrator"]["name"] == orchestrator.name
    assert delivery.payload["data"]["error"] == failed.error
    assert first.startswith(f"sync:{orchestrator.pk}:")
