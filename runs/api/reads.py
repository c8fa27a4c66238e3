"""Reading: orchestrators, schedules, the run history, a run and its results, a run by its
vendor id, a test case's history and the failures by cause.

Each endpoint parses its query with the page's own filter form, calls the page's selector and
answers a page by key: the same queries as the page, so the same fixed count whatever the
history holds. A filter the page would ignore is a 400 here.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema
from ninja.params import Path

from runs import selectors
from runs.api.common import cursor, get_or_404, responses, valid
from runs.api.schemas import (
    CaseOut,
    FailureGroupDetailOut,
    FailureGroupSummaryOut,
    OrchestratorOut,
    ResultOut,
    ResultPage,
    RunDetailOut,
    RunOut,
    RunPage,
    ScheduleOut,
    SchedulePage,
)
from runs.filters import FailureFilterForm, ResultFilterForm, RunFilterForm
from runs.selectors import BIGINT_MAX

router = Router(tags=["read"])

Id = Path(..., ge=1, le=BIGINT_MAX, description="the id Runboard gives it")


class Cursor(Schema):
    after: str = ""
    before: str = ""


class RunQuery(Cursor):
    """The history's filters, as its URL carries them."""

    q: str = ""
    orchestrator: str = ""
    schedule: str = ""
    status: str = ""
    agent: str = ""
    trigger: str = ""
    build: str = ""
    date_from: str = ""
    date_to: str = ""
    sort: str = ""


class ScheduleQuery(Cursor):
    orchestrator: str = ""


class ResultQuery(Cursor):
    """A run's results, as its page's filters carry them."""

    q: str = ""
    status: str = ""
    agent: str = ""


class WindowQuery(Schema):
    window: str = ""


class FailureQuery(WindowQuery):
    status: str = ""
    orchestrator: str = ""
    schedule: str = ""
    agent: str = ""


@router.get("/orchestrators", response=responses({200: list[OrchestratorOut]}, (401,)))
def orchestrators(request: HttpRequest) -> list[OrchestratorOut]:
    """Every orchestrator, with its sync health and counts."""
    return [OrchestratorOut.of(o) for o in selectors.orchestrator_list_with_counts()]


@router.get("/schedules", response=responses({200: SchedulePage}, (400, 401)))
def schedules(request: HttpRequest, query: Query[ScheduleQuery]) -> SchedulePage:
    """The schedules (test plans, workflow definitions), a page at a time."""
    form = valid(RunFilterForm({"orchestrator": query.orchestrator}))
    page = selectors.schedule_list(
        orchestrator=form.cleaned_data["orchestrator"],
        **cursor(selectors.SCHEDULE_KEY, after=query.after, before=query.before),
    )
    items = [ScheduleOut.of(schedule) for schedule in page.items]
    return SchedulePage(items=items, next=page.next_cursor, previous=page.prev_cursor)


@router.get("/runs", response=responses({200: RunPage}, (400, 401)))
def runs(request: HttpRequest, query: Query[RunQuery]) -> RunPage:
    """The run history with the page's filters, newest first unless `sort` says otherwise."""
    form = valid(RunFilterForm(query.model_dump(exclude={"after", "before"})))
    filters = form.filters()
    key = selectors.run_sort_key(form.sort_key, filters)
    page = selectors.run_history(
        filters=filters,
        sort=form.sort_key,
        **cursor(key, after=query.after, before=query.before),
    )
    items = [RunOut.of(run) for run in page.items]
    return RunPage(items=items, next=page.next_cursor, previous=page.prev_cursor)


@router.get("/runs/{id}", response=responses({200: RunDetailOut}))
def run(request: HttpRequest, id: int = Id) -> RunDetailOut:
    """A run with its results counted by status and by agent."""
    found = get_or_404(selectors.run_get, id, "run")
    return RunDetailOut.of_detail(found, selectors.run_result_counts(run=found))


@router.get("/runs/{id}/results", response=responses({200: ResultPage}))
def run_results(request: HttpRequest, query: Query[ResultQuery], id: int = Id) -> ResultPage:
    """A run's results in the orchestrator's order, a page by key; `status=failures` for
    the failed and errored ones, `q` for those whose case (title or id) or message holds
    the text."""
    found = get_or_404(selectors.run_get_for_poll, id, "run")
    # Agents are choices only when one is asked for: the grouped count is read only then.
    agents = selectors.run_result_counts(run=found).agents if query.agent else []
    form = valid(ResultFilterForm(query.model_dump(exclude={"after", "before"}), agents=agents))
    results = selectors.run_result_page(
        run=found,
        filters=form.filters(),
        with_failures=False,
        **cursor(selectors.SEQ_KEY, after=query.after, before=query.before),
    )
    page = results.page
    items = [ResultOut.of(result) for result in page.items]
    return ResultPage(items=items, next=page.next_cursor, previous=page.prev_cursor)


@router.get("/go/{orchestrator}/{path:external_id}", response=responses({200: RunOut}))
def go(
    request: HttpRequest,
    orchestrator: str = Path(..., pattern=r"^[-a-zA-Z0-9_]+$", description="its name"),
    external_id: str = Path(..., description="the orchestrator's own run id"),
) -> RunOut:
    """A run by the orchestrator's name and its own run id (its newest attempt), as `/go/`."""
    found = selectors.run_find_by_external_id(orchestrator=orchestrator, external_id=external_id)
    if found is None:
        raise Http404(f"Runboard knows no run {external_id[:80]!r} on {orchestrator[:80]!r}.")
    return RunOut.of(selectors.run_get(pk=found.pk))


@router.get("/cases/{id}", response=responses({200: CaseOut}))
def case(request: HttpRequest, query: Query[Cursor], id: int = Id) -> CaseOut:
    """A test case's results across runs, newest first, with its counts and flakiness."""
    found = get_or_404(selectors.test_case_get, id, "test case")
    page = selectors.test_case_history(
        test_case=found, **cursor(selectors.RESULT_KEY, after=query.after, before=query.before)
    )
    return CaseOut.of(found, selectors.test_case_stats(test_case=found), page)


@router.get("/failures", response=responses({200: list[FailureGroupSummaryOut]}, (400, 401)))
def failures(request: HttpRequest, query: Query[FailureQuery]) -> list[FailureGroupSummaryOut]:
    """The causes of failure of a window (`1d`, `7d`, `30d`), the widest reaching first."""
    form = valid(FailureFilterForm(query.model_dump()))
    groups = selectors.failure_groups(days=form.days, filters=form.filters())
    return [FailureGroupSummaryOut.of_summary(summary) for summary in groups]


@router.get("/failures/{id}", response=responses({200: FailureGroupDetailOut}))
def failure(request: HttpRequest, query: Query[WindowQuery], id: int = Id) -> FailureGroupDetailOut:
    """One cause: where it struck in the window (30 days unless told), and its newest failures."""
    group = get_or_404(selectors.failure_group_get, id, "failure group")
    form = valid(FailureFilterForm({"window": query.window}))
    days = form.days if query.window else selectors.GROUP_DAYS
    detail = selectors.failure_group_detail(group=group, days=days)
    return FailureGroupDetailOut.of_detail(group, detail)
