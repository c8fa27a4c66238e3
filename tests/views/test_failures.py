"""Issue 15: the failure groups page (`/failures/`) and a group's page (`/failures/<id>/`)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from runs.models import ExecutionResult, FailureGroup, RerunBatch
from runs.services.failure_groups import fingerprints_refresh
from runs.services.revision import revision_bump
from runs.status import Status
from tests.emulated import synced, vendor_writes
from tests.factories import (
    make_agent,
    make_result,
    make_run,
    make_schedule,
    make_test_case,
    make_user,
)
from tests.sending import deliver_pending

pytestmark = pytest.mark.django_db


def failing(schedule, message: str, *, days_ago: float = 0, agent=None, case=None):
    """A failed run of `schedule` with one failure of `message`."""
    started = timezone.now() - timedelta(days=days_ago)
    run = make_run(schedule, status=Status.FAILED, started_at=started)
    return make_result(
        run, status=Status.FAILED, message=message, agent=agent, test_case=case, started_at=started
    )


@pytest.fixture
def two_causes():
    """A timeout on two orchestrators' cases and agents, and a missing element on one."""
    leap, ts = make_schedule(), make_schedule()
    agents = [
        make_agent(leap.orchestrator, title="win-1"),
        make_agent(ts.orchestrator, title="m-2"),
    ]
    # A case belongs to its orchestrator, as sync stores it.
    cases = [
        make_test_case(leap.orchestrator, title="Checkout"),
        make_test_case(ts.orchestrator, title="Login"),
    ]
    login = make_test_case(leap.orchestrator, title="Login")
    for n, (schedule, agent, case) in enumerate(
        zip([leap, ts, leap], [*agents, agents[0]], [*cases, cases[0]], strict=True)
    ):
        failing(
            schedule,
            f"Timeout after {10 + n}s waiting for #pay on 10.0.0.{n}",
            agent=agent,
            case=case,
        )
    failing(leap, "Element 'login-button' not found", days_ago=10, case=login)
    failing(leap, "Element 'logout' not found", days_ago=0.5, case=login)
    fingerprints_refresh()
    return SimpleNamespace(leap=leap, ts=ts, agents=agents, cases=cases)


@pytest.mark.usefixtures("two_causes")
def test_the_groups_page_lists_each_cause_by_reach(viewer_client):
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get("/failures/")
    assert response.status_code == 200
    rows = response.context["groups"]
    assert [row.results for row in rows] == [3, 1]  # the element's older failure: out of the window
    timeout, element = rows
    assert timeout.group.normalized == "Timeout after <duration> waiting for #pay on <host>"
    assert (timeout.runs, timeout.cases, timeout.agents, timeout.orchestrators) == (3, 2, 2, 2)
    assert timeout.is_new and not element.is_new  # the element failed 10 days ago already
    assert sum(timeout.per_day) == 3 and len(timeout.per_day) == 7
    html = response.content.decode()
    assert timeout.group.get_absolute_url() in html and "<svg" in html and ">new<" in html
    # Bounded: the same few queries whatever the number of groups or failures (and the
    # catalog's revision, whose filters are drawn here the first time, served after).
    assert len(queries.captured_queries) <= 11


def test_a_window_without_failures_says_so(viewer_client):
    html = viewer_client.get("/failures/").content.decode()
    assert '<td colspan="10">No failures in this window.</td>' in html


def test_the_filters_are_drawn_once_per_revision_of_the_catalog(
    viewer_client, django_capture_on_commit_callbacks
):
    schedule = make_schedule(title="Checkout nightly")
    viewer_client.get("/failures/")
    with CaptureQueriesContext(connection) as again:
        html = viewer_client.get("/failures/").content.decode()
    assert f'<option value="{schedule.pk}">Checkout nightly</option>' in html
    read = " ".join(query["sql"] for query in again.captured_queries)
    assert "runs_schedule" not in read and "runs_agent" not in read
    with django_capture_on_commit_callbacks(execute=True):
        make_agent(schedule.orchestrator, title="Agent 7")
        revision_bump(catalog=True)  # as a pass that finds an agent does
    assert ">Agent 7</option>" in viewer_client.get("/failures/").content.decode()


def test_the_window_and_places_filter_the_groups(viewer_client, two_causes):
    w = two_causes
    month = viewer_client.get("/failures/?window=30d").context["groups"]
    assert [row.results for row in month] == [3, 2]
    only_ts = viewer_client.get(f"/failures/?orchestrator={w.ts.orchestrator.name}").context[
        "groups"
    ]
    assert [row.results for row in only_ts] == [1]
    by_agent = viewer_client.get(f"/failures/?agent={w.agents[0].pk}").context["groups"]
    assert [row.results for row in by_agent] == [2]
    by_schedule = viewer_client.get(f"/failures/?schedule={w.leap.pk}&window=30d").context["groups"]
    assert [row.results for row in by_schedule] == [2, 2]


