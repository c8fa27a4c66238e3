"""CSV downloads of the run history and of a run's results, with the pages' own filters."""

from __future__ import annotations

from django.http import HttpRequest, StreamingHttpResponse

from runs import selectors
from runs.exports import (
    RESULT_HEADER,
    RUN_HEADER,
    absolute_link,
    csv_response,
    result_rows,
    run_rows,
)
from runs.filters import ResultFilterForm, RunFilterForm
from runs.views.common import get_or_404


def run_list_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every run the history's filters keep (not one page), in the history's order."""
    form = RunFilterForm(request.GET)
    form.is_valid()
    runs = selectors.run_history_export(filters=form.filters(), sort=form.sort_key)
    rows = run_rows(runs, absolute_link(request, "runs:detail"))
    return csv_response(RUN_HEADER, rows, name="runboard-runs")


def run_results_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Every result of a run that its page's filters keep, in the order of its table."""
    run = get_or_404(selectors.run_get_for_poll, pk, "run")
    # The agent filter offers the run's own agents, as on the page.
    counts = selectors.run_result_counts(run=run)
    form = ResultFilterForm(request.GET, agents=counts.agents)
    form.is_valid()
    results = selectors.run_results_export(run=run, filters=form.filters())
    rows = result_rows(results, absolute_link(request, "runs:test_case"))
    return csv_response(RESULT_HEADER, rows, name=f"runboard-run-{run.pk}-results")
