"""Rerun, run-now, track-a-run and connect views; the panels they render on other pages.

A form is previewed first (what will run, and the requests the orchestrator will receive),
then sent; without JavaScript it is plain POST and redirect.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from runs import selectors
from runs.forms import ConnectForm, RerunForm, RunNowForm, TrackRunForm
from runs.models import RerunRequest, RerunState, Run, Schedule
from runs.services.orchestrators import ConnectError, orchestrator_connect
from runs.services.reruns import (
    PERMISSION,
    PlanChanged,
    RerunInvalid,
    RerunPlan,
    rerun_plan,
    rerun_start,
)
from runs.services.sync import OrchestratorError, run_track


def _results(run: Run) -> list:
    return list(run.results.select_related("agent", "test_case").order_by("seq", "id"))


def rerun_panel_context(
    request: HttpRequest, run: Run, form: RerunForm | None = None, *, cases_in_table: bool = True
) -> dict[str, Any]:
    """What the run page needs for its rerun panel: the form (for rerunners) and the audit.

    On the run page the cases are picked with checkboxes on its results table; the form on
    its own page (no table) lists them itself.
    """
    can_rerun = request.user.has_perm(PERMISSION)
    if can_rerun and form is None and not run.is_frozen:
        form = RerunForm(run=run, results=_results(run))
    requests = selectors.rerun_request_list(run=run)
    return {
        "can_rerun": can_rerun,
        "rerun_form": form,
        "rerun_requests": requests,
        "reruns_live": selectors.rerun_requests_live(requests),
        "cases_in_table": cases_in_table,
    }


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


def track_run_context(request: HttpRequest) -> dict[str, Any]:
    return {"track_form": TrackRunForm()}


def _done(request: HttpRequest, rerun_request: RerunRequest) -> HttpResponse:
    """Land on the new run, or on the request's page when it made several or none."""
    runs = list(rerun_request.runs.all()[:2])
    target = runs[0].get_absolute_url() if len(runs) == 1 else rerun_request.get_absolute_url()
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


def _preview_or_send(
    request: HttpRequest,
    form: RerunForm | RunNowForm,
    *,
    source: Run | None = None,
    schedule: Schedule | None = None,
) -> tuple[HttpResponse | None, RerunPlan | None]:
    """Preview (action=preview) or send (action=send) a valid form: (where to go, or the plan).

    A key seen before lands on its request and sends nothing; a refusal keeps the form's
    values and offers a fresh key, since nothing ran.
    """
    key = form.cleaned_data["idempotency_key"]
    existing = RerunRequest.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return _done(request, existing), None
    try:
        if request.POST.get("action") != "send":
            return None, rerun_plan(source=source, schedule=schedule, data=form.rerun_input())
        rerun_request, _sent = rerun_start(
            user=request.user,
            idempotency_key=key,
            data=form.rerun_input(),
            source=source,
            schedule=schedule,
            previewed_digest=form.cleaned_data["plan_digest"],
        )
        if rerun_request.state != RerunState.FAILED:
            return _done(request, rerun_request), None
        form.add_error(None, rerun_request.message)
        form.renew_idempotency_key()
    except PlanChanged as exc:
        # Not what was previewed (or never previewed): show what would be sent instead.
        form.add_error(None, str(exc))
        return None, exc.plan
    except RerunInvalid as exc:
        form.add_invalid(exc.errors)
    return None, None


@permission_required(PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def rerun(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the form on its own page (works without JavaScript). POST: preview or send."""
    run = get_object_or_404(
        Run.objects.select_related("orchestrator", "schedule", "rerun_of"), pk=pk
    )
    form = RerunForm(request.POST or None, run=run, results=_results(run))
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
def run_now(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule.objects.select_related("orchestrator"), pk=pk)
    form = RunNowForm(request.POST, schedule=schedule)
    plan = None
    if form.is_valid():
        done, plan = _preview_or_send(request, form, schedule=schedule)
        if done is not None:
            return done
    context = {"schedule": schedule, "plan": plan, **run_now_context(request, schedule, form)}
    template = "runs/run_now.html#run-now-panel" if request.htmx else "runs/run_now.html"
    return render(request, template, context)


def rerun_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A request's page: whether the orchestrator took it, and what its runs found (live)."""
    rerun_request = get_object_or_404(selectors.rerun_request_get_queryset(), pk=pk)
    live = selectors.rerun_requests_live([rerun_request])
    context = {"rerun_request": rerun_request, "runs": rerun_request.runs.all(), "live": live}
    if not request.htmx:
        return render(request, "runs/rerun_request.html", context)
    html = render_to_string("runs/rerun_request.html#request-outcome", context, request)
    return HttpResponse(html) if live else HttpResponseStopPolling(html)


def run_reruns(request: HttpRequest, pk: int) -> HttpResponse:
    """The run page's reruns with their verdicts, polled until every one of them is over."""
    run = get_object_or_404(Run, pk=pk)
    requests = selectors.rerun_request_list(run=run)
    live = selectors.rerun_requests_live(requests)
    context = {
        "requests": requests,
        "live": live,
        "poll_url": reverse("runs:run_reruns", args=[run.pk]),
        "title": "After rerun",
    }
    html = render_to_string("runs/partials/rerun_audit.html", context, request)
    return HttpResponse(html) if live else HttpResponseStopPolling(html)


@require_POST
def track_run(request: HttpRequest) -> HttpResponse:
    """Follow a run by its vendor id (Testsigma lists no runs)."""
    form = TrackRunForm(request.POST)
    if form.is_valid():
        try:
            run = run_track(
                orchestrator=form.cleaned_data["orchestrator"],
                external_id=form.cleaned_data["run_id"],
            )
        except OrchestratorError as exc:
            form.add_error("run_id", str(exc))
        else:
            messages.success(request, f"Runboard now follows run {run.external_id}.")
            return redirect(run)
    return render(request, "runs/track_run.html", {"track_form": form}, status=422)


@require_http_methods(["GET", "POST"])
def orchestrator_connect_view(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("Connecting an orchestrator is for staff.")
    form = ConnectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            connection = orchestrator_connect(
                kind=data["kind"],
                base_url=data["base_url"],
                name=data["name"],
                credential=data["credential"],
                test_plan_ids=data["test_plan_ids"],
                run_ids=data["run_ids"],
            )
        except ConnectError as exc:
            form.add_error(None, str(exc))
        else:
            verb = "Connected" if connection.created else "Updated"
            messages.success(
                request,
                f"{verb} {connection.orchestrator.name}; its history syncs in the background.",
            )
            return redirect(reverse("runs:orchestrators"))
    return render(request, "runs/orchestrator_connect.html", {"form": form})