def test_a_place_filter_counts_one_orchestrator_without_joining_each_failure_to_its_case(
    viewer_client, two_causes
):
    """The timeout struck two orchestrators; filtered to one orchestrator, schedule or agent,
    its failures are of one (an agent's, of one agent), which is not counted again."""
    w = two_causes
    places = [
        f"orchestrator={w.ts.orchestrator.name}",
        f"schedule={w.leap.pk}",
        f"agent={w.agents[0].pk}",
    ]
    for place in places:
        with CaptureQueriesContext(connection) as queries:
            rows = viewer_client.get(f"/failures/?window=30d&{place}").context["groups"]
        reach = next(q["sql"] for q in queries.captured_queries if "COUNT(DISTINCT" in q["sql"])
        assert "runs_testcase" not in reach, place
        assert rows and all(row.orchestrators == 1 for row in rows), place
    timeout = next(row for row in rows if row.group.normalized.startswith("Timeout"))
    assert (timeout.results, timeout.runs, timeout.cases, timeout.agents) == (2, 2, 1, 1)


@pytest.mark.parametrize(
    "query", ["window=never", "agent=x", "schedule=99999999999999999999", "orchestrator=%00"]
)
def test_bad_filters_are_ignored_not_errors(viewer_client, two_causes, query):
    response = viewer_client.get(f"/failures/?{query}")
    assert response.status_code == 200
    assert [row.results for row in response.context["groups"]] == [3, 1]


def test_a_group_page_shows_its_reach_and_newest_failures(viewer_client, two_causes):
    w = two_causes
    group = FailureGroup.objects.get(normalized__startswith="Timeout")
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get(group.get_absolute_url())
    assert response.status_code == 200
    # Session, user, its permissions (two), group (with whether it was ever muted or rerun),
    # examples (their runs' schedules joined, not one query each), three spreads (the count
    # summed from them): whatever the examples. Never muted nor rerun, it reads neither.
    assert len(queries.captured_queries) <= 9
    assert not [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith(('SELECT "runs_failuremute"', 'SELECT "runs_rerunbatch"'))
    ]
    detail = response.context["detail"]
    assert detail.total == 3
    assert {row["test_case__title"]: row["n"] for row in detail.cases} == {
        "Checkout": 2,
        "Login": 1,
    }
    assert {row["agent__title"]: row["n"] for row in detail.agents} == {"win-1": 2, "m-2": 1}
    assert {row["run__schedule_id"] for row in detail.schedules} == {w.leap.pk, w.ts.pk}
    html = response.content.decode()
    assert escape(group.normalized) in html and "on 10.0.0.2" in html  # explained, an example
    assert viewer_client.get("/failures/999999/").status_code == 404


