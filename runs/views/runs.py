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
from runs.services.reruns import PERMISSION, Scope, rerun_capabilities
from runs.views.common import HtmxHttpRequest, cursor, get_or_404, is_fragment
from runs.views.reruns import rerun_panel_context

# The "load more" row of the results table: htmx names it as its target to get the next rows.
MORE_ROWS = "results-more"


def _run_page_context(request: HtmxHttpRequest, run: Run) -> dict[str, Any]:
    counts = selectors.run_result_counts(run=run)
    form = ResultFilterForm(request.GET, agents=counts.agents)
    form.is_valid()
    filters, more = form.filters(), bool(request.htmx) and request.htmx.target == MORE_ROWS
    failures = counts.failures_on(filters.get("agent"))
    # Once the run is over its failures come apart, first; while it runs (and polls) they
    # show in the run's order, counted above, so a poll reads one page of results.
    results = selectors.run_result_page(
        run=run,
        filters=filters,
        with_failures=run.is_terminal and not more,
        has_failures=bool(failures),
        **cursor(request),
    )
    # Picked cases are checked on the results table where a pick is a set of cases, once the
    # run is over (polling would reset them).
    pick = run.is_terminal and not run.is_frozen and request.user.has_perm(PERMISSION)
    return {
        "run": run,
        "counts": counts,
        "agents": counts.agents,
        "result_form": form,
        "results": results,
        # How many failures "All failures" leads to: unknown for a search (not counted).
        "failures_total": None if filters.get("q") else failures,
        "causes": selectors.failure_causes(
            run=run, results=[*results.failures, *results.page.items]
        ),
        "permalink": request.build_absolute_uri(run.get_absolute_url()),
        "pick": pick and rerun_capabilities(run.orchestrator).picked_scope == Scope.PICKED,
    }


@vary_on_headers("HX-Request", "HX-Target")
def run_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_or_404(selectors.run_get_for_page, pk, "run")
    context = _run_page_context(request, run)
    if is_fragment(request):
        fragment = "result-page" if request.htmx.target == MORE_ROWS else "run-results"
        return render(request, f"runs/run_detail.html#{fragment}", context)
    context["lineage"] = selectors.run_lineage(run=run)
    shown = {"shown": context["results"], "counts": context["counts"]}
    context.update(rerun_panel_context(request, run, **shown))
    return render(request, "runs/run_detail.html", context)


def run_poll(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The run page's summary (and its counts and page of results, out of band) while the run
    is in progress."""
    run = get_or_404(selectors.run_get_for_poll, pk, "run")
    # The refresh hook: a watched, stale running run asks the background poller for fresh data.
    run_refresh_if_stale(run=run)
    context = {**_run_page_context(request, run), "oob": True}
    html = render_to_string("runs/run_detail.html#run-summary", context, request)
    html += render_to_string("runs/run_detail.html#result-counts", context, request)
    html += render_to_string("runs/run_detail.html#run-results", context, request)
    if not run.is_terminal:
        return HttpResponse(html)
    # Over: the rerun panel now knows the failures (and the table offers its checkboxes).
    shown = {"shown": context["results"], "counts": context["counts"]}
    context.update(rerun_panel_context(request, run, **shown))
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
