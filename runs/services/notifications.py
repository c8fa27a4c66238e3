"""The events webhooks tell (runs.services.webhooks), noticed where they happen.

- `rerun.finished`: a rerun request is over: settled, with every run it made over (its
  verdict), or settled with no run because the orchestrator refused it. Looked at when the
  request settles (runs.services.rerun_calls) and when sync stores one of its runs finished.
- `schedule.failing`: sync stored a failed run that made its schedule failing, by the
  overview's rule (runs.selectors.schedules_failing: the latest run failed, not only for muted
  causes), where the finished run before it did not fail.
- `failure.new`: sync's upsert of the failure groups made one (a cause never seen anywhere).
- `sync.failing`: an orchestrator's periodic sync failed after it last succeeded.

An orchestrator's first sync imports its history, in which nothing is news: schedule.failing
and failure.new start with its second. Only WebhookDelivery rows are written here, in the
caller's transaction; the worker sends them. Each hook is guarded (a savepoint, an exception
logged): a webhook's trouble never fails the sync or rerun that noticed the event, and nothing
is queried at all unless the batch holds a candidate.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.urls import reverse

from runs.models import (
    ExecutionResult,
    FailureGroup,
    Orchestrator,
    RerunRequest,
    RerunState,
    Run,
    Schedule,
    Webhook,
    WebhookEvent,
)
from runs.selectors import (
    RerunVerdict,
    rerun_request_get_queryset,
    rerun_verdict,
    schedules_failing,
)
from runs.services.webhooks import Notice, absolute_url, webhooks_notify, webhooks_subscribed
from runs.status import IN_PROGRESS, Status

logger = logging.getLogger(__name__)

STILL_OPEN = (RerunState.PENDING, RerunState.SENDING)
FINISHED = [status.value for status in Status if status not in IN_PROGRESS]


@contextlib.contextmanager
def _guarded(event: str) -> Iterator[None]:
    """A savepoint around recording `event`: any failure is logged and rolled back alone."""
    try:
        with transaction.atomic():
            yield
    except Exception:
        logger.exception("webhooks: recording %s failed; carrying on without it", event)


def _run_link(run: Run) -> dict[str, Any]:
    return {
        "id": run.pk,
        "external_id": run.external_id,
        "attempt": run.attempt,
        "status": run.status,
        "url": absolute_url(run.get_absolute_url()),
    }


# rerun.finished ------------------------------------------------------------------------------


def rerun_finished_notify(
    *, request_ids: Collection[int], webhooks: Sequence[Webhook] | None = None
) -> int:
    """Tell of each of these requests that is over now (to `webhooks`, by default the ones
    subscribed); how many deliveries were recorded."""
    if not request_ids:
        return 0
    if webhooks is None:
        webhooks = webhooks_subscribed().get(WebhookEvent.RERUN_FINISHED)
    if not webhooks:
        return 0
    made: list[int] = []
    with _guarded(WebhookEvent.RERUN_FINISHED):
        requests = rerun_request_get_queryset().filter(pk__in=request_ids)
        notices = [n for r in requests.exclude(state__in=STILL_OPEN) if (n := _rerun_notice(r))]
        made = webhooks_notify(
            event=WebhookEvent.RERUN_FINISHED, notices=notices, webhooks=webhooks
        )
    return len(made)


def _rerun_notice(request: RerunRequest) -> Notice | None:
    verdict = rerun_verdict(request)
    if verdict is None and request.state != RerunState.FAILED:
        return None  # outcome unknown: what it started may still be found
    if verdict is not None and not verdict.is_over:
        return None
    runs = list(request.runs.all())
    source = request.source_run
    schedule = request.schedule or (source.schedule if source is not None else None)
    page = reverse("runs:rerun_request", args=[request.pk])
    # The page to open: the one run it made, else the source's (which lists its reruns).
    path = runs[0].get_absolute_url() if len(runs) == 1 else page
    if len(runs) != 1 and source is not None:
        path = source.get_absolute_url()
    what = "Run now" if source is None else "Rerun"
    subject = f"{what} of {schedule.title if schedule else 'a run'} on {request.orchestrator.name}"
    outcome = f"{verdict.status}: {verdict.text}" if verdict else f"nothing ran: {request.message}"
    data = {
        "rerun_request": {
            "id": request.pk,
            "url": absolute_url(page),
            "state": request.state,
            "scope": request.scope,
            "message": request.message,
            "requested_at": request.requested_at.isoformat(),
            "requested_by": getattr(request.requested_by, "username", ""),
        },
        "orchestrator": request.orchestrator.name,
        "source_run": _run_link(source) if source is not None else None,
        "schedule": {"id": schedule.pk, "title": schedule.title} if schedule else None,
        "verdict": _verdict(verdict) if verdict else None,
        "runs": [_run_link(run) for run in runs],
    }
    return Notice(f"rerun:{request.pk}", f"{subject}: {outcome}".strip(), path, data)


def _verdict(verdict: RerunVerdict) -> dict[str, Any]:
    return {
        "status": verdict.status,
        "text": verdict.text,
        "runs": verdict.runs,
        "total": verdict.total,
        "passed": verdict.passed,
        "failing": verdict.failing,
        "other": verdict.other,
    }


# What a sync batch stored ---------------------------------------------------------------------


def runs_stored_notify(
    *,
    orchestrator: Orchestrator,
    runs: Sequence[Run],
    was: Mapping[int, str],
    causes: Mapping[str, int],
) -> None:
    """Tell what a batch of sync changed: `runs` as stored now, `was` their statuses before
    (by pk; runs made by the batch are not in it), `causes` the failure groups it made
    ({fingerprint: pk}). No query unless one of them is a candidate."""
    moved = [run for run in runs if was.get(run.pk) != run.status]
    over = {r.rerun_request_id for r in moved if r.rerun_request_id and r.is_terminal}
    news = orchestrator.last_synced_at is not None  # not the first import of a history
    failed = [
        r
        for r in moved
        if news and r.schedule_id and r.status_enum.is_failure
        if not Status(was.get(r.pk) or Status.QUEUED).is_failure
    ]
    causes = causes if news else {}
    if not (over or failed or causes):
        return
    subscribed = webhooks_subscribed()
    if over and (webhooks := subscribed.get(WebhookEvent.RERUN_FINISHED)):
        rerun_finished_notify(request_ids=over, webhooks=webhooks)
    if failed and (webhooks := subscribed.get(WebhookEvent.SCHEDULE_FAILING)):
        with _guarded(WebhookEvent.SCHEDULE_FAILING):
            notices = [_failing_notice(s, r) for s, r in _started_failing(failed)]
            webhooks_notify(event=WebhookEvent.SCHEDULE_FAILING, notices=notices, webhooks=webhooks)
    if causes and (webhooks := subscribed.get(WebhookEvent.FAILURE_NEW)):
        with _guarded(WebhookEvent.FAILURE_NEW):
            notices = _cause_notices(causes, [run.pk for run in runs])
            webhooks_notify(event=WebhookEvent.FAILURE_NEW, notices=notices, webhooks=webhooks)


def _started_failing(runs: Sequence[Run]) -> list[tuple[Schedule, Run]]:
    """The schedules these failed runs made failing, each with its run: one query."""
    by_pk = {run.pk: run for run in runs}
    before = Run.objects.filter(
        schedule=OuterRef("pk"), status__in=FINISHED, started_at__lt=OuterRef("latest_started_at")
    ).order_by("-started_at", "-id")
    schedules = (
        schedules_failing()
        .filter(pk__in={run.schedule_id for run in runs}, latest_run_id__in=list(by_pk))
        .annotate(previous_status=Subquery(before.values("status")[:1]))
    )
    return [
        (schedule, by_pk[schedule.latest_run_id])
        for schedule in schedules
        if not Status(schedule.previous_status or Status.PASSED).is_failure
    ]


def _failing_notice(schedule: Schedule, run: Run) -> Notice:
    text = (
        f"{schedule.title} on {schedule.orchestrator.name} started failing: run "
        f"#{run.external_id} {run.status}, {run.failed_count} of {run.total_count} failing"
    )
    data = {
        "schedule": {
            "id": schedule.pk,
            "title": schedule.title,
            "url": absolute_url(schedule.get_absolute_url()),
            "previous_status": schedule.previous_status,
        },
        "orchestrator": schedule.orchestrator.name,
        "run": {**_run_link(run), "failed": run.failed_count, "total": run.total_count},
    }
    return Notice(f"schedule:{schedule.pk}:run:{run.pk}", text, run.get_absolute_url(), data)


def _cause_notices(causes: Mapping[str, int], run_pks: Sequence[int]) -> list[Notice]:
    """failure.new for each group the batch made, with a run of the batch it failed in: two
    queries, whatever their number."""
    where = dict(
        ExecutionResult.objects.filter(run__in=run_pks, fingerprint__in=list(causes))
        .order_by("fingerprint", "-run_id")
        .values_list("fingerprint", "run_id")
        .distinct()
    )
    notices = []
    for group in FailureGroup.objects.filter(pk__in=causes.values()).order_by("pk"):
        run_pk = where.get(group.fingerprint)
        data = {
            "failure_group": {
                "id": group.pk,
                "fingerprint": group.fingerprint,
                "version": group.version,
                "normalized": group.normalized,
                "first_seen_at": group.first_seen_at and group.first_seen_at.isoformat(),
                "url": absolute_url(group.get_absolute_url()),
            },
        }
        path = reverse("runs:detail", args=[run_pk]) if run_pk else group.get_absolute_url()
        data["run"] = {"id": run_pk, "url": absolute_url(path)} if run_pk else None
        text = f"A failure never seen before: {group.normalized[:200]}"
        notices.append(Notice(f"failure:{group.fingerprint}", text, path, data))
    return notices


# sync.failing --------------------------------------------------------------------------------


def sync_failing_notify(*, orchestrator: Orchestrator, error: str, since: datetime) -> int:
    """Tell that an orchestrator's periodic sync started failing at `since`."""
    with _guarded(WebhookEvent.SYNC_FAILING):
        notice = Notice(
            key=f"sync:{orchestrator.pk}:{since.isoformat()}",
            text=f"Sync of {orchestrator.name} is failing: {error[:300]}",
            path=reverse("runs:orchestrators"),
            data={
                "orchestrator": {
                    "id": orchestrator.pk,
                    "name": orchestrator.name,
                    "base_url": orchestrator.base_url,
                },
                "error": error,
                "failing_since": since.isoformat(),
            },
        )
        return len(webhooks_notify(event=WebhookEvent.SYNC_FAILING, notices=[notice]))
    return 0
