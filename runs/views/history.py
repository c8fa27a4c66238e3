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
from runs.services.revision import revision_get
from runs.views.common import (
    HtmxHttpRequest,
    cursor,
    drawn_once,
    get_or_404,
    is_fragment,
    query_digest,
)


def overview(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "runs/overview.html", {"overview": selectors.overview_get()})


@vary_on_headers("HX-Request")
def run_list(request: HtmxHttpRequest) -> HttpResponse:
    """The history: the filters and a page of runs are the same for everyone who asks for the
    same URL, so they are drawn once per revision of the history and served again from the
    cache; only the frame around them (the user's name, the CSRF token) is drawn each time."""
    history, catalog = revision_get()
    query = query_digest(request)
    part = "run-table" if is_fragment(request) else "history"

    def draw() -> str:
        form = RunFilterForm(request.GET)
        form.is_valid()
        page = selectors.run_history(filters=form.filters(), sort=form.sort_key, **cursor(request))
        # The request only for its query string (the pager's links), which the key holds.
        context = {"form": form, "page": page, "sort": form.sort_key, "request": request}
        if part == "history":
            # The filters offer every schedule and agent: drawn once per catalog revision.
            context["filters"] = drawn_once(
                f"page:run-list:filters:{catalog}:{query}",
                lambda: render_to_string("runs/run_list.html#filters", context),
            )
        return render_to_string(f"runs/run_list.html#{part}", context)

    html = drawn_once(f"page:run-list:{part}:{history}:{query}", draw)
    if part == "run-table":
        return HttpResponse(html)
    return render(request, "runs/run_list.html", {"history": html})


def run_row(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One history row, polled while its run is in progress."""
    run = get_or_404(selectors.run_get_for_poll, pk, "run")
    # Somebody is watching: a stale running run asks the background poller to refresh it.
    run_refresh_if_stale(run=run)
    html = render_to_string("runs/partials/run_table.html#run-row", {"run": run}, request)
    return HttpResponseStopPolling(html) if run.is_terminal else HttpResponse(html)


@vary_on_headers("HX-Request")
def agents(request: HtmxHttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    page = selectors.agent_list_with_counts(q=q, **cursor(request))
    context = {"page": page, "agents": page.items, "q": q.strip()}
    template = "runs/agents.html#agent-list" if is_fragment(request) else "runs/agents.html"
    return render(request, template, context)
