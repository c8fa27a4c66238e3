"""Function views: parse input, call selectors, render (a fragment when htmx asks)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from runs import rerun_views, selectors
from runs.filters import ResultFilterForm, RunFilterForm
from runs.models import Run, Schedule, TestCase
from runs.services.sync import run_refresh_if_stale


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _cursor(request: HttpRequest) -> dict[str, str]:
    return {"after": request.GET.get("after", ""), "before": request.GET.get("before", "")}


def _int_param(request: HttpRequest, name: str) -> int | None:
    try:
        return int(request.GET.get(name, ""))
    except ValueError:
        return None


def overview(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "runs/overview.html", {"overview": selectors.overview_get()})


@vary_on_headers("HX-Request")
def run_list(request: HtmxHttpRequest) -> HttpResponse:
    form = RunFilterForm(request.GET)
    form.is_valid()
    page = selectors.run_history(filters=form.filters(), sort=form.sort_key, **_cursor(request))
    context = {"form": form, "page": page, "sort": form.sort_key}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "runs/run_list.html#run-table", context)
    return render(request, "runs/run_list.html", context)


def run_row(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One history row, polled while its run is in progress."""
    run = _get_or_404(selectors.run_get_for_poll, pk, "run")
    # Somebody is watching: a stale running run asks the background poller to refresh it.
    run_refresh_if_stale(run=run)
    html = render_to_string("runs/partials/run_table.html#run-row", {"run": run}, request)
    return HttpResponseStopPolling(html) if run.is_terminal else HttpResponse(html)


def _run_page_context(request: HttpRequest, run: Run) -> dict:
    agents = selectors.run_agents(run=run)
    form = ResultFilterForm(request.GET, agents=agents)
    form.is_valid()
    return {
        "run": run,
        "agents": agents,
        "result_form": form,
        "results": selectors.run_results(run=run, filters=form.filters()),
        "permalink": request.build_absolute_uri(run.get_absolute_url()),
    }


@vary_on_headers("HX-Request")
def run_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = _get_or_404(selectors.run_get, pk, "run")
    context = _run_page_context(request, run)
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "runs/run_detail.html#run-results", context)
    context["lineage"] = selectors.run_lineage(run=run)
    context.update(rerun_views.rerun_panel_context(request, run))
    return render(request, "runs/run_detail.html", context)


def run_poll(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The run page's summary (and its results, out of band) while the run is in progress."""
    run = _get_or_404(selectors.run_get_for_poll, pk, "run")
    # The refresh hook: a watched, stale running run asks the background poller for fresh data.
    run_refresh_if_stale(run=run)
    context = {**_run_page_context(request, run), "oob": True}
    html = render_to_string("runs/run_detail.html#run-summary", context, request)
    html += render_to_string("runs/run_detail.html#run-results", context, request)
    if not run.is_terminal:
        return HttpResponse(html)
    # Over: the rerun panel now knows the failures (and the table offers its checkboxes).
    context.update(rerun_views.rerun_panel_context(request, run))
    html += render_to_string("runs/partials/rerun_panel.html", context, request)
    return HttpResponseStopPolling(html)


@vary_on_headers("HX-Request")
def test_case(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    case = _get_or_404(selectors.test_case_get, pk, "test case")
    from_run = _int_param(request, "from")
    page = selectors.test_case_history(test_case=case, from_run=from_run, **_cursor(request))
    context = {"case": case, "page": page, "from_run": from_run}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "runs/test_case.html#case-results", context)
    context["stats"] = selectors.test_case_stats(test_case=case)
    return render(request, "runs/test_case.html", context)


@vary_on_headers("HX-Request")
def schedule(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    found = _get_or_404(selectors.schedule_get, pk, "schedule")
    page = selectors.schedule_runs(schedule=found, **_cursor(request))
    context = {"schedule": found, "page": page}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "runs/schedule.html#run-table", context)
    context["trend"] = selectors.schedule_trend(schedule=found)
    context.update(rerun_views.run_now_context(request, found))
    return render(request, "runs/schedule.html", context)


def agents(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "runs/agents.html", {"agents": selectors.agent_list_with_counts()})


def orchestrators(request: HtmxHttpRequest) -> HttpResponse:
    context = {"orchestrators": selectors.orchestrator_list_with_counts()}
    context.update(rerun_views.track_run_context(request))
    return render(request, "runs/orchestrators.html", context)


def go(request: HtmxHttpRequest, orchestrator: str, external_id: str) -> HttpResponse:
    run = selectors.run_find_by_external_id(orchestrator=orchestrator, external_id=external_id)
    if run is None:
        context = {"orchestrator": orchestrator, "external_id": external_id}
        return render(request, "runs/go_unknown.html", context, status=404)
    return redirect(run)


def _get_or_404(getter, pk: int, what: str):
    try:
        return getter(pk=pk)
    except (Run.DoesNotExist, Schedule.DoesNotExist, TestCase.DoesNotExist) as exc:
        raise Http404(f"No such {what}.") from exc
