"""Function views: parse input, call one selector or service, render."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from runs import selectors
from runs.models import Run


def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "runs/overview.html", {"runs": selectors.run_list_recent(limit=20)})


def run_list(request: HttpRequest) -> HttpResponse:
    return render(request, "runs/run_list.html", {"runs": selectors.run_list_recent(limit=50)})


def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        run = selectors.run_get(pk=pk)
    except Run.DoesNotExist as exc:
        raise Http404("No such run.") from exc
    results = selectors.run_results(run=run)
    return render(request, "runs/run_detail.html", {"run": run, "results": results})


def go(request: HttpRequest, orchestrator: str, external_id: str) -> HttpResponse:
    run = selectors.run_find_by_external_id(orchestrator=orchestrator, external_id=external_id)
    if run is None:
        raise Http404(f"Runboard does not know run {external_id} of {orchestrator} yet.")
    return redirect(run)