def test_the_groups_page_needs_a_login(client):
    response = client.get("/failures/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_failures_of_three_orchestrators_show_a_shared_cause(viewer_client):
    with synced("leapwork"), synced("conductor"), synced("testsigma"):
        pass
    rows = viewer_client.get("/failures/?window=30d").context["groups"]
    assert any(row.orchestrators > 1 for row in rows)


def test_the_run_page_tells_new_failures_from_known_ones(viewer_client):
    leap = make_schedule()
    case = make_test_case(leap.orchestrator, title="Checkout")
    other = make_test_case(leap.orchestrator, title="Login")
    # Synced in another order than they ran: "new" goes by start, not by the order found.
    later = failing(leap, "Timeout after 3s on #pay", days_ago=1, case=case)
    earlier = failing(leap, "Timeout after 9s on #pay", days_ago=2, case=case)
    first_of_login = failing(leap, "Timeout after 5s on #pay", days_ago=1, case=other)
    # The same cause on another schedule does not make it known on this one.
    failing(make_schedule(leap.orchestrator), "Timeout after 1s on #pay", days_ago=3)
    fingerprints_refresh()
    group = FailureGroup.objects.get()

    def cause_of(result) -> str:
        html = viewer_client.get(result.run.get_absolute_url()).content.decode()
        row = html[html.index(f'id="result-{result.pk}"') :]
        row = row[: row.index("</tr>")]
        assert f'href="{group.get_absolute_url()}"' in row
        return "new" if '<span class="badge new">new</span>' in row else "known"

    assert cause_of(earlier) == "new"
    assert cause_of(later) == "known"
    assert cause_of(first_of_login) == "new"


def test_the_run_page_reads_causes_in_two_queries_whatever_their_number(viewer_client):
    schedule = make_schedule()
    run = make_run(schedule, status=Status.FAILED)
    for n in range(20):
        case = make_test_case(schedule.orchestrator)
        make_result(run, status=Status.FAILED, message=f"Cause {n % 7}: timeout", test_case=case)
    with CaptureQueriesContext(connection) as before:
        viewer_client.get(run.get_absolute_url())
    fingerprints_refresh()
    with CaptureQueriesContext(connection) as after:
        html = viewer_client.get(run.get_absolute_url()).content.decode()
    assert html.count('<span class="badge new">new</span>') == 20
    # The groups with their mutes in force, and the earlier failures of the same cases.
    assert len(after.captured_queries) == len(before.captured_queries) + 2


def test_the_overview_leads_with_causes_new_today(viewer_client, two_causes):
    html = viewer_client.get("/").content.decode()
    timeout = FailureGroup.objects.get(normalized__startswith="Timeout")
    element = FailureGroup.objects.get(normalized__startswith="Element")  # failed 10 days ago
    assert html.index("New failures") < html.index("Failing schedules")
    assert f'id="new-cause-{timeout.pk}"' in html
    assert f'id="new-cause-{element.pk}"' not in html


def test_rerun_a_cause_from_its_page_preview_then_send(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, _orchestrator):
        widest = (
            ExecutionResult.objects.exclude(fingerprint="")
            .values("fingerprint")
            .annotate(n=Count("id"))
            .order_by("-n", "fingerprint")
        )
        group = FailureGroup.objects.get(fingerprint=widest[0]["fingerprint"])
        page = client.get(group.get_absolute_url()).content.decode()
        url = reverse("runs:cause_rerun", args=[group.pk])
        assert f'href="{url}"' in page and "Not rerun yet" in page

        preview = client.get(url, {"window": "30d"})
        assert preview.status_code == 200
        plan = preview.context["plan"]
        html = preview.content.decode()
        assert plan.reruns and "Send" in html and vendor_writes(server) == []
        data = {
            "window": "30d",
            "idempotency_key": str(preview.context["form"].initial["idempotency_key"]),
            "plan_digest": plan.digest,
        }
        sent = client.post(url, data)
        batch = RerunBatch.objects.get()
        assert sent.status_code == 302
        assert sent["Location"] == f"{group.get_absolute_url()}#batch-{batch.pk}"
        assert client.post(url, data).status_code == 302  # again: the same batch
        assert RerunBatch.objects.count() == 1
        deliver_pending()
        page = client.get(group.get_absolute_url()).content.decode()
        assert f'id="batch-{batch.pk}"' in page and "Accepted" in page

        changed = client.post(
            url, {**data, "idempotency_key": str(uuid.uuid4()), "plan_digest": "x"}
        )
        assert changed.status_code == 409 and "nothing was sent" in changed.content.decode()
        expired = client.post(url, {**data, "idempotency_key": "not-a-key"})
        assert expired.status_code == 400
    assert RerunBatch.objects.count() == 1


def test_a_viewer_can_neither_preview_nor_send_a_cause_rerun(viewer_client, two_causes):
    group = FailureGroup.objects.get(normalized__startswith="Timeout")
    url = reverse("runs:cause_rerun", args=[group.pk])
    assert f'href="{url}"' not in viewer_client.get(group.get_absolute_url()).content.decode()
    assert viewer_client.get(url).status_code == 403
    assert viewer_client.post(url, {"window": "7d"}).status_code == 403


def test_a_cause_whose_reruns_pass_is_flaky_and_one_whose_reruns_fail_persistent(viewer_client):
    schedule = make_schedule()
    checkout, login = (make_test_case(schedule.orchestrator, title=t) for t in ("Co", "Li"))

    def failed_then(message: str, case, rerun_status: str | None) -> None:
        result = failing(schedule, message, case=case)
        if rerun_status:
            again = make_run(schedule, rerun_of=result.run, status=rerun_status)
            make_result(again, test_case=case, status=rerun_status, message=message)

    failed_then("Timeout after 3s on #pay", checkout, Status.PASSED)
    failed_then("Timeout after 4s on #pay", login, Status.PASSED)
    failed_then("Timeout after 5s on #pay", login, None)  # not rerun: not counted
    failed_then("Element 'x' not found", checkout, Status.FAILED)
    fingerprints_refresh()
    rows = {r.group.normalized[:7]: r for r in viewer_client.get("/failures/").context["groups"]}
    timeout, element = rows["Timeout"], rows["Element"]
    assert (timeout.rerun, timeout.cleared, timeout.rerun_verdict) == (2, 2, "flaky")
    # The rerun's own failure counts as a failure of the cause, not rerun itself.
    assert (element.results, element.rerun, element.cleared) == (2, 1, 0)
    assert element.rerun_verdict == "persistent"
