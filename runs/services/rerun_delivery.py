"""Sending a recorded rerun, call by call, in the task worker (its own queue, `reruns`).

runs.services.reruns.rerun_start records the request and its calls (all waiting) and
enqueues the `rerun_send` task, which runs `rerun_deliver`:

1. The worker takes the request's lease: a token and a time, renewed before every call (a
   heartbeat). A request whose lease is alive belongs to another worker and is left alone, so
   a long send is never stolen; one whose lease ran out (its worker died) is taken over.
2. A call a dead worker left `sending` was in flight at the crash: it becomes unknown (never
   sent again) and is reconciled.
3. The waiting calls go a window at a time, side by side (`RUNBOARD_RERUN_CONCURRENCY`; a
   rerun in place, one at a time). A window's calls are marked `sending` (committed) before
   any of them goes, and settled in their order as they answer, with the runs they started
   written and then read at once, side by side too (so a Leapwork Run Flow by Id run is kept
   even when its temporary schedule is deleted). Only the HTTP calls leave the worker's thread;
   every row is written from it.
4. Unknown calls are reconciled once, then the request is settled from its calls.

The watch chain (runs.services.polling) enqueues again every request whose worker died
(`reruns_recover`), so none is left pending.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from itertools import batched

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from runs.models import RerunCall, RerunCallState, RerunRequest, RerunState, Run
from runs.orchestrators.base import OrchestratorClient, OrchestratorError
from runs.services import attempts
from runs.services.polling import poll_cycle_ensure, watch_cycle_ensure
from runs.services.queue import task_enqueue
from runs.services.rerun_calls import (
    OPEN,
    call_accept,
    call_failed,
    call_planned,
    request_settle,
)
from runs.services.rerun_reconcile import calls_reconcile
from runs.services.session import orchestrator_session
from runs.services.sync import FanOut, run_refresh, runs_read, side_by_side

logger = logging.getLogger(__name__)

RERUN_TASK = "rerun_send"  # the task's name in runs.services.queue (runs.tasks registers it)


def rerun_enqueue(request: RerunRequest) -> None:
    """Hand the request to the rerun worker (inside the transaction that records it), with
    the watch chain running to send it again should that worker die."""
    task_enqueue(RERUN_TASK, request.pk)
    watch_cycle_ensure()


def rerun_deliver(
    request_id: int, *, transport: httpx.BaseTransport | None = None
) -> RerunRequest | None:
    """Send what is left of a request, call by call, and settle it; None if another worker
    holds it or it is settled already."""
    token = _claim(request_id)
    if token is None:
        return None
    request = RerunRequest.objects.select_related(
        "orchestrator", "source_run__orchestrator", "source_run__schedule", "schedule"
    ).get(pk=request_id)
    try:
        with orchestrator_session(request.orchestrator, transport=transport) as client:
            _send_waiting(request, token, client)
            calls_reconcile(request, client)
    except Exception as exc:
        # Whatever broke, the request is settled: what was not sent is said so, never pending.
        _abandon(request, exc)
        request_settle(request, token=token)
        raise
    if not request_settle(request, token=token):
        logger.warning("rerun request %s: lease lost before settling", request.pk)
        return request
    if request.runs.exists():
        poll_cycle_ensure()
    return request


def _send_waiting(request: RerunRequest, token: str, client: OrchestratorClient) -> None:
    in_flight = request.calls.filter(state=RerunCallState.SENDING)
    lost = in_flight.update(
        state=RerunCallState.UNKNOWN,
        error="Runboard stopped while this call was in flight; it is not sent again.",
    )
    if lost:
        logger.warning("rerun request %s: %d call(s) were in flight at a crash", request.pk, lost)
    waiting = list(request.calls.filter(state=RerunCallState.PLANNED).order_by("index"))
    previous = rerun_previous(request, client, fresh=bool(waiting))
    # A rerun in place reruns one run: its calls (one, today) never go side by side.
    width = 1 if client.capabilities.reruns_in_place else settings.RUNBOARD_RERUN_CONCURRENCY
    with side_by_side(min(width, len(waiting))) as fan_out:
        for window in batched(waiting, width):
            for call in window:
                call.request = request
            if not _begin(request, window, token):
                logger.warning("rerun request %s: lease lost; another worker goes on", request.pk)
                return
            runs = []
            for call, answer in zip(
                window, fan_out(partial(_sent, request, client), window), strict=True
            ):
                if isinstance(answer, OrchestratorError):
                    call_failed(call, answer)
                else:
                    runs.append(call_accept(call, answer, previous=previous))
            _renew(request, token)
            _read_now(request, runs, client, fan_out)


def rerun_previous(request: RerunRequest, client: OrchestratorClient, *, fresh: bool) -> Run | None:
    """The attempt a rerun in place (Conductor) follows; before sending (`fresh`), its latest
    state is stored first, as history, since the rerun overwrites it."""
    source = request.source_run
    if source is None or not client.capabilities.reruns_in_place:
        return None
    if fresh:
        try:
            return run_refresh(run=source, client=client)
        except OrchestratorError as exc:
            logger.info("could not refresh %s before its rerun: %s", source, exc)
    latest = attempts.attempts_latest(source.orchestrator, [source.external_id])
    return latest.get(source.external_id) or source


def _sent(
    request: RerunRequest, client: OrchestratorClient, call: RerunCall
) -> str | OrchestratorError:
    """The id of the run the call started, or the orchestrator's error (in a pool's thread:
    it reads what the request and call hold, never the database)."""
    try:
        if not call.method:  # run now
            options = request.options
            assert request.schedule is not None
            return client.run_now(
                request.schedule.external_id,
                variables=options.get("variables") or None,
                build=options.get("build", ""),
                environment=options.get("environment", ""),
            )
        assert request.source_run is not None
        return client.send_planned(request.source_run.external_id, call_planned(call))
    except OrchestratorError as exc:
        return exc


def _read_now(
    request: RerunRequest, runs: Sequence[Run], client: OrchestratorClient, fan_out: FanOut
) -> None:
    """Read the new runs once right away, so their pages open with cases and agents."""
    if not runs:
        return
    try:
        runs_read(
            orchestrator=request.orchestrator,
            external_ids=[run.external_id for run in runs],
            client=client,
            fan_out=fan_out,
        )
    except OrchestratorError as exc:
        logger.info("rerun request %s: its new runs are not all readable yet: %s", request.pk, exc)


def _abandon(request: RerunRequest, exc: Exception) -> None:
    """Runboard itself failed while sending: the calls not sent are said so, and one it was
    sending may have reached the orchestrator, so its outcome is unknown (never resent)."""
    logger.exception("rerun request %s: sending failed", request.pk)
    error = f"{type(exc).__name__}: {exc}"[:500]
    request.calls.filter(state=RerunCallState.SENDING).update(
        state=RerunCallState.UNKNOWN, error=f"Runboard failed while sending this call ({error})."
    )
    request.calls.filter(state=RerunCallState.PLANNED).update(
        state=RerunCallState.NOT_SENT, error=error
    )


# The lease -----------------------------------------------------------------------------------


def _lease() -> timedelta:
    return timedelta(seconds=settings.RUNBOARD_RERUN_LEASE)


def _claim(request_id: int) -> str | None:
    """Take the request if it is open and no live lease holds it; the new lease's token."""
    now = timezone.now()
    token = uuid.uuid4().hex
    claimed = (
        RerunRequest.objects.filter(pk=request_id, state__in=OPEN)
        .filter(Q(lease_renewed_at__isnull=True) | Q(lease_renewed_at__lt=now - _lease()))
        .update(state=RerunState.SENDING, lease_token=token, lease_renewed_at=now)
    )
    return token if claimed else None


