"""Rerunning a run and running a schedule now, previewed or sent, and the request's state.

A send is the web form's send: the rerun service records the request and hands it to the
rerun worker, and the answer (202) is the request, to poll at GET /reruns/{id} until its
verdict is over. The Idempotency-Key header is the form's hidden key, scoped to the caller:
a repeat answers the first request and sends nothing, whatever happened since.
"""

from __future__ import annotations

import hashlib
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Header, Router
from ninja.params import Path
from ninja.responses import Status

from runs import selectors
from runs.api.auth import require_rerunner, take_write
from runs.api.common import WRITE_ERRORS, get_or_404, responses
from runs.api.errors import Problem
from runs.api.inputs import body_digest, rerun_input, run_now_input
from runs.api.schemas import PlanOut, RerunIn, RerunRequestOut, RunNowIn
from runs.models import RerunRequest, Run, Schedule
from runs.selectors import BIGINT_MAX
from runs.services.reruns import (
    RerunInput,
    RerunInvalid,
    rerun_call_targets,
    rerun_plan,
    rerun_request_find,
    rerun_start,
)

router = Router(tags=["reruns"])

Id = Path(..., ge=1, le=BIGINT_MAX, description="the id Runboard gives it")
KEY_HELP = (
    "Any text up to 200 characters: a repeat with the same key (and body) answers the first "
    "request and sends nothing. Without one, every send is new."
)
IdempotencyKey = Header(None, alias="Idempotency-Key", max_length=200, description=KEY_HELP)
SENT = responses({200: PlanOut, 202: RerunRequestOut}, WRITE_ERRORS)


def scoped_key(user: AbstractBaseUser, header: str | None) -> str:
    """The request's idempotency key: the caller's own (two users' equal keys never meet),
    hashed to fit the column whatever its length."""
    raw = header if header else uuid.uuid4().hex
    return f"api:{user.pk}:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"


def _refuse_busy(run: Run) -> None:
    """409 for a source Runboard knows cannot be rerun now (the orchestrator would refuse, or
    rerun another attempt than the one named); a refusal found only when sending shows in
    the request's state instead."""
    if run.is_frozen:
        detail = "This attempt was rerun in place and is kept as history: rerun its latest attempt."
        raise Problem(409, detail, kind="attempt-superseded")
    if not run.is_terminal:
        detail = f"Run {run.pk} is still {run.status}: rerun it once it is over."
        raise Problem(409, detail, kind="source-running")


def _answer(rerun_request: RerunRequest, response: HttpResponse) -> Status[RerunRequestOut]:
    """202 with the request as it stands, and where to poll it."""
    found = selectors.rerun_request_get(pk=rerun_request.pk)
    calls = selectors.rerun_request_calls(rerun_request=found)
    response["Location"] = reverse("api-v1:rerun_request", kwargs={"id": found.pk})
    return Status(202, RerunRequestOut.of(found, calls))


def _preview_or_send(
    user: AbstractBaseUser,
    response: HttpResponse,
    body: RerunIn | RunNowIn,
    data: RerunInput,
    key: str | None,
    *,
    source: Run | None = None,
    schedule: Schedule | None = None,
) -> Status:
    """The plan (a preview), or the request a send recorded, or the one first sent with
    this key (nothing is sent again)."""
    if body.preview:
        if source is not None:
            _refuse_busy(source)
        plan = rerun_plan(source=source, schedule=schedule, data=data)
        targets = rerun_call_targets(plan=plan, source=source, schedule=schedule)
        return Status(200, PlanOut.of(plan, targets))
    sent_to = source if source is not None else schedule
    digest = body_digest(body, target=f"{type(sent_to).__name__}:{sent_to.pk}")
    scoped = scoped_key(user, key)
    existing = rerun_request_find(idempotency_key=scoped, body_digest=digest)
    if existing is None:
        if source is not None:
            _refuse_busy(source)
        existing, _recorded = rerun_start(
            user=user,
            idempotency_key=scoped,
            data=data,
            source=source,
            schedule=schedule,
            previewed_digest=body.digest,
            body_digest=digest,
        )
    return _answer(existing, response)


@router.post("/runs/{id}/rerun", response=SENT)
def rerun(
    request: HttpRequest,
    response: HttpResponse,
    body: RerunIn,
    id: int = Id,
    idempotency_key: str | None = IdempotencyKey,
) -> Status:
    """Rerun a run (failed only by default): `preview: true` answers the plan (200) and sends
    nothing; otherwise the request is recorded and sent in the background (202)."""
    user = require_rerunner(request)
    take_write(request)
    source = get_or_404(selectors.run_get_for_rerun, id, "run")
    data = rerun_input(body)
    return _preview_or_send(user, response, body, data, idempotency_key, source=source)


@router.post("/schedules/{id}/run-now", response=SENT)
def run_now(
    request: HttpRequest,
    response: HttpResponse,
    body: RunNowIn,
    id: int = Id,
    idempotency_key: str | None = IdempotencyKey,
) -> Status:
    """Start a schedule now, previewed (200) or sent (202) as a rerun is."""
    user = require_rerunner(request)
    take_write(request)
    schedule = get_or_404(selectors.schedule_get, id, "schedule")
    if schedule.is_temporary:
        detail = "This schedule was made for one run (Run Flow by Id): it cannot be run now."
        raise RerunInvalid({"schedule": detail})
    data = run_now_input(body, schedule)
    return _preview_or_send(user, response, body, data, idempotency_key, schedule=schedule)


@router.get("/reruns/{id}", response=responses({200: RerunRequestOut}))
def rerun_request(request: HttpRequest, id: int = Id) -> RerunRequestOut:
    """A rerun's state (did the orchestrator take it), its calls, its runs and their verdict:
    poll until `verdict.is_over`."""
    found = get_or_404(selectors.rerun_request_get, id, "rerun request")
    return RerunRequestOut.of(found, selectors.rerun_request_calls(rerun_request=found))
