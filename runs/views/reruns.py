"""Rerun and run-now: the panels other pages show, preview then send, and a request's page.

A form is previewed first (what will run, and the requests the orchestrator will receive),
then sent carrying the preview's digest; without JavaScript it is plain POST and redirect.
Sending records the request and lands on its page at once: the rerun worker sends it call by
call while the page shows its progress, then its runs.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from runs import selectors
from runs.forms import RerunForm, RunNowForm
from runs.models import RerunRequest, Run, Schedule
from runs.selectors import ResultCounts, RunResults
from runs.services.errors import CheckError
from runs.services.rerun_calls import OPEN
from runs.services.rerun_reconcile import rerun_check_again
from runs.services.reruns import (
    PERMISSION,
    PlanChanged,
    RerunInvalid,
    RerunPlan,
    rerun_plan,
    rerun_request_find,
    rerun_start,
)
from runs.views.common import HtmxHttpRequest, get_or_404


def rerun_panel_context(
    request: HttpRequest,
    run: Run,
    form: RerunForm | None = None,
    *,
    shown: RunResults | None = None,
    counts: ResultCounts | None = None,
    cases_in_table: bool = True,
) -> dict[str, Any]:
    """What the run page needs for its rerun panel: the form (for rerunners) and the audit.

    On the run page the cases are picked with checkboxes on its results table; the form on
    its own page (no table) lists them itself. Either way only the results shown (`shown`,
    else the run's first page) are offered.
    """
    can_rerun = request.user.has_perm(PERMISSION)
    if can_rerun and form is None and not run.is_frozen:
        form = _rerun_form(None, run, shown=shown, counts=counts)
    requests = selectors.rerun_request_list(run=run)
    return {
        "can_rerun": can_rerun,
        "rerun_form": form,
        "rerun_requests": requests,
        "reruns_live": selectors.rerun_requests_live(requests),
        "cases_in_table": cases_in_table,
    }


def _rerun_form(
    data: Any,
    run: Run,
    *,
    shown: RunResults | None = None,
    counts: ResultCounts | None = None,
) -> RerunForm:
    """The rerun form offering the results shown: those of the run page, or its first page."""
    counts = counts or selectors.run_result_counts(run=run)
    shown = shown or selectors.run_result_page(run=run)
    return RerunForm(data, run=run, shown=shown.shown, counts=counts)


def run_now_context(
    request: HttpRequest, schedule: Schedule, form: RunNowForm | None = None
) -> dict[str, Any]:
    can_rerun = request.user.has_perm(PERMISSION)
    if can_rerun and form is None and not schedule.is_temporary:
        form = RunNowForm(schedule=schedule)
    return {
        "can_rerun": can_rerun,
        "run_now_form": form,
        "run_now_requests": selectors.rerun_request_list(schedule=schedule),
    }


def _done(request: HtmxHttpRequest, rerun_request: RerunRequest) -> HttpResponse:
    """Land on the new run, or on the request's page while it is sent or when it made several
    runs or none; that page goes on to the run once the request settles with exactly one."""
    if rerun_request.state in OPEN:
        target = f"{rerun_request.get_absolute_url()}?follow=1"
    else:
        runs = selectors.rerun_request_first_runs(rerun_request=rerun_request)
        one = len(runs) == 1
        target = runs[0].get_absolute_url() if one else rerun_request.get_absolute_url()
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


def _preview_or_send(
    request: HtmxHttpRequest,
    form: RerunForm | RunNowForm,
    *,
    source: Run | None = None,
    schedule: Schedule | None = None,
) -> tuple[HttpResponse | None, RerunPlan | None]:
    """Preview (action=preview) or send (action=send) a valid form: (where to go, or the plan).

    A key seen before lands on its request and sends nothing; inputs that plan otherwise than
    the preview send nothing and show the new preview.
    """
    data, key = form.rerun_input(), form.cleaned_data["idempotency_key"]
    if (existing := rerun_request_find(idempotency_key=key)) is not None:
        return _done(request, existing), None
    try:
        if request.POST.get("action") != "send":
            return None, rerun_plan(source=source, schedule=schedule, data=data)
        rerun_request, _sent = rerun_start(
            user=request.user,
            idempotency_key=key,
            data=data,
            source=source,
            schedule=schedule,
            previewed_digest=form.cleaned_data["plan_digest"],
        )
    except PlanChanged as exc:
        form.add_error(None, str(exc))
        return None, exc.plan
    except RerunInvalid as exc:
        form.add_invalid(exc.errors)
        return None, None
    return _done(request, rerun_request), None


@permission_required(PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def rerun(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: the form on its own page (works without JavaScript). POST: preview or send."""
    run = get_or_404(selectors.run_get_for_rerun, pk, "run")
    form = _rerun_form(request.POST or None, run)
    plan = None
    if request.method == "POST" and form.is_valid():
        done, plan = _preview_or_send(request, form, source=run)
        if done is not None:
            return done
    in_table = request.POST.get("cases_in_table") == "1"
    context = {
        "run": run,
        "plan": plan,
        **rerun_panel_context(request, run, form, cases_in_table=in_table),
    }
    template = "runs/rerun.html#rerun-panel" if request.htmx else "runs/rerun.html"
    return render(request, template, context)


@permission_required(PERMISSION, raise_exception=True)
@require_POST
def run_now(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    schedule = get_or_404(selectors.schedule_get, pk, "schedule")
    form = RunNowForm(request.POST, schedule=schedule)
    plan = None
    if form.is_valid():
        done, plan = _preview_or_send(request, form, schedule=schedule)
        if done is not None:
            return done
    context = {"schedule": schedule, "plan": plan, **run_now_context(request, schedule, form)}
    template = "runs/run_now.html#run-now-panel" if request.htmx else "runs/run_now.html"
    return render(request, template, context)


def rerun_request_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A request's page: its calls as they are sent, whether the orchestrator took them, and
    what its runs found (live). Opened right after sending (`follow`), it goes on to the run
    once the request settles with exactly one."""
    rerun_request = get_or_404(selectors.rerun_request_get, pk, "rerun request")
    runs = list(rerun_request.runs.all())
    settled = rerun_request.state not in OPEN
    if request.htmx and request.GET.get("follow") and settled and len(runs) == 1:
        return HttpResponseClientRedirect(runs[0].get_absolute_url())
    context = {
        "rerun_request": rerun_request,
        "runs": runs,
        "calls": selectors.rerun_request_calls(rerun_request=rerun_request),
        "live": selectors.rerun_requests_live([rerun_request]),
        "sending": rerun_request.state in OPEN,
        "follow": bool(request.GET.get("follow")),
        "can_check": request.user.has_perm(PERMISSION),
    }
    if not request.htmx:
        return render(request, "runs/rerun_request.html", context)
    html = render_to_string("runs/rerun_request.html#request-outcome", context, request)
    return HttpResponse(html) if context["live"] else HttpResponseStopPolling(html)


@permission_required(PERMISSION, raise_exception=True)
@require_POST
def rerun_check(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """ "Check again": ask the orchestrator what the calls whose answer was lost started."""
    rerun_request = get_or_404(selectors.rerun_request_get, pk, "rerun request")
    name = rerun_request.orchestrator.name
    try:
        found = rerun_check_again(rerun_request)
    except CheckError as exc:
        messages.error(request, f"Could not ask {name}: {exc}")
    else:
        if found:
            plural = "s" if found != 1 else ""
            messages.success(request, f"{name} shows {found} run{plural} they started.")
        else:
            messages.info(
                request,
                f"{name} shows no run started by the calls whose answer was lost, yet. "
                "Runboard keeps looking at every sync.",
            )
    return redirect(rerun_request.get_absolute_url())