def _renew(request: RerunRequest, token: str) -> bool:
    held = RerunRequest.objects.filter(pk=request.pk, lease_token=token)
    return bool(held.update(lease_renewed_at=timezone.now()))


def _begin(request: RerunRequest, calls: Sequence[RerunCall], token: str) -> bool:
    """Renew the lease and mark the calls in flight, together; False if the lease is lost."""
    now = timezone.now()
    with transaction.atomic():
        if not _renew(request, token):
            return False
        RerunCall.objects.filter(pk__in=[call.pk for call in calls]).update(
            state=RerunCallState.SENDING, sent_at=now
        )
    for call in calls:
        call.state, call.sent_at = RerunCallState.SENDING, now
    return True


def reruns_recover() -> int:
    """Enqueue again every open request no live lease holds and older than a lease (its
    worker died, or its task was lost); a second task for one is harmless, the lease decides."""
    stale = timezone.now() - _lease()
    orphans = RerunRequest.objects.filter(state__in=OPEN, requested_at__lt=stale).filter(
        Q(lease_renewed_at__isnull=True) | Q(lease_renewed_at__lt=stale)
    )
    count = 0
    for request in orphans.only("pk"):
        logger.warning("rerun request %s: its worker died; sending the rest again", request.pk)
        rerun_enqueue(request)
        count += 1
    return count
