"""The read endpoints: the pages' filters, selectors and keyset cursors, as JSON."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs import selectors
from runs.models import ExecutionResult, Run
from runs.services.failure_groups import fingerprints_refresh
from runs.status import Status
from tests.api.conftest import API
from tests.factories import (
    make_agent,
    make_orchestrator,
    make_result,
    make_run,
    make_schedule,
    make_test_case,
)

pytestmark = pytest.mark.django_db


def runs_of(schedule, count: int, *, status: str = Status.PASSED, after: int = 0) -> list[Run]:
    """`count` runs of `schedule`, newest first, the first `after` minutes ago."""
    now = timezone.now()
    return Run.objects.bulk_create(
        Run(
            orchestrator=schedule.orchestrator,
            schedule=schedule,
            external_id=f"{schedule.external_id}-{status}-{n}",
            status=status,
            started_at=now - timedelta(minutes=after + n + 1),
        )
        for n in range(count)
    )


def results_of(run: Run, count: int, **fields) -> list[ExecutionResult]:
    return ExecutionResult.objects.bulk_create(
        ExecutionResult(run=run, external_id=f"r-{run.pk}-{n}", seq=n, **fields)
        for n in range(count)
    )


def test_it_lists_orchestrators_with_their_counts(reader):
    schedule = make_schedule(make_orchestrator(name="lab"))
    make_agent(schedule.orchestrator)
    (listed,) = reader.get(f"{API}/orchestrators").json()
    assert listed["name"] == "lab" and listed["kind"] == "leapwork"
    assert (listed["schedule_count"], listed["agent_count"], listed["healthy"]) == (1, 1, True)


def test_it_pages_schedules_by_key_and_filters_them_by_orchestrator(reader):
    lab = make_orchestrator(name="lab")
    mine = [make_schedule(lab) for _ in range(55)]
    make_schedule(make_orchestrator(name="other"))
    make_schedule(lab, is_temporary=True)
    first = reader.get(f"{API}/schedules", {"orchestrator": "lab"}).json()
    assert len(first["items"]) == 50 and first["next"] and first["previous"] is None
    second = reader.get(f"{API}/schedules", {"orchestrator": "lab", "after": first["next"]})
    ids = [s["id"] for s in first["items"] + second.json()["items"]]
    assert ids == [s.pk for s in mine] and second.json()["next"] is None
    unknown = reader.get(f"{API}/schedules", {"orchestrator": "nope"})
    assert unknown.status_code == 400 and "orchestrator" in unknown.json()["errors"]


def test_it_lists_the_history_with_its_filters_and_cursors(reader):
    schedule = make_schedule(make_orchestrator(name="lab"))
    failed = runs_of(schedule, 60, status=Status.FAILED)
    runs_of(make_schedule(), 5, status=Status.FAILED)
    runs_of(schedule, 5, status=Status.PASSED)
    query = {"orchestrator": "lab", "status": "failures"}
    first = reader.get(f"{API}/runs", query).json()
    assert len(first["items"]) == 50 and first["previous"] is None
    second = reader.get(f"{API}/runs", {**query, "after": first["next"]}).json()
    assert second["next"] is None and second["previous"]
    listed = [r["id"] for r in first["items"] + second["items"]]
    assert listed == [r.pk for r in failed]  # newest first
    back = reader.get(f"{API}/runs", {**query, "before": second["previous"]}).json()
    assert [r["id"] for r in back["items"]] == listed[:50]
    run = first["items"][0]
    assert run["orchestrator"] == "lab" and run["status"] == "failed"
    assert run["url"] == f"/runs/{run['id']}/" and set(run["counts"]) >= {"total", "failed"}
    oldest = reader.get(f"{API}/runs", {**query, "sort": "started"}).json()
    assert oldest["items"][0]["id"] == failed[-1].pk


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "nope"}, "status"),
        ({"sort": "sideways"}, "sort"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"schedule": "x"}, "schedule"),
        ({"after": "not-a-cursor"}, "after"),
        ({"before": "12_x"}, "before"),
    ],
)
def test_a_filter_or_cursor_the_page_would_ignore_is_a_400(reader, query, field):
    response = reader.get(f"{API}/runs", query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]


def test_a_run_comes_with_its_counts(reader):
    run = make_run(status=Status.FAILED)
    agent = make_agent(run.orchestrator, title="win-1")
    make_result(run, status=Status.FAILED, agent=agent)
    make_result(run, status=Status.PASSED, agent=agent)
    body = reader.get(f"{API}/runs/{run.pk}").json()
    assert body["id"] == run.pk and body["external_id"] == run.external_id
    assert body["results"]["by_status"] == {"passed": 1, "failed": 1}
    assert body["results"]["agents"] == [
        {"id": agent.pk, "title": "win-1", "results": 2, "failed": 1}
    ]


@pytest.mark.parametrize("pk", ["999999", "0", "-1", str(2**63), "x"])
def test_an_unknown_or_impossible_id_is_a_404_or_a_400(reader, pk):
    response = reader.get(f"{API}/runs/{pk}")
    assert response.status_code == (404 if pk == "999999" else 400)
    assert response["Content-Type"] == "application/problem+json"


def test_a_runs_results_come_a_page_by_key_in_the_orchestrators_order(reader):
    run = make_run(status=Status.FAILED)
    agent = make_agent(run.orchestrator)
    results = results_of(run, 130, status=Status.PASSED, agent=agent)
    failed = make_result(run, status=Status.FAILED, seq=200, message="Timeout")
    first = reader.get(f"{API}/runs/{run.pk}/results").json()
    second = reader.get(f"{API}/runs/{run.pk}/results", {"after": first["next"]}).json()
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert ids == [r.pk for r in results] + [failed.pk] and second["next"] is None
    only = reader.get(f"{API}/runs/{run.pk}/results", {"status": "failures"}).json()
    assert [r["id"] for r in only["items"]] == [failed.pk]
    assert only["items"][0]["message"] == "Timeout"
    on_agent = reader.get(f"{API}/runs/{run.pk}/results", {"agent": agent.pk}).json()
    assert len(on_agent["items"]) == 100 and on_agent["items"][0]["agent"]["id"] == agent.pk
    assert reader.get(f"{API}/runs/{run.pk}/results", {"agent": "nope"}).status_code == 400


def test_a_runs_results_can_be_searched_by_case_and_message(reader):
    run = make_run(status=Status.FAILED)
    checkout = make_test_case(run.orchestrator, title="Checkout total")
    found = make_result(run, test_case=checkout, status=Status.PASSED, seq=1)
    timeout = make_result(run, status=Status.FAILED, seq=2, message="Timeout on #pay")
    make_result(run, case_key="login", status=Status.PASSED, seq=3)

    def ids(**query) -> list[int]:
        body = reader.get(f"{API}/runs/{run.pk}/results", query).json()
        return [r["id"] for r in body["items"]]

    assert ids(q="checkout") == [found.pk]
    assert ids(q="#PAY") == [timeout.pk]
    assert ids(q="#pay", status="passed") == []
    assert reader.get(f"{API}/runs/{run.pk}/results", {"q": "x" * 201}).status_code == 400


def test_go_finds_the_newest_attempt_of_a_vendor_run_id(reader):
    schedule = make_schedule(make_orchestrator(name="ci"))
    make_run(schedule, external_id="wf/1", attempt=1)
    newest = make_run(schedule, external_id="wf/1", attempt=2)
    assert reader.get(f"{API}/go/ci/wf/1").json()["id"] == newest.pk
    missing = reader.get(f"{API}/go/ci/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_a_test_case_comes_with_its_history_and_counts(reader):
    run = make_run(status=Status.FAILED)
    case = make_test_case(run.orchestrator, title="Checkout")
    make_result(run, test_case=case, status=Status.FAILED)
    make_result(make_run(run.schedule), test_case=case, status=Status.PASSED)
    body = reader.get(f"{API}/cases/{case.pk}").json()
    assert body["title"] == "Checkout" and len(body["items"]) == 2
    assert (body["stats"]["results"], body["stats"]["failed"]) == (2, 1)
    assert reader.get(f"{API}/cases/{case.pk}", {"after": "bad"}).status_code == 400


def test_a_test_case_s_page_costs_the_same_queries_whatever_its_length(reader):
    run = make_run(status=Status.FAILED)
    short, long = (make_test_case(run.orchestrator, title=title) for title in ("Short", "Long"))
    make_result(run, test_case=short, status=Status.PASSED)
    for _ in range(selectors.CASE_PAGE_SIZE):
        make_result(make_run(run.schedule), test_case=long, status=Status.PASSED)
    reader.get(f"{API}/cases/{short.pk}")  # the token's last use is noted once a minute
    # Each result names its case: the page's case, not read again per result.
    assert queries(reader, f"{API}/cases/{short.pk}") == queries(reader, f"{API}/cases/{long.pk}")
    items = reader.get(f"{API}/cases/{long.pk}").json()["items"]
    assert len(items) == selectors.CASE_PAGE_SIZE
    assert {item["test_case"]["title"] for item in items} == {"Long"}


def test_failures_come_grouped_by_cause(reader):
    run = make_run(status=Status.FAILED)
    for n in range(3):
        make_result(run, status=Status.FAILED, message=f"Timeout after {n}s waiting for #pay")
    fingerprints_refresh()
    (group,) = reader.get(f"{API}/failures", {"window": "7d"}).json()
    assert group["results"] == 3 and group["is_new"] and "Timeout" in group["normalized"]
    detail = reader.get(f"{API}/failures/{group['id']}").json()
    assert detail["total"] == 3 and len(detail["examples"]) == 3 and detail["days"] == 30
    assert reader.get(f"{API}/failures", {"window": "1y"}).status_code == 400
    assert reader.get(f"{API}/failures/999999").status_code == 404


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_history_and_a_runs_results_cost_the_same_queries_whatever_their_size(
    reader, django_assert_max_num_queries
):
    small, big = make_schedule(), make_schedule()
    runs_of(small, 2, status=Status.FAILED)
    big_runs = runs_of(big, 300, status=Status.FAILED)
    little = make_run(small)
    results_of(little, 2, status=Status.FAILED)
    results_of(big_runs[0], 500, status=Status.FAILED)
    reader.get(f"{API}/runs")  # the token's last use is noted once a minute: not in the count
    for url in ("/runs?status=failures", "/runs/{}/results", "/runs/{}/results?status=failures"):
        few = queries(reader, API + url.format(little.pk).replace("{}", ""))
        many = queries(reader, API + url.format(big_runs[0].pk))
        assert few == many, url
    with django_assert_max_num_queries(3):  # the token, the runs (the history's one query)
        reader.get(f"{API}/runs?status=failures&orchestrator={big.orchestrator.name}")
    with django_assert_max_num_queries(3):  # the token, the run, its page of results
        reader.get(f"{API}/runs/{big_runs[0].pk}/results")
