"""A test case across runs, and a schedule's runs with its trend."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.vary import vary_on_headers

from runs import selectors
from runs.views.common import HtmxHttpRequest, cursor, get_or_404, int_param, is_fragment
from runs.views.reruns import run_now_context


@vary_on_headers("HX-Request")
def test_case(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    case = get_or_404(selectors.test_case_get, pk, "test case")
    from_run = int_param(request, "from")
    page = selectors.test_case_history(test_case=case, from_run=from_run, **cursor(request))
    context = {"case": case, "page": page, "from_run": from_run}
    if is_fragment(request):
        return render(request, "runs/test_case.html#case-results", context)
    context["stats"] = selectors.test_case_stats(test_case=case)
    return render(request, "runs/test_case.html", context)


@vary_on_headers("HX-Request")
def schedule(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    found = get_or_404(selectors.schedule_get, pk, "schedule")
    page = selectors.schedule_runs(schedule=found, **cursor(request))
    context = {"schedule": found, "page": page}
    if is_fragment(request):
        return render(request, "runs/schedule.html#run-table", context)
    context["trend"] = selectors.schedule_trend(schedule=found)
    context.update(run_now_context(request, found))
    return render(request, "runs/schedule.html", context)
