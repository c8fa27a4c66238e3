"""Outgoing webhooks: an event is recorded as one delivery per subscribed webhook, and the
webhooks worker (a queue of its own, `webhooks`) POSTs it, signed, retrying with backoff.

Whatever records an event never waits for a receiver: the hooks (runs.services.notifications)
only write WebhookDelivery rows, in the transaction of what happened; the HTTP call is the
worker's, one task per attempt. A retry is a new task with `run_after`, so a receiver that is
down never holds the worker through its wait. The claim pushes `next_attempt_at` past the
length of a call, so two tasks for one delivery never send it at once; the watch chain enqueues
again a delivery whose task was lost (`webhooks_recover`).

A receiver checks `X-Runboard-Signature: sha256=<hex>`, the HMAC-SHA256 of the exact body
bytes keyed with the webhook's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from runs.models import Webhook, WebhookDelivery, WebhookDeliveryState, WebhookFormat
from runs.orchestrators.http import base_url_problem
from runs.services.queue import task_enqueue

logger = logging.getLogger(__name__)

WEBHOOK_TASK = "webhook_send"  # the task's name in runs.services.queue (runs.tasks registers it)
# Seconds before the 2nd, 3rd, 4th and 5th attempt; the 5th failure gives up.
RETRY_DELAYS = (10, 30, 90, 270)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A claimed delivery is left to its worker this long beyond the timeout of one call.
CLAIM_MARGIN = timedelta(seconds=10)
# A task may start a little before its run_after by another machine's clock.
EARLY = timedelta(seconds=1)
# A pending delivery this far past its time lost its task: the watch chain enqueues it again.
RECOVER_AFTER = timedelta(minutes=5)
ERROR_CHARS = 500
PING = "ping"  # the admin's test event, outside the events a webhook subscribes to


@dataclass(frozen=True)
class Notice:
    """One event about one subject, as every webhook subscribed to the event is told it."""

    key: str  # the subject: each webhook is told about it once ("rerun:12")
    text: str  # one line for a chat
    path: str  # the Runboard page it is about ("/runs/12/")
    data: dict[str, Any]


def absolute_url(path: str) -> str:
    """A Runboard path as a link a receiver can open (RUNBOARD_BASE_URL)."""
    return settings.RUNBOARD_BASE_URL.rstrip("/") + path


def webhook_url_problem(url: str) -> str:
    """Why a webhook cannot be sent to `url`, or "" (the check the connect form makes)."""
    return base_url_problem(url)


def webhooks_subscribed() -> dict[str, list[Webhook]]:
    """The active webhooks by the events they take, in one query."""
    subscribed: dict[str, list[Webhook]] = {}
    for webhook in Webhook.objects.filter(active=True):
        for event in webhook.events or ():
            subscribed.setdefault(event, []).append(webhook)
    return subscribed


def webhook_notify(
    *, event: str, key: str, text: str, path: str, data: dict[str, Any]
) -> list[int]:
    """Tell the webhooks subscribed to `event` about one subject (see webhooks_notify)."""
    return webhooks_notify(event=event, notices=[Notice(key, text, path, data)])


def webhooks_notify(
    *, event: str, notices: Sequence[Notice], webhooks: Sequence[Webhook] | None = None
) -> list[int]:
    """Record each notice for each webhook (by default the active ones subscribed to `event`),
    once per webhook and key, and hand the new deliveries to the webhooks worker when the
    transaction commits; their ids. Two queries, whatever the number of rows."""
    if webhooks is None:
        webhooks = webhooks_subscribed().get(event, [])
    if not webhooks or not notices:
        return []
    now = timezone.now()
    rows = [
        WebhookDelivery(
            webhook=webhook,
            event=event,
            key=notice.key[:200],
            payload=_payload(notice),
            created_at=now,
            next_attempt_at=now,
        )
        for webhook in webhooks
        for notice in notices
    ]
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    # ignore_conflicts sets no primary keys: the rows made now are those stamped with `now`.
    made = list(
        WebhookDelivery.objects.filter(
            webhook__in=webhooks, key__in={row.key for row in rows}, created_at=now
        ).values_list("pk", flat=True)
    )
    for pk in made:
        transaction.on_commit(partial(_enqueue, pk), robust=True)
    return made


def _payload(notice: Notice) -> dict[str, Any]:
    return {"text": notice.text, "url": absolute_url(notice.path), "data": notice.data}


def _enqueue(delivery_id: int, *, at: datetime | None = None) -> None:
    task_enqueue(WEBHOOK_TASK, delivery_id, run_after=at)


def webhook_ping(*, webhook: Webhook) -> int:
    """Send `webhook` a test event now (the admin's action); the delivery's id."""
    notice = Notice(
        key=f"{PING}:{uuid.uuid4().hex}",
        text=f"Runboard test event for the webhook {webhook.name}.",
        path="/",
        data={"webhook": webhook.name},
    )
    [made] = webhooks_notify(event=PING, notices=[notice], webhooks=[webhook])
    return made


# The body --------------------------------------------------------------------------------------


def webhook_body(delivery: WebhookDelivery) -> bytes:
    """The JSON body a delivery is POSTed with, in its webhook's format."""
    payload = delivery.payload
    if delivery.webhook.body_format == WebhookFormat.SLACK:
        # An incoming-webhook message: text only, with the link bare so any chat shows it.
        body: dict[str, Any] = {"text": f"{_slack_escape(payload['text'])} {payload['url']}"}
    else:
        body = {
            "event": delivery.event,
            "delivery": delivery.pk,
            "sent_at": timezone.now().isoformat(),
            "url": payload["url"],
            "text": payload["text"],
            "data": payload["data"],
        }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def _slack_escape(text: str) -> str:
    # Slack's rule for message text: these three are control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_signature(secret: str, body: bytes) -> str:
    """The X-Runboard-Signature value: HMAC-SHA256 of the body keyed with the secret."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_headers(delivery: WebhookDelivery, body: bytes) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Runboard-Webhooks/1",
        "X-Runboard-Event": delivery.event,
        "X-Runboard-Delivery": str(delivery.pk),
    }
    if delivery.webhook.secret:
        headers["X-Runboard-Signature"] = webhook_signature(delivery.webhook.secret, body)
    return headers


# Delivering ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: the receiver's status, or why there was none."""

    status_code: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.status_code is not None and 200 <= self.status_code < 300


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """One attempt at a delivery that is due and no other worker holds: POST it, then record
    how it went, enqueueing the next attempt after a failure. None if it was not due."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    if not delivery.webhook.active:
        return _record(delivery, Outcome(error="The webhook was turned off."), final=True)
    body = webhook_body(delivery)
    # No transaction is open here: the claim is committed, the outcome saved after the call.
    outcome = webhook_post(delivery.webhook.url, body, webhook_headers(delivery, body))
    return _record(delivery, outcome)


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    hold = now + timedelta(seconds=settings.RUNBOARD_WEBHOOK_TIMEOUT) + CLAIM_MARGIN
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, state=WebhookDeliveryState.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + EARLY))
        .update(next_attempt_at=hold)
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)


def webhook_post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST once, within RUNBOARD_WEBHOOK_TIMEOUT seconds (each phase, and the answer's body
    read against one deadline); redirects are not followed."""
    seconds = settings.RUNBOARD_WEBHOOK_TIMEOUT
    deadline = time.monotonic() + seconds
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(seconds), follow_redirects=False) as client,
            client.stream("POST", url, content=body, headers=headers) as response,
        ):
            text = _read_some(response, deadline)
    except (httpx.TimeoutException, TimeoutError):
        return Outcome(error=f"No answer within {seconds:g} s.")
    except httpx.HTTPError as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        return Outcome(error=f"The request cannot be sent: {exc}"[:ERROR_CHARS])
    if 200 <= response.status_code < 300:
        return Outcome(status_code=response.status_code)
    answer = f"HTTP {response.status_code} {response.reason_phrase}: {text.strip()}"
    return Outcome(status_code=response.status_code, error=answer.rstrip(": ")[:ERROR_CHARS])


