"""Reruns: record a rerun, send it, settle what the orchestrator answered.

The plan (runs.services.rerun_plan) is made once, before anything is written. The
RerunRequest is written (pending) before the orchestrator is called, and no database
transaction is open during the call: record, call, then save. A repeated idempotency key
returns the existing request and sends nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from runs.models import RerunRequest, RerunState, Run, Schedule, Trigger
from runs.orchestrators.base import (
    CallResult,
    OrchestratorClient,
    OrchestratorError,
    ProtocolError,
    RerunOutcome,
    Scope,
    Unavailable,
)
from runs.services import agent_counts, attempts
from runs.services.polling import poll_cycle_ensure
from runs.services.rerun_plan import (
    PlanChanged,
    RerunInput,
    RerunInvalid,
    RerunPlan,
    rerun_capabilities,
    rerun_plan,
)
from runs.services.revision import revision_bump
from runs.services.session import orchestrator_session
from runs.services.sync import run_refresh

logger = logging.getLogger(__name__)

PERMISSION = "runs.add_rerunrequest"

__all__ = [
    "PERMISSION",
    "PlanChanged",
    "RerunInput",
    "RerunInvalid",
    "RerunPlan",
    "Scope",
    "rerun_capabilities",
    "rerun_plan",
    "rerun_request_find",
    "rerun_start",
]


def rerun_start(
    *,
    user: AbstractBaseUser | AnonymousUser,
    idempotency_key: str,
    data: RerunInput,
    source: Run | None = None,
    schedule: Schedule | None = None,
    transport: httpx.BaseTransport | None = None,
    previewed_digest: str | None = None,
) -> tuple[RerunRequest, bool]:
    """Record, send and settle a rerun or run-now; return (request, sent now?).

    A key seen before returns its request untouched: nothing is sent twice. With
    `previewed_digest` (the forms always give it), inputs that plan anything else than what
    was previewed raise PlanChanged and send nothing.
    """
    if not user.has_perm(PERMISSION):
        raise PermissionDenied("Rerunning needs the permission runs.add_rerunrequest.")
    existing = rerun_request_find(idempotency_key=idempotency_key)
    if existing is not None:
        return existing, False
    target = source if source is not None else schedule
    assert target is not None
    orchestrator = target.orchestrator
    plan = rerun_plan(source=source, schedule=schedule, data=data)  # once: previewed == sent
    if previewed_digest is not None and previewed_digest != plan.digest:
        raise PlanChanged(plan)
    try:
        with transaction.atomic():
            request = RerunRequest.objects.create(
                orchestrator=orchestrator,
                source_run=source,
                schedule=schedule,
                requested_by=user if user.is_authenticated else None,
                scope=plan.scope,
                options=plan.options,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        # Only a concurrent submission of the same key is a duplicate; anything else the
        # database refused is not one, and is not hidden as one.
        existing = rerun_request_find(idempotency_key=idempotency_key)
        if existing is None:
            raise
        return existing, False
    with orchestrator_session(orchestrator, transport=transport) as client:
        previous = None
        if source is not None and client.capabilities.reruns_in_place:
            previous = _freshen(source, client)
        outcome = _send(client, plan, data, source=source, schedule=schedule)
        _settle(
            request, outcome, plan, user=user, source=source, schedule=schedule, previous=previous
        )
        _fetch_new_runs(request, client)
    request.refresh_from_db()
    if request.runs.exists():
        poll_cycle_ensure()
    return request, True


def _freshen(source: Run, client: OrchestratorClient) -> Run:
    """Conductor reruns overwrite the execution: store its latest state first, as history.

    Returns the attempt the rerun will follow.
    """
    try:
        return run_refresh(run=source, client=client)
    except OrchestratorError as exc:
        logger.info("could not refresh %s before its rerun: %s", source, exc)
    latest = attempts.attempts_latest(source.orchestrator, [source.external_id])
    return latest.get(source.external_id) or source


def _send(
    client: OrchestratorClient,
    plan: RerunPlan,
    data: RerunInput,
    *,
    source: Run | None,
    schedule: Schedule | None,
) -> RerunOutcome:
    try:
        if schedule is not None:
            run_id = client.run_now(
                schedule.external_id,
                variables=dict(plan.variables) or None,
                build=data.build,
                environment=data.environment,
            )
            return RerunOutcome(calls=(CallResult(target=schedule.external_id, run_id=run_id),))
        assert source is not None and plan.spec is not None
        schedule_id = source.schedule.external_id if source.schedule else ""
        return client.rerun(source.external_id, plan.spec, schedule_id=schedule_id)
    except OrchestratorError as exc:
        target = schedule.external_id if schedule else source.external_id if source else ""
        return RerunOutcome(calls=(CallResult(target=target, error=exc),))


def _outcome_unknown(error: OrchestratorError | None) -> bool:
    """The call may have started something: it may have reached the orchestrator before the
    connection failed or timed out, or the orchestrator said yes in a form Runboard could not
    read (an unreadable success is not a refusal)."""
    if isinstance(error, Unavailable):
        return error.outcome_unknown
    return isinstance(error, ProtocolError)


def _state(outcome: RerunOutcome) -> str:
    if not outcome.errors:
        return RerunState.ACCEPTED
    if outcome.run_ids:
        return RerunState.PARTIAL
    if any(_outcome_unknown(c.error) for c in outcome.errors):
        return RerunState.UNKNOWN
    return RerunState.FAILED


def _message(state: str, outcome: RerunOutcome) -> str:
    refused = "; ".join(
        f"{c.target}: {c.error}" for c in outcome.errors if not _outcome_unknown(c.error)
    )
    unknown = "; ".join(
        f"{c.target}: {c.error}" for c in outcome.errors if _outcome_unknown(c.error)
    )
    if state == RerunState.ACCEPTED:
        count = len(outcome.run_ids)
        return f"The orchestrator accepted it: {count} new run{'s' if count != 1 else ''}."
    if state == RerunState.PARTIAL:
        parts = ["Only part of it was accepted."]
        if refused:
            parts.append(f"These calls were refused: {refused}.")
        if unknown:
            parts.append(
                f"Whether these started is unknown: {unknown}. Check the orchestrator's own "
                "history before trying them again."
            )
        return " ".join(parts)
    if state == RerunState.UNKNOWN:
        return (
            "The orchestrator did not answer in time, or answered in a way Runboard could not "
            "read, so whether it started anything is unknown. Check its own history before "
            f"trying again. ({unknown})"
        )
    return f"The orchestrator refused it; nothing ran. {refused}"


def _settle(
    request: RerunRequest,
    outcome: RerunOutcome,
    plan: RerunPlan,
    *,
    user: AbstractBaseUser | AnonymousUser,
    source: Run | None,
    schedule: Schedule | None,
    previous: Run | None,
) -> None:
    state = _state(outcome)
    response = {
        "calls": [
            {
                "target": c.target,
                "run_id": c.run_id,
                "error": str(c.error) if c.error else "",
                "status_code": c.error.status_code if c.error else None,
            }
            for c in outcome.calls
        ]
    }
    triggered_by = user if user.is_authenticated else None
    with transaction.atomic():
        made = [
            _new_run(
                run_id,
                request,
                plan,
                source=source,
                schedule=schedule,
                user=triggered_by,
                previous=previous,
            )[1]
            for run_id in dict.fromkeys(outcome.run_ids)
        ]
        agent_counts.orchestrator_runs_added(request.orchestrator_id, sum(made))
        RerunRequest.objects.filter(pk=request.pk).update(
            state=state,
            response=response,
            message=_message(state, outcome),
            completed_at=timezone.now(),
        )
        revision_bump()


def _new_run(
    external_id: str,
    request: RerunRequest,
    plan: RerunPlan,
    *,
    source: Run | None,
    schedule: Schedule | None,
    user: Any,
    previous: Run | None,
) -> tuple[Run, bool]:
    """The run a rerun made, shown at once, and whether this made it (sync may have found it
    first); sync fills it in as it progresses."""
    orchestrator = request.orchestrator
    fields: dict[str, Any] = {
        "rerun_request": request,
        "triggered_by": user,
        "trigger": Trigger.MANUAL if schedule is not None else Trigger.RERUN,
        "variables": dict(plan.variables),
    }
    if previous is not None and previous.external_id == external_id:
        # Reran in place: the attempt it followed stays frozen, a new one follows.
        spec = plan.spec
        fields["variables"] = (
            dict(spec.workflow_input) if spec and spec.workflow_input else previous.variables
        )
        fields.update(rerun_of=previous, schedule=previous.schedule)
        return attempts.attempt_follow(previous, external_id=external_id, fields=fields)
    # A rerun's runs stay under their source's schedule (Leapwork's temporary schedules are
    # the vendor's business: sync keeps them in `vendor_schedule`).
    fields["schedule"] = schedule if schedule is not None else source.schedule if source else None
    return Run.objects.update_or_create(
        orchestrator=orchestrator,
        external_id=external_id,
        attempt=1,
        defaults={**fields, "rerun_of": source},
        create_defaults={**fields, "rerun_of": source, "status": "queued"},
    )


def _fetch_new_runs(request: RerunRequest, client: OrchestratorClient) -> None:
    """Read each new run once right away, so its page opens with cases and agents."""
    for run in Run.objects.filter(rerun_request=request).select_related("orchestrator"):
        try:
            run_refresh(run=run, client=client)
        except OrchestratorError as exc:
            logger.info("new run %s not readable yet: %s", run.external_id, exc)


def rerun_request_find(*, idempotency_key: str) -> RerunRequest | None:
    """The request sent before with this key, if any: a key is sent once."""
    return RerunRequest.objects.filter(idempotency_key=idempotency_key).first()
