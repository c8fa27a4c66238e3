"""The overview, the run history and the agents: lists of runs and where they ran."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from runs import selectors
from runs.filters import RunFilterForm
from runs.services.polling import run_refresh_if_stale
from runs.views.common import HtmxHttpRequest, cursor, get_or_404, is_fragment


def overview(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "runs/overview.html", {"overview": selectors.overview_get()})


@vary_on_headers("HX-Request")
def run_list(request: HtmxHttpRequest) -> HttpResponse:
    form = RunFilterForm(request.GET)
    form.is_valid()
    page = selectors.run_history(filters=form.filters(), sort=form.sort_key, **cursor(request))
    context = {"form": form, "page": page, "sort": form.sort_key}
    template = "runs/run_list.html#run-table" if is_fragment(request) else "runs/run_list.html"
    return render(request, template, context)


def run_row(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One history row, polled while its run is in progress."""
    run = get_or_404(selectors.run_get_for_poll, pk, "run")
    # Somebody is watching: a stale running run asks the background poller to refresh it.
    run_refresh_if_stale(run=run)
    html = render_to_string("runs/partials/run_table.html#run-row", {"run": run}, request)
    return HttpResponseStopPolling(html) if run.is_terminal else HttpResponse(html)


def agents(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "runs/agents.html", {"agents": selectors.agent_list_with_counts()})
