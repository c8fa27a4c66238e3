"""Issue 16, notifications: a receiver on loopback gets a signed "rerun finished" with the right
verdict; a receiver that fails, is down or hangs is retried with backoff and logged, and
nothing else waits for it (runs.services.webhooks, the `webhook_send` task)."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runs.models import (
    RerunRequest,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEvent,
    WebhookFormat,
)
from runs.selectors import rerun_verdict
from runs.services.reruns import RerunInput
from runs.services.sync import orchestrator_sync
from runs.services.webhooks import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    webhook_deliver,
    webhook_notify,
    webhook_ping,
    webhooks_recover,
)
from runs.tasks import WEBHOOK_QUEUE
from tests.emulated import failed_run, step_clock, synced
from tests.factories import make_user
from tests.receiver import down_url, receiving
from tests.sending import rerun_sent

pytestmark = pytest.mark.django_db

SECRET = "whsec-4711-not-a-real-one"
EVERY_EVENT = [event.value for event in WebhookEvent]


def make_webhook(url: str, **fields) -> Webhook:
    values = {"name": "team chat", "events": EVERY_EVENT, "secret": SECRET, **fields}
    return Webhook.objects.create(url=url, **values)


def notify(key: str = "rerun:1", text: str = "Rerun of Nightly: passed") -> list[int]:
    return webhook_notify(
        event=WebhookEvent.RERUN_FINISHED, key=key, text=text, path="/runs/7/", data={"n": 1}
    )


def signature(body: bytes, secret: str = SECRET) -> str:
    """What a receiver computes to check the X-Runboard-Signature header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def due_again(delivery: WebhookDelivery) -> None:
    """The backoff has passed."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def webhook_tasks(status: str = "READY") -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(queue_name=WEBHOOK_QUEUE, status=status))


# The Done-when: a signed "rerun finished" with the right verdict ------------------------------


def test_a_receiver_gets_a_signed_rerun_finished_with_the_verdict(settings):
    settings.RUNBOARD_BASE_URL = "https://runboard.example.com"
    with receiving() as receiver, synced("leapwork", pace=1.0) as (server, orchestrator):
        make_webhook(receiver.url, events=[WebhookEvent.RERUN_FINISHED])
        request, _ = rerun_sent(
            user=make_user("ana", rerunner=True),
            idempotency_key="hooked",
            data=RerunInput(scope="failed"),
            source=failed_run(orchestrator),
        )
        assert not WebhookDelivery.objects.exists()  # its runs are still going

        step_clock(server, 3600)
        assert orchestrator_sync(orchestrator=orchestrator).ok
        [delivery] = WebhookDelivery.objects.all()
        # Sync only recorded it: nothing was sent yet.
        assert (delivery.key, delivery.state, delivery.attempts) == (
            f"rerun:{request.pk}",
            "pending",
            0,
        )
        assert receiver.received == []

        assert webhook_deliver(delivery_id=delivery.pk).state == WebhookDeliveryState.DELIVERED
        step_clock(server, 60)
        assert orchestrator_sync(orchestrator=orchestrator).ok
        assert WebhookDelivery.objects.count() == 1  # told once

    [received] = receiver.received
    assert hmac.compare_digest(received.headers["x-runboard-signature"], signature(received.body))
    assert received.headers["x-runboard-event"] == "rerun.finished"
    assert received.headers["x-runboard-delivery"] == str(delivery.pk)
    assert received.headers["content-type"] == "application/json"
    body = received.json()
    verdict = rerun_verdict(RerunRequest.objects.get(pk=request.pk))
    assert verdict is not None and verdict.is_over
    assert body["event"] == "rerun.finished"
    assert body["data"]["verdict"]["status"] == verdict.status in ("passed", "failed")
    assert body["data"]["verdict"]["text"] == verdict.text
    assert (body["data"]["verdict"]["passed"], body["data"]["verdict"]["failing"]) == (
        verdict.passed,
        verdict.failing,
    )
    assert body["data"]["rerun_request"]["id"] == request.pk
    assert body["data"]["rerun_request"]["url"] == (
        f"https://runboard.example.com/reruns/{request.pk}/"
    )
    assert {run["id"] for run in body["data"]["runs"]} == set(
        request.runs.values_list("pk", flat=True)
    )
    assert body["data"]["source_run"]["id"] == request.source_run_id
    assert body["url"].startswith("https://runboard.example.com/runs/")
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.status_code, delivery.last_error) == (1, 200, "")
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None


def test_a_refused_rerun_is_told_finished_with_no_verdict():
    with synced("leapwork") as (_server, orchestrator):
        make_webhook("http://127.0.0.1:9/unused", events=[WebhookEvent.RERUN_FINISHED])
        orchestrator.credential = "wrong"
        orchestrator.save()
        request, _ = rerun_sent(
            user=make_user("ana", rerunner=True),
            idempotency_key="refused",
            data=RerunInput(scope="all"),
            source=failed_run(orchestrator),
        )
    assert request.state == "failed"
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.payload["data"]["verdict"] is None
    assert delivery.payload["data"]["rerun_request"]["state"] == "failed"
    assert "nothing ran" in delivery.payload["text"]


# Bodies ----------------------------------------------------------------------------------------


def test_a_slack_webhook_gets_an_incoming_webhook_message_with_the_run_link(settings):
    settings.RUNBOARD_BASE_URL = "https://runboard.example.com/"
    with receiving() as receiver:
        hook = make_webhook(receiver.url, body_format=WebhookFormat.SLACK, secret="")
        [made] = notify(text="Rerun of <Login> & co: failed")
        webhook_deliver(delivery_id=made)

    [received] = receiver.received
    assert received.json() == {
        "text": "Rerun of &lt;Login&gt; &amp; co: failed https://runboard.example.com/runs/7/"
    }
    assert "x-runboard-signature" not in received.headers  # no secret, no signature
    assert WebhookDelivery.objects.get(pk=made).webhook == hook


def test_the_signature_covers_the_exact_body_with_each_webhooks_own_secret():
    with receiving() as receiver:
        make_webhook(receiver.url, secret="first")
        make_webhook(receiver.url, secret="second", name="other")
        for made in notify():
            webhook_deliver(delivery_id=made)

    first, second = receiver.received
    assert first.headers["x-runboard-signature"] == signature(first.body, "first")
    assert second.headers["x-runboard-signature"] == signature(second.body, "second")
    assert signature(first.body, "second") != first.headers["x-runboard-signature"]


# Retries, backoff, the log ---------------------------------------------------------------------


def test_a_receiver_answering_500_is_retried_with_backoff_then_given_up():
    with receiving(status=500) as receiver:
        make_webhook(receiver.url)
        [made] = notify()
        waits = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            before = timezone.now()
            delivery = webhook_deliver(delivery_id=made)
            assert delivery.attempts == attempt and delivery.status_code == 500
            assert (
                delivery.last_error.startswith("HTTP 500")
                and "receiver broke" in delivery.last_error
            )
            if attempt < MAX_ATTEMPTS:
                assert delivery.state == WebhookDeliveryState.PENDING
                waits.append(round((delivery.next_attempt_at - before).total_seconds()))
                # Not due yet: a second task for it sends nothing.
                assert webhook_deliver(delivery_id=made) is None
                due_again(delivery)
        assert len(receiver.received) == MAX_ATTEMPTS

    assert waits == list(RETRY_DELAYS)
    delivery = WebhookDelivery.objects.get(pk=made)
    assert delivery.state == WebhookDeliveryState.FAILED and delivery.next_attempt_at is None
    assert webhook_deliver(delivery_id=made) is None  # given up: never sent again
    # Each failed attempt left the next one waiting as a task of its own, for its time.
    retries = sorted(task.run_after for task in webhook_tasks())
    assert len(retries) == MAX_ATTEMPTS - 1 and all(retries)


def test_a_receiver_that_is_down_is_retried_and_logged():
    make_webhook(down_url())
    [made] = notify()
    started = time.monotonic()
    delivery = webhook_deliver(delivery_id=made)
    assert time.monotonic() - started < 2
    assert delivery.state == WebhookDeliveryState.PENDING and delivery.attempts == 1
    assert delivery.status_code is None and "ConnectError" in delivery.last_error
    [retry] = webhook_tasks()
    assert abs((retry.run_after - delivery.next_attempt_at).total_seconds()) < 1
    assert retry.args_kwargs["args"] == [made]


def test_a_receiver_that_hangs_is_given_up_at_the_timeout(settings):
    settings.RUNBOARD_WEBHOOK_TIMEOUT = 0.5  # 5 s in production
    with receiving(hang=True) as receiver:
        make_webhook(receiver.url)
        [made] = notify()
        started = time.monotonic()
        delivery = webhook_deliver(delivery_id=made)
        elapsed = time.monotonic() - started
        assert len(receiver.received) == 1
    assert elapsed < 2
    assert delivery.last_error == "No answer within 0.5 s." and delivery.attempts == 1
    assert delivery.state == WebhookDeliveryState.PENDING


def test_a_redirect_is_not_followed():
    with receiving(status=302) as receiver:
        make_webhook(receiver.url)
        [made] = notify()
        delivery = webhook_deliver(delivery_id=made)
    assert delivery.status_code == 302 and delivery.state == WebhookDeliveryState.PENDING
    assert len(receiver.received) == 1


def test_a_webhook_turned_off_meanwhile_is_not_sent():
    with receiving() as receiver:
        hook = make_webhook(receiver.url)
        [made] = notify()
        Webhook.objects.filter(pk=hook.pk).update(active=False)
        delivery = webhook_deliver(delivery_id=made)
    assert receiver.received == []
    assert delivery.state == WebhookDeliveryState.FAILED and "turned off" in delivery.last_error


def test_a_delivery_whose_task_was_lost_is_enqueued_again_once():
    make_webhook(down_url())
    [made] = notify()
    assert webhooks_recover() == 0  # just made: its task is on its way
    WebhookDelivery.objects.filter(pk=made).update(
        next_attempt_at=timezone.now() - timedelta(hours=1)
    )
    assert webhooks_recover() == 1
    assert webhooks_recover() == 0
    [task] = webhook_tasks()
    assert task.args_kwargs["args"] == [made]


# Whom an event is for --------------------------------------------------------------------------


def test_an_event_is_recorded_once_for_each_active_webhook_subscribed_to_it():
    subscribed = make_webhook("https://a.example/hook", events=[WebhookEvent.RERUN_FINISHED])
    make_webhook("https://b.example/hook", events=[WebhookEvent.SYNC_FAILING])
    make_webhook("https://c.example/hook", active=False)
    made = notify()
    assert notify() == []  # the same subject again: told once
    assert list(WebhookDelivery.objects.values_list("webhook", flat=True)) == [subscribed.pk]
    assert len(made) == 1
    assert len(notify(key="rerun:2")) == 1


# Nothing waits for a receiver ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_webhooks_worker_sends_and_leaves_the_retry_for_later_without_waiting():
    with receiving(status=503) as receiver:
        hook = make_webhook(receiver.url)
        [made] = notify()  # no transaction open: its task is enqueued at once
        assert len(webhook_tasks()) == 1
        started = time.monotonic()
        call_command(
            "db_worker",
            queue_name=WEBHOOK_QUEUE,
            batch=True,
            startup_delay=False,
            reload=False,
            verbosity=0,
        )
        assert time.monotonic() - started < RETRY_DELAYS[0]
        delivery = WebhookDelivery.objects.get(pk=made)
        assert (delivery.attempts, delivery.status_code) == (1, 503)
        [retry] = webhook_tasks()  # the batch worker left it: its time has not come
        assert retry.run_after > timezone.now()

        receiver.status = 200
        due_again(delivery)
        DBTaskResult.objects.filter(pk=retry.pk).update(run_after=timezone.now())
        call_command(
            "db_worker",
            queue_name=WEBHOOK_QUEUE,
            batch=True,
            startup_delay=False,
            reload=False,
            verbosity=0,
        )
        assert len(receiver.received) == 2

    delivery.refresh_from_db()
    assert delivery.state == WebhookDeliveryState.DELIVERED and delivery.attempts == 2
    assert webhook_tasks() == [] and webhook_ping(webhook=hook)


def test_sync_and_reruns_never_wait_for_a_receiver_that_hangs(django_capture_on_commit_callbacks):
    with receiving(hang=True) as receiver, synced("leapwork", pace=1.0) as (server, orchestrator):
        make_webhook(receiver.url)
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            request, _ = rerun_sent(
                user=make_user("ana", rerunner=True),
                idempotency_key="no-wait",
                data=RerunInput(scope="failed"),
                source=failed_run(orchestrator),
            )
            step_clock(server, 3600)
            assert orchestrator_sync(orchestrator=orchestrator).ok
        elapsed = time.monotonic() - started
        assert receiver.received == []

    assert request.state == "accepted"
    deliveries = list(WebhookDelivery.objects.all())
    assert {d.event for d in deliveries} >= {"rerun.finished"}
    assert all(d.state == "pending" and d.attempts == 0 for d in deliveries)
    # Each waits for the webhooks worker, as a task of its own.
    assert len(webhook_tasks()) == len(deliveries)
    # The receiver holds whatever it is sent for 30 s: nobody waited for it.
    assert elapsed < 25