def _read_some(response: httpx.Response, deadline: float) -> str:
    """The start of the answer's body (for the log), given up at the deadline."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise TimeoutError
        chunks.append(chunk)
        size += len(chunk)
        if size >= ERROR_CHARS:
            break
    return b"".join(chunks)[:ERROR_CHARS].decode("utf-8", "replace")


def _record(delivery: WebhookDelivery, outcome: Outcome, *, final: bool = False) -> WebhookDelivery:
    """Save how the attempt went: delivered, tried again later (a task waits for it), or
    given up after MAX_ATTEMPTS."""
    now = timezone.now()
    attempts = delivery.attempts + 1
    fields: dict[str, Any] = {"attempts": attempts, "status_code": outcome.status_code}
    if outcome.ok:
        fields.update(state=WebhookDeliveryState.DELIVERED, delivered_at=now, last_error="")
        fields["next_attempt_at"] = None
    elif final or attempts >= MAX_ATTEMPTS:
        fields.update(state=WebhookDeliveryState.FAILED, last_error=outcome.error)
        fields["next_attempt_at"] = None
    else:
        later = now + timedelta(seconds=RETRY_DELAYS[attempts - 1])
        fields.update(last_error=outcome.error, next_attempt_at=later)
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        if fields["next_attempt_at"] is not None:
            _enqueue(delivery.pk, at=fields["next_attempt_at"])
    for name, value in fields.items():
        setattr(delivery, name, value)
    if not outcome.ok:
        logger.info("webhook delivery %s, attempt %s: %s", delivery.pk, attempts, outcome.error)
    return delivery


def webhooks_recover() -> int:
    """Enqueue again every pending delivery long past its time (its task was lost with a
    worker, or never enqueued); a second task for one is harmless, the claim decides."""
    now = timezone.now()
    lost = WebhookDelivery.objects.filter(
        state=WebhookDeliveryState.PENDING, next_attempt_at__lt=now - RECOVER_AFTER
    )
    pks = list(lost.values_list("pk", flat=True)[:1000])
    with transaction.atomic():
        # Not overdue again before RECOVER_AFTER: one task per delivery per round at most.
        WebhookDelivery.objects.filter(pk__in=pks).update(next_attempt_at=now)
        for pk in pks:
            _enqueue(pk, at=now)
    return len(pks)
