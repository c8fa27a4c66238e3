"""Issue 15: muting a cause: who may, what it changes (the overview's failing flag, the pages'
grey) and what it leaves alone (stored counts); every mute and lift recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import FailureGroup, FailureMute, Run
from runs.services.failure_groups import fingerprints_refresh
from runs.status import Status
from tests.factories import make_agent, make_result, make_run, make_schedule, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing_schedule():
    """A schedule whose latest run failed for one cause on one agent."""
    schedule = make_schedule(title="Nightly checkout")
    agent = make_agent(schedule.orchestrator, title="win-1")
    run = make_run(schedule, status=Status.FAILED, failed_count=1)
    make_result(run, status=Status.FAILED, agent=agent, message="Timeout after 30s on #pay")
    fingerprints_refresh()
    return schedule, agent, run, FailureGroup.objects.get()


def failing_on_overview(client, schedule) -> bool:
    return f'id="schedule-{schedule.pk}"' in client.get("/").content.decode()


def mute(client, group, **fields):
    return client.post(f"/failures/{group.pk}/mute/", {"reason": "known outage", **fields})


def test_a_rerunner_mutes_a_cause_and_the_schedule_stops_failing(client, failing_schedule):
    schedule, _agent, run, group = failing_schedule
    client.force_login(make_user("ana", rerunner=True))
    assert failing_on_overview(client, schedule)

    response = mute(client, group)
    assert response.status_code == 302 and response["Location"] == group.get_absolute_url()
    assert not failing_on_overview(client, schedule)
    # Shown still, greyed; the stored counts are untouched.
    html = client.get(run.get_absolute_url()).content.decode()
    assert '<span class="badge muted-badge">muted</span>' in html
    assert Run.objects.get(pk=run.pk).failed_count == 1
    listed = client.get("/failures/?status=muted").context["groups"]
    assert [row.group for row in listed] == [group] and listed[0].muted
    assert client.get("/failures/?status=new").context["groups"][0].muted

    (record,) = FailureMute.objects.all()
    assert record.muted_by.username == "ana" and record.reason == "known outage"
    lifted = client.post(f"/failures/{group.pk}/mutes/{record.pk}/lift/")
    assert lifted.status_code == 302 and failing_on_overview(client, schedule)
    assert "muted-badge" not in client.get(run.get_absolute_url()).content.decode()
    record.refresh_from_db()
    assert record.lifted_by.username == "ana" and record.lifted_at is not None
    page = client.get(group.get_absolute_url()).content.decode()
    assert "known outage" in page and "ana" in page  # the record stays


def test_a_mute_for_another_schedule_or_agent_leaves_this_one_failing(client, failing_schedule):
    schedule, agent, run, group = failing_schedule
    client.force_login(make_user("ana", rerunner=True))
    elsewhere = make_schedule(schedule.orchestrator)
    other_agent = make_agent(schedule.orchestrator, title="mac-2")
    # Only schedules and agents where the cause struck may be named.
    assert mute(client, group, schedule=elsewhere.pk).status_code == 400
    FailureMute.objects.create(group=group, schedule=elsewhere, reason="x")
    FailureMute.objects.create(group=group, agent=other_agent, reason="x")
    assert failing_on_overview(client, schedule)
    assert "muted-badge" not in client.get(run.get_absolute_url()).content.decode()
    assert mute(client, group, schedule=schedule.pk, agent=agent.pk).status_code == 302
    assert not failing_on_overview(client, schedule)


def test_a_mute_that_expired_needs_no_rewrite(client, failing_schedule):
    schedule, _agent, _run, group = failing_schedule
    client.force_login(make_user("ana", rerunner=True))
    FailureMute.objects.create(group=group, reason="x", until=timezone.now() - timedelta(hours=1))
    assert failing_on_overview(client, schedule)


def test_a_run_failing_also_for_an_unmuted_cause_stays_failing(client, failing_schedule):
    schedule, _agent, run, group = failing_schedule
    client.force_login(make_user("ana", rerunner=True))
    make_result(run, status=Status.FAILED, message="Element #login not found")
    fingerprints_refresh()
    mute(client, group)
    assert failing_on_overview(client, schedule)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"reason": ""}, "This field is required"),
        ({"reason": "two\nlines"}, "Say why"),
        ({"until": "2000-01-01"}, "after today"),
        ({"until": "9999-12-31"}, "after today"),
        ({"until": "soon"}, "Enter a valid date"),
        ({"agent": "x"}, "Select a valid choice"),
    ],
)
def test_bad_mutes_are_refused_clearly_and_change_nothing(client, failing_schedule, fields, error):
    group = failing_schedule[3]
    client.force_login(make_user("ana", rerunner=True))
    response = mute(client, group, **fields)
    assert response.status_code == 400 and error in response.content.decode()
    assert not FailureMute.objects.exists()


def test_only_those_who_may_mute_see_the_form_and_can_post(client, failing_schedule):
    group = failing_schedule[3]
    client.force_login(make_user("vic"))
    assert 'id="mute-form"' not in client.get(group.get_absolute_url()).content.decode()
    assert mute(client, group).status_code == 403
    record = FailureMute.objects.create(group=group, reason="x")
    assert client.post(f"/failures/{group.pk}/mutes/{record.pk}/lift/").status_code == 403
    assert FailureMute.objects.active().count() == 1
    assert client.get(f"/failures/{group.pk}/mute/").status_code in (403, 405)


def test_the_form_offers_every_schedule_and_agent_it_struck_not_only_the_widest_shown(
    client, failing_schedule
):
    """The page shows the 20 widest places; the form offers all of them, by title, from the
    same grouped reads (no second pass over the cause's failures)."""
    _schedule, _agent, _run, group = failing_schedule
    struck = []
    for n in range(22):
        schedule = make_schedule(title=f"Suite {n:02}")
        agent = make_agent(schedule.orchestrator, title=f"agent-{n:02}")
        run = make_run(schedule, status=Status.FAILED, failed_count=1)
        make_result(run, status=Status.FAILED, agent=agent, message="Timeout after 30s on #pay")
        struck.append((schedule, agent))
    fingerprints_refresh()
    client.force_login(make_user("ana", rerunner=True))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(group.get_absolute_url())
    # Its spreads (cases, agents, schedules) and examples, the count summed from the agents'
    # rows; the form reads neither the schedules nor the agents again.
    sqls = [q["sql"] for q in queries.captured_queries]
    assert len([sql for sql in sqls if "runs_executionresult" in sql]) == 4
    assert not [sql for sql in sqls if 'FROM "runs_schedule"' in sql or 'FROM "runs_agent"' in sql]
    detail, form = response.context["detail"], response.context["mute_form"]
    assert detail.total == 23 and "23 failures in the last 30 days" in response.content.decode()
    assert len(detail.schedules) == len(detail.agents) == 20
    offered = [label for _value, label in form.fields["schedule"].widget.drawn_choices()]
    assert offered == ["Every schedule", "Nightly checkout", *(f"Suite {n:02}" for n in range(22))]
    agents = [label for _value, label in form.fields["agent"].widget.drawn_choices()]
    assert agents == ["Every agent", *(f"agent-{n:02}" for n in range(22)), "win-1"]
    last_schedule, last_agent = struck[-1]
    html = response.content.decode()
    assert f'<option value="{last_schedule.pk}">Suite 21</option>' in html
    sent = mute(client, group, schedule=last_schedule.pk, agent=last_agent.pk)
    assert sent.status_code == 302
    assert FailureMute.objects.get().schedule == last_schedule
