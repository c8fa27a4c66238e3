"""The rerun form offers only the results shown, and takes any result of its run."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.http import QueryDict

from runs import selectors
from runs.forms import RerunForm
from runs.models import ExecutionResult, Run
from runs.status import Status
from tests.factories import make_orchestrator, make_result, make_run, make_schedule

pytestmark = pytest.mark.django_db


def big_run(kind: str, size: int = 150) -> Run:
    run = make_run(make_schedule(make_orchestrator(kind)), status=Status.FAILED)
    ExecutionResult.objects.bulk_create(
        ExecutionResult(
            run=run,
            external_id=f"r{n}",
            case_key=f"case-{n}",
            seq=n,
            status=Status.FAILED if n == 3 else Status.PASSED,
        )
        for n in range(size)
    )
    return run


def form_for(run: Run, data: dict | None = None) -> RerunForm:
    shown = selectors.run_result_page(run=run)
    counts = selectors.run_result_counts(run=run)
    posted = QueryDict(urlencode(data, doseq=True)) if data is not None else None
    return RerunForm(posted, run=run, shown=shown.shown, counts=counts)


def test_it_offers_only_the_results_shown_yet_accepts_any_result_of_the_run():
    run = big_run("leapwork")
    form = form_for(run)
    assert len(form.fields["cases"].choices) == 1 + selectors.RESULT_PAGE_SIZE
    last = run.results.order_by("-seq").first()  # on no page shown
    form = form_for(run, {"idempotency_key": "k", "scope": "picked", "cases": [last.pk]})
    assert form.is_valid(), form.errors
    assert form.rerun_input().result_ids == (last.pk,)


def test_it_refuses_a_result_of_another_run():
    run = big_run("leapwork", size=5)
    stranger = make_result(make_run(run.schedule))
    form = form_for(run, {"idempotency_key": "k", "scope": "picked", "cases": [stranger.pk]})
    assert not form.is_valid()
    assert form.errors["cases"] == ["Some picked cases are not results of this run."]


def test_a_task_picked_beyond_the_page_stays_checked_when_the_form_comes_back():
    run = big_run("conductor")
    last = run.results.order_by("-seq").first()
    data = {"idempotency_key": "k", "scope": "from_task", "cases": [last.pk], "task_input": "{x"}
    form = form_for(run, data)
    assert not form.is_valid()  # the JSON, not the pick
    assert "cases" not in form.errors
    html = str(form["cases"])
    assert f'type="radio" name="cases" value="{last.pk}"' in html
    assert (
        html.count("checked") == 1 and html.count('type="radio"') <= 2 + selectors.RESULT_PAGE_SIZE
    )


def test_it_takes_iterations_of_the_run_and_refuses_malformed_ones():
    run = big_run("testsigma", size=3)
    driven = make_result(
        run, status=Status.FAILED, is_data_driven=True, iterations=[{"id": "7", "status": "failed"}]
    )
    form = form_for(
        run, {"idempotency_key": "k", "scope": "picked", "iterations": [f"{driven.pk}:7"]}
    )
    assert form.is_valid(), form.errors
    assert form.rerun_input().iterations == {driven.pk: ("7",)}
    form = form_for(run, {"idempotency_key": "k", "scope": "picked", "iterations": ["nonsense"]})
    assert not form.is_valid() and "iterations" in form.errors
