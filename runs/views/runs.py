"""A run's page: its summary and progress, results, lineage, reruns; /go/ links to it."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from runs import selectors
from runs.filters import ResultFilterForm
from runs.models import Run
from runs.services.polling import run_refresh_if_stale
from runs.services.reruns import rerun_capabilities
from runs.views.common import HtmxHttpRequest, get_or_404, is_fragment
from runs.views.reruns import rerun_panel_context


def _run_page_context(request: HtmxHttpRequest, run: Run) -> dict[str, Any]:
    agents = selectors.run_agents(run=run)
    form = ResultFilterForm(request.GET, agents=agents)
    form.is_valid()
    return {
        "run": run,
        "agents": agents,
        "result_form": form,
        "results": selectors.run_results(run=run, filters=form.filters()),
        "permalink": request.build_absolute_uri(run.get_absolute_url()),
        # Picked cases are checked on the results table where a pick is a set of cases.
        "cases_pickable_in_table": rerun_capabilities(run.orchestrator).picked_scope == "picked",
    }


@vary_on_headers("HX-Request")
def run_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_or_404(selectors.run_get, pk, "run")
    context = _run_page_context(request, run)
    if is_fragment(request):
        return render(request, "runs/run_detail.html#run-results", context)
    context["lineage"] = selectors.run_lineage(run=run)
    context.update(rerun_panel_context(request, run))
    return render(request, "runs/run_detail.html", context)


def run_poll(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The run page's summary (and its results, out of band) while the run is in progress."""
    run = get_or_404(selectors.run_get_for_poll, pk, "run")
    # The refresh hook: a watched, stale running run asks the background poller for fresh data.
    run_refresh_if_stale(run=run)
    context = {**_run_page_context(request, run), "oob": True}
    html = render_to_string("runs/run_detail.html#run-summary", context, request)
    html += render_to_string("runs/run_detail.html#run-results", context, request)
    if not run.is_terminal:
        return HttpResponse(html)
    # Over: the rerun panel now knows the failures (and the table offers its checkboxes).
    context.update(rerun_panel_context(request, run))
    html += render_to_string("runs/partials/rerun_panel.html", context, request)
    return HttpResponseStopPolling(html)


def run_reruns(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The run page's reruns with their verdicts, polled until every one of them is over."""
    run = get_or_404(selectors.run_get_for_poll, pk, "run")
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


def go(request: HtmxHttpRequest, orchestrator: str, external_id: str) -> HttpResponse:
    run = selectors.run_find_by_external_id(orchestrator=orchestrator, external_id=external_id)
    if run is None:
        context = {"orchestrator": orchestrator, "external_id": external_id}
        return render(request, "runs/go_unknown.html", context, status=404)
    return redirect(run)
