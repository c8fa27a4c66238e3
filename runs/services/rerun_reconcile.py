"""Reconciliation: what did a call whose answer was lost start?

An unknown call is never sent again. Runboard asks the orchestrator instead, by what was sent
(the vendor client's `find_started`: the flow, agent, variables and time window on Leapwork,
the workflowId on Conductor, reRunParentId on Testsigma), and links the run it finds to the
call. This happens once when the worker has sent a request, at every periodic sync for the
recent requests of that orchestrator, and when a user presses "check again".
"""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
from django.conf import settings
from django.utils import timezone

from runs.models import Orchestrator, RerunCall, RerunCallState, RerunRequest, RerunState
from runs.orchestrators.base import OrchestratorClient, OrchestratorError
from runs.services import attempts
from runs.services.errors import CheckError
from runs.services.rerun_calls import call_accept, call_planned, request_settle
from runs.services.session import orchestrator_session

logger = logging.getLogger(__name__)

UNSETTLED = (RerunState.UNKNOWN, RerunState.PARTIAL)


def calls_reconcile(request: RerunRequest, client: OrchestratorClient) -> int:
    """Look for the runs this request's unknown calls started; how many were found."""
    unknown = list(request.calls.filter(state=RerunCallState.UNKNOWN).order_by("index"))
    if not unknown:
        return 0
    in_place = client.capabilities.reruns_in_place
    accepted = request.calls.filter(state=RerunCallState.ACCEPTED)
    taken = set(accepted.values_list("run_external_id", flat=True))
    found = 0
    for call in unknown:
        call.request = request
        since = call.sent_at or request.requested_at
        try:
            run_id = _find(request, call, client, since=since)
        except OrchestratorError as exc:
            logger.info("rerun request %s: cannot look for %s: %s", request.pk, call, exc)
            continue
        # Two calls never share a run, except a rerun in place, which reuses the id.
        if not run_id or (run_id in taken and not in_place):
            continue
        previous = _latest_attempt(request) if in_place else None
        call_accept(call, run_id, previous=previous, reconciled_at=timezone.now())
        taken.add(run_id)
        found += 1
    return found


def _find(
    request: RerunRequest, call: RerunCall, client: OrchestratorClient, *, since
) -> str | None:
    if not call.method:  # run now
        assert request.schedule is not None
        # A vendor without a run list finds the schedule's newest run from any run of it.
        known = request.schedule.runs.order_by("-started_at").values_list("external_id", flat=True)
        return client.find_run_now(
            request.schedule.external_id,
            since=since,
            variables=request.options.get("variables") or None,
            known_run_id=known.first() or "",
        )
    assert request.source_run is not None
    return client.find_started(request.source_run.external_id, call_planned(call), since=since)


def _latest_attempt(request: RerunRequest):
    source = request.source_run
    if source is None:
        return None
    latest = attempts.attempts_latest(source.orchestrator, [source.external_id])
    return latest.get(source.external_id) or source


def rerun_check_again(
    request: RerunRequest, *, transport: httpx.BaseTransport | None = None
) -> int:
    """ "Check again": ask the orchestrator now what the unknown calls started; how many runs
    were found (CheckError if the orchestrator cannot be asked). A request still being sent
    is left to its worker."""
    if request.state not in UNSETTLED:
        return 0
    with orchestrator_session(request.orchestrator, transport=transport) as client:
        try:
            client.check()
        except OrchestratorError as exc:
            raise CheckError(str(exc)) from exc
        found = calls_reconcile(request, client)
    if found:
        request_settle(request)
    return found


def reruns_reconcile_open(orchestrator: Orchestrator) -> int:
    """At every periodic sync: look again for what the recent unknown calls of this
    orchestrator started (RUNBOARD_RECONCILE_HOURS back); how many runs were found."""
    window = timezone.now() - timedelta(hours=settings.RUNBOARD_RECONCILE_HOURS)
    requests = list(
        RerunRequest.objects.filter(
            orchestrator=orchestrator,
            state__in=UNSETTLED,
            requested_at__gte=window,
            calls__state=RerunCallState.UNKNOWN,
        )
        .distinct()
        .select_related("orchestrator", "source_run__orchestrator", "schedule")
    )
    if not requests:
        return 0
    found = 0
    with orchestrator_session(orchestrator) as client:
        for request in requests:
            now_found = calls_reconcile(request, client)
            if now_found:
                request_settle(request)
                found += now_found
    return found
