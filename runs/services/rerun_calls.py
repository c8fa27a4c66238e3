"""A rerun request's calls: recorded before they are sent, settled one by one as they answer,
and the request settled from them.

Every outcome is classified honestly: `refused` (the orchestrator said no: nothing ran),
`unknown` (a timeout, a lost connection, an unreadable success, a worker that died with the
call in flight: something may have started), `accepted` (with the run it started, written at
once). An unknown call is never sent again; reconciliation (runs.services.rerun_reconcile)
asks the orchestrator what it started.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from runs.models import (
    RerunCall,
    RerunCallState,
    RerunRequest,
    RerunState,
    Run,
    Trigger,
)
from runs.orchestrators.base import (
    OrchestratorError,
    PlannedCall,
    ProtocolError,
    Unavailable,
)
from runs.services import agent_counts, attempts, notifications
from runs.services.revision import revision_bump

OPEN = (RerunState.PENDING, RerunState.SENDING)


def calls_plan(
    request: RerunRequest, planned: Sequence[PlannedCall], targets: Sequence[str]
) -> list[RerunCall]:
    """The call rows of a new request, all waiting (a run-now is one call without a method)."""
    return [
        RerunCall(
            request=request,
            index=index,
            target=target[:300],
            method=call.method,
            path=call.path,
            params=dict(call.params),
            body=call.body,
        )
        for index, (call, target) in enumerate(zip(planned, targets, strict=True))
    ]


def call_planned(call: RerunCall) -> PlannedCall:
    return PlannedCall(call.method, call.path, call.params, call.body)


def outcome_unknown(error: OrchestratorError) -> bool:
    """The call may have started something: it may have reached the orchestrator before the
    connection failed or timed out, or the orchestrator said yes in a form Runboard could not
    read (an unreadable success is not a refusal)."""
    if isinstance(error, Unavailable):
        return error.outcome_unknown
    return isinstance(error, ProtocolError)


def call_failed(call: RerunCall, error: OrchestratorError) -> None:
    state = RerunCallState.UNKNOWN if outcome_unknown(error) else RerunCallState.REFUSED
    _call_update(
        call,
        state=state,
        error=str(error),
        status_code=error.status_code,
        answered_at=timezone.now(),
    )


def call_accept(
    call: RerunCall,
    run_id: str,
    *,
    previous: Run | None,
    reconciled_at: datetime | None = None,
) -> Run:
    """The call started run `run_id`: record it and the run, at once and together."""
    request = call.request
    with transaction.atomic():
        run, made = _new_run(run_id, request, previous=previous, since=call.sent_at)
        agent_counts.orchestrator_runs_added(request.orchestrator_id, int(made))
        fields: dict[str, Any] = {"state": RerunCallState.ACCEPTED, "run_external_id": run_id}
        if reconciled_at is None:
            fields.update(answered_at=timezone.now(), error="", status_code=None)
        else:
            fields["reconciled_at"] = reconciled_at
        _call_update(call, **fields)
        revision_bump()
    return run


def _call_update(call: RerunCall, **fields: Any) -> None:
    RerunCall.objects.filter(pk=call.pk).update(**fields)
    for name, value in fields.items():
        setattr(call, name, value)


def request_settle(request: RerunRequest, *, token: str | None = None) -> bool:
    """Settle the request from its calls; with `token`, only while that lease holds it.
    True if settled."""
    calls = list(request.calls.order_by("index"))
    state = _state(calls)
    held = RerunRequest.objects.filter(pk=request.pk)
    if token is not None:
        held = held.filter(lease_token=token)
    with transaction.atomic():
        settled = held.update(
            state=state,
            response={"calls": [_answer(c) for c in calls]},
            message=_message(state, calls),
            completed_at=request.completed_at or timezone.now(),
            lease_token="",
            lease_renewed_at=None,
        )
        if settled:
            revision_bump()
            # Refused, or its runs over already: rerun.finished (rows only; the worker sends).
            notifications.rerun_finished_notify(request_ids=[request.pk])
    request.refresh_from_db()
    return bool(settled)


def _answer(call: RerunCall) -> dict[str, Any]:
    return {
        "target": call.target,
        "state": call.state,
        "run_id": call.run_external_id,
        "error": call.error,
        "status_code": call.status_code,
    }


def _state(calls: Sequence[RerunCall]) -> str:
    accepted = [c for c in calls if c.state == RerunCallState.ACCEPTED]
    if accepted and len(accepted) == len(calls):
        return RerunState.ACCEPTED
    if accepted:
        return RerunState.PARTIAL
    if any(c.state == RerunCallState.UNKNOWN for c in calls):
        return RerunState.UNKNOWN
    return RerunState.FAILED


def _listed(calls: Sequence[RerunCall], state: str) -> str:
    return "; ".join(f"{c.target}: {c.error}" for c in calls if c.state == state)


def _message(state: str, calls: Sequence[RerunCall]) -> str:
    refused = _listed(calls, RerunCallState.REFUSED)
    unknown = _listed(calls, RerunCallState.UNKNOWN)
    not_sent = _listed(calls, RerunCallState.NOT_SENT)
    found = sum(1 for c in calls if c.reconciled_at)
    if state == RerunState.ACCEPTED:
        count = len({c.run_external_id for c in calls})
        text = f"The orchestrator accepted it: {count} new run{'s' if count != 1 else ''}."
        if found:
            text += f" {found} of them found on the orchestrator after their answer was lost."
        return text
    not_sent_part = f"Not sent, because Runboard failed while sending: {not_sent}."
    if state == RerunState.UNKNOWN:
        text = (
            "The orchestrator did not answer in time, or answered in a way Runboard could not "
            "read, so whether it started anything is unknown. Runboard looks for what it "
            "started at every sync; check again, or look at the orchestrator's own history, "
            f"before sending it again. ({unknown})"
        )
        return f"{text} {not_sent_part}" if not_sent else text
    parts = ["Only part of it was accepted."] if state == RerunState.PARTIAL else []
    if refused:
        if state == RerunState.FAILED:
            parts.append("The orchestrator refused it; nothing ran.")
        parts.append(f"Refused: {refused}.")
    if unknown:
        parts.append(
            f"Whether these started is unknown: {unknown}. Runboard looks for them at every "
            "sync; check again before sending them again."
        )
    if not_sent:
        parts.append(not_sent_part)
    return " ".join(parts)


def _new_run(
    external_id: str, request: RerunRequest, *, previous: Run | None, since: datetime | None
) -> tuple[Run, bool]:
    """The run a call started, shown at once, and whether this made it (sync may have found it
    first); sync fills it in as it progresses."""
    options = request.options
    user = request.requested_by
    fields: dict[str, Any] = {
        "rerun_request": request,
        "triggered_by": user,
        "trigger": Trigger.MANUAL if request.schedule_id else Trigger.RERUN,
        "variables": dict(
            options.get("variables")
            or options.get("workflow_input")
            or options.get("task_input")
            or {}
        ),
    }
    if previous is not None and previous.external_id == external_id:
        # Reran in place: the attempt it followed stays frozen, a new one follows, unless sync
        # saw the rerun first and made that attempt already.
        if previous.rerun_request_id is None and since and previous.started_at >= since:
            Run.objects.filter(pk=previous.pk).update(rerun_request=request, triggered_by=user)
            return previous, False
        fields["variables"] = dict(options.get("workflow_input") or previous.variables)
        fields.update(rerun_of=previous, schedule=previous.schedule)
        return attempts.attempt_follow(previous, external_id=external_id, fields=fields)
    source = request.source_run
    # A rerun's runs stay under their source's schedule (Leapwork's temporary schedules are
    # the vendor's business: sync keeps them in `vendor_schedule`).
    fields["schedule"] = request.schedule if request.schedule_id else source.schedule
    return Run.objects.update_or_create(
        orchestrator=request.orchestrator,
        external_id=external_id,
        attempt=1,
        defaults={**fields, "rerun_of": source},
        create_defaults={**fields, "rerun_of": source, "status": "queued"},
    )
