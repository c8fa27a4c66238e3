"""Reruns: plan a rerun (or run-now), record it with its calls, and hand it to the worker.

The plan (runs.services.rerun_plan) is made once, before anything is written: the calls
recorded are exactly the ones previewed. The RerunRequest and its calls are written (pending)
with the task that sends them, in one transaction; the rerun worker sends them call by call
(runs.services.rerun_delivery), so no web request waits on an orchestrator. A repeated
idempotency key returns the existing request and records and sends nothing; through the
API a key also binds the body it was first sent with (`body_digest`), so the same key with
another body is refused (KeyReused) rather than answered with a request it did not ask for.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from runs.models import RerunBatch, RerunCall, RerunRequest, Run, Schedule
from runs.orchestrators.base import PlannedCall, Scope
from runs.services.rerun_calls import calls_plan
from runs.services.rerun_delivery import rerun_enqueue
from runs.services.rerun_plan import (
    PlanChanged,
    RerunInput,
    RerunInvalid,
    RerunPlan,
    rerun_capabilities,
    rerun_plan,
)
from runs.services.session import orchestrator_client_class

PERMISSION = "runs.add_rerunrequest"

__all__ = [
    "PERMISSION",
    "KeyReused",
    "PlanChanged",
    "RerunInput",
    "RerunInvalid",
    "RerunPlan",
    "Scope",
    "rerun_call_targets",
    "rerun_capabilities",
    "rerun_plan",
    "rerun_request_find",
    "rerun_start",
]


class KeyReused(Exception):
    """An idempotency key sent before with another body: nothing was sent."""

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used with another body, so nothing was sent. "
            "Use a new key for a new request."
        )


def rerun_start(
    *,
    user: AbstractBaseUser | AnonymousUser,
    idempotency_key: str,
    data: RerunInput,
    source: Run | None = None,
    schedule: Schedule | None = None,
    previewed_digest: str | None = None,
    batch: RerunBatch | None = None,
    body_digest: str = "",
) -> tuple[RerunRequest, bool]:
    """Record a rerun or run-now (one of `batch`'s, if given) and enqueue its sending;
    return (request, recorded now?).

    A key seen before returns its request untouched: nothing is sent twice. With
    `previewed_digest` (the forms always give it), inputs that plan anything else than what
    was previewed raise PlanChanged and send nothing. With `body_digest` (the API's), a key
    seen before with another body raises KeyReused.
    """
    if not user.has_perm(PERMISSION):
        raise PermissionDenied("Rerunning needs the permission runs.add_rerunrequest.")
    existing = rerun_request_find(idempotency_key=idempotency_key, body_digest=body_digest)
    if existing is not None:
        return existing, False
    target = source if source is not None else schedule
    assert target is not None
    orchestrator = target.orchestrator
    plan = rerun_plan(source=source, schedule=schedule, data=data)  # once: previewed == sent
    if previewed_digest is not None and previewed_digest != plan.digest:
        raise PlanChanged(plan)
    planned, targets = _calls(plan, source, schedule)
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
                batch=batch,
                body_digest=body_digest,
            )
            RerunCall.objects.bulk_create(calls_plan(request, planned, targets))
            rerun_enqueue(request)  # the task commits with the request, or neither does
    except IntegrityError:
        # Only a concurrent submission of the same key is a duplicate; anything else the
        # database refused is not one, and is not hidden as one.
        existing = rerun_request_find(idempotency_key=idempotency_key, body_digest=body_digest)
        if existing is None:
            raise
        return existing, False
    return request, True


def _calls(
    plan: RerunPlan, source: Run | None, schedule: Schedule | None
) -> tuple[list[PlannedCall], list[str]]:
    """The calls to record, each with its target in words; a run-now is one call."""
    if schedule is not None:
        return [PlannedCall("", "")], [schedule.external_id]
    assert source is not None
    client_class = orchestrator_client_class(source.orchestrator)
    return list(plan.calls), [client_class.call_target(source.external_id, c) for c in plan.calls]


def rerun_call_targets(
    *, plan: RerunPlan, source: Run | None = None, schedule: Schedule | None = None
) -> list[str]:
    """What each call of `plan` reruns, in words (a preview lists them with the calls)."""
    return _calls(plan, source, schedule)[1]


def rerun_request_find(*, idempotency_key: str, body_digest: str = "") -> RerunRequest | None:
    """The request sent before with this key, if any: a key is sent once. Given the body's
    digest, a request first sent with another body raises KeyReused."""
    found = RerunRequest.objects.filter(idempotency_key=idempotency_key).first()
    if found is not None and body_digest and found.body_digest != body_digest:
        raise KeyReused()
    return found
