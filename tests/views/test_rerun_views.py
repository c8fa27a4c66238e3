"""The rerun forms over HTTP: preview first, then send; htmx and plain POST alike."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from runs.models import OrchestratorKind, RerunRequest, RerunState, Run, Trigger
from runs.status import Status
from runs.templatetags.reruns import PREVIEW_LISTED
from tests.emulated import emulator_control, failed_run, synced, vendor_writes
from tests.factories import make_orchestrator, make_result, make_run, make_schedule, make_user
from tests.sending import deliver_pending

pytestmark = pytest.mark.django_db


def form_data(page: str) -> dict[str, str]:
    """The idempotency key the form was rendered with."""
    match = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert match, "the rerun form carries an idempotency key"
    return {"idempotency_key": match.group(1)}


def previewed(client, url: str, data: dict, **extra) -> dict:
    """The form's data after a Preview, with the digest that binds Send to that preview."""
    page = client.post(url, {**data, "action": "preview"}, **extra).content.decode()
    match = re.search(r'name="plan_digest" value="([0-9a-f]{64})"', page)
    assert match, "the preview carries its plan's digest"
    return {**data, "plan_digest": match.group(1), "action": "send"}


def test_a_viewer_sees_no_rerun_form_and_the_server_refuses_them(client):
    client.force_login(make_user("viewer"))
    with synced("leapwork") as (server, orchestrator):
        run = failed_run(orchestrator)
        page = client.get(run.get_absolute_url()).content.decode()
        assert 'id="rerun-form"' not in page
        assert "Rerunners" in page
        response = client.post(
            reverse("runs:rerun", args=[run.pk]), {"scope": "all", "action": "send"}
        )
        assert response.status_code == 403
        assert vendor_writes(server) == []


def test_the_run_page_offers_failed_only_each_case_on_the_agent_it_ran_on(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (_server, orchestrator):
        run = failed_run(orchestrator)
        page = client.get(run.get_absolute_url()).content.decode()
        assert 'id="rerun-form"' in page
        assert re.search(r'value="failed"[^>]*checked', page)
        assert re.search(r'name="where" value="own"[^>]*checked', page)
        assert "Each case on the agent it ran on" in page and "On these agents" in page
        assert not re.search(r'name="agents" value="\d+"[^>]*checked', page)
        assert 'name="var_name"' in page


def test_preview_then_send_lands_on_the_request_with_its_runs(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, orchestrator):
        run = failed_run(orchestrator)
        other = (
            orchestrator.agents.exclude(pk__in=run.results.values("agent")).first()
            or orchestrator.agents.first()
        )
        url = reverse("runs:rerun", args=[run.pk])
        data = {
            **form_data(client.get(run.get_absolute_url()).content.decode()),
            "scope": "failed",
            "agents": [other.pk],
            "var_name": ["Browser", ""],
            "var_value": ["firefox", ""],
        }
        preview = client.post(url, {**data, "action": "preview"})
        page = preview.content.decode()
        assert preview.status_code == 200
        assert "Preview: failed only" in page and other.title in page
        assert f"/agent/{other.external_id}?isDelete=true&amp;Browser=firefox" in page
        assert 'value="send"' in page
        assert vendor_writes(server) == [], "a preview sends nothing"

        data = previewed(client, url, data)
        sent = client.post(url, data)
        request = RerunRequest.objects.get()
        # Recorded and handed to the rerun worker: the page answers before anything is sent.
        assert request.state == RerunState.PENDING and vendor_writes(server) == []
        assert sent.status_code == 302
        assert sent["Location"] == f"{request.get_absolute_url()}?follow=1"
        waiting = client.get(sent["Location"]).content.decode()
        assert "Sending: 0 of" in waiting and 'hx-trigger="every 1s"' in waiting
        # Sent again while the worker is at it (one run made, more to come): the request.
        RerunRequest.objects.filter(pk=request.pk).update(state=RerunState.SENDING)
        first = make_run(run.schedule, rerun_request=request, rerun_of=run, status="running")
        assert client.post(url, data)["Location"] == sent["Location"]
        first.delete()
        RerunRequest.objects.filter(pk=request.pk).update(state=RerunState.PENDING)

        deliver_pending()
        request.refresh_from_db()
        assert request.state == RerunState.ACCEPTED
        runs = list(request.runs.all())
        expected = runs[0].get_absolute_url() if len(runs) == 1 else request.get_absolute_url()
        assert all(r.rerun_of_id == run.pk for r in runs)

        again = client.post(url, data)
        assert again.status_code == 302 and again["Location"] == expected
        assert RerunRequest.objects.count() == 1
        writes = len(vendor_writes(server))
        assert writes == len(runs)

        audit = client.get(run.get_absolute_url()).content.decode()
        assert "by ana" in audit and "failed only" in audit


def test_htmx_submissions_answer_with_a_client_redirect(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (_server, orchestrator):
        run = failed_run(orchestrator)
        data = {**form_data(client.get(run.get_absolute_url()).content.decode()), "scope": "all"}
        url = reverse("runs:rerun", args=[run.pk])
        htmx = {"headers": {"HX-Request": "true"}}
        response = client.post(url, previewed(client, url, data, **htmx), **htmx)
        assert response.status_code == 200
        request = RerunRequest.objects.get()
        assert response["HX-Redirect"] == f"{request.get_absolute_url()}?follow=1"
        # The request's page polls while it is sent, then goes on to the run it made.
        poll = client.get(response["HX-Redirect"], **htmx)
        assert poll.status_code == 200 and "HX-Redirect" not in poll
        deliver_pending()
        new_run = Run.objects.get(rerun_of=run)
        followed = client.get(response["HX-Redirect"], **htmx)
        assert followed["HX-Redirect"] == new_run.get_absolute_url()
        # Opened later as a permalink, the page stays.
        assert "HX-Redirect" not in client.get(request.get_absolute_url(), **htmx)


def test_errors_appear_next_to_their_fields_with_the_values_kept(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, orchestrator):
        run = failed_run(orchestrator)
        data = {
            **form_data(client.get(run.get_absolute_url()).content.decode()),
            "scope": "picked",
            "var_name": ["Browser", "Browser"],
            "var_value": ["firefox", "chrome"],
            "action": "send",
        }
        page = client.post(reverse("runs:rerun", args=[run.pk]), data).content.decode()
        assert "is given twice" in page
        assert 'value="chrome"' in page
        assert vendor_writes(server) == [] and RerunRequest.objects.count() == 0


def test_a_refusal_is_shown_with_nothing_lost_and_the_form_a_click_away(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, orchestrator):
        run = failed_run(orchestrator)
        emulator_control(
            server, "faults", {"path": "reRunOnAgents", "error_rate": 1.0, "status": 500}
        )
        first = form_data(client.get(run.get_absolute_url()).content.decode())
        url = reverse("runs:rerun", args=[run.pk])
        data = previewed(
            client, url, {**first, "scope": "all", "var_name": ["Env"], "var_value": ["qa"]}
        )
        client.post(url, data)
        deliver_pending()
        request = RerunRequest.objects.get()
        assert request.state == RerunState.FAILED
        page = client.get(request.get_absolute_url()).content.decode()
        assert "refused it; nothing ran" in page and "HTTP 500" in page
        assert f'href="{url}"' in page, "the rerun form, to change it and send again"
        assert form_data(client.get(url).content.decode()) != first, "a fresh key there"
        assert len(vendor_writes(server)) == 1


def test_conductor_reruns_from_a_task_with_edited_input_through_the_form(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("conductor") as (server, orchestrator):
        run = failed_run(orchestrator)
        task = run.results.filter(status="failed").first()
        page = client.get(run.get_absolute_url()).content.decode()
        assert 'name="agents"' not in page, "Conductor workers are shown, not pickable"
        data = {
            **form_data(page),
            "scope": "from_task",
            "cases": [task.pk],
            "task_input": '{"attempts": 2}',
        }
        url = reverse("runs:rerun", args=[run.pk])
        response = client.post(url, previewed(client, url, data))
        assert response["Location"].endswith("?follow=1")
        deliver_pending()
        attempt = Run.objects.get(external_id=run.external_id, attempt=run.attempt + 1)
        assert attempt.rerun_request.runs.get() == attempt
        (write,) = vendor_writes(server)
        assert write["body"]["taskInput"] == {"attempts": 2}


def test_malformed_task_input_is_refused_next_to_its_field(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("conductor") as (server, orchestrator):
        run = failed_run(orchestrator)
        data = {
            **form_data(client.get(run.get_absolute_url()).content.decode()),
            "scope": "from_task",
            "cases": [run.results.first().pk],
            "task_input": "{not json",
            "action": "preview",
        }
        page = client.post(reverse("runs:rerun", args=[run.pk]), data).content.decode()
        assert "not valid JSON" in page
        assert vendor_writes(server) == []


def test_run_now_with_variables_from_the_schedule_page(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, orchestrator):
        schedule = orchestrator.schedules.filter(is_temporary=False).first()
        page = client.get(schedule.get_absolute_url()).content.decode()
        assert 'id="run-now-panel"' in page
        url = reverse("runs:run_now", args=[schedule.pk])
        data = {**form_data(page), "var_name": ["Browser"], "var_value": ["edge"]}
        response = client.post(url, previewed(client, url, data))
        assert response["Location"] == f"{RerunRequest.objects.get().get_absolute_url()}?follow=1"
        deliver_pending()
        new_run = Run.objects.get(rerun_request__isnull=False)
        assert new_run.rerun_request.state == RerunState.ACCEPTED
        (write,) = vendor_writes(server)
        assert ("Browser", "edge") in write["query"]


def test_the_request_page_says_an_unknown_outcome_and_links_the_orchestrator(client, settings):
    settings.RUNBOARD_HTTP_TIMEOUT = 1.0
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, orchestrator):
        run = failed_run(orchestrator)
        emulator_control(server, "faults", {"path": "reRunOnAgents", "timeout": 3.0})
        data = {
            **form_data(client.get(run.get_absolute_url()).content.decode()),
            "scope": "all",
        }
        url = reverse("runs:rerun", args=[run.pk])
        response = client.post(url, previewed(client, url, data))
        deliver_pending()
        request = RerunRequest.objects.get()
        assert request.state == RerunState.UNKNOWN
        assert response["Location"] == f"{request.get_absolute_url()}?follow=1"
        page = client.get(request.get_absolute_url()).content.decode()
        assert "unknown" in page.lower() and orchestrator.base_url in page
        # Never a blind resend: the way on is to ask the orchestrator again.
        assert "Check again" in page and reverse("runs:rerun_check", args=[request.pk]) in page


def test_cases_are_picked_with_checkboxes_on_the_results_table(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, orchestrator):
        run = failed_run(orchestrator)
        page = client.get(run.get_absolute_url()).content.decode()
        # Two results of two different cases (a flow runs once on each agent of its step).
        first_of_each = {r.case_key: r for r in run.results.order_by("-seq", "-pk")}
        picked = sorted(first_of_each.values(), key=lambda r: (r.seq, r.pk))[:2]
        for result in picked:
            assert f'name="cases" value="{result.pk}" form="rerun-form"' in page
        assert 'name="cases_in_table" value="1"' in page
        data = {
            **form_data(page),
            "scope": "picked",
            "cases_in_table": "1",
            "cases": [picked[0].pk, picked[1].pk, picked[0].pk],
            "action": "preview",
        }
        preview = client.post(reverse("runs:rerun", args=[run.pk]), data).content.decode()
        assert "2 cases will run" in preview
        assert 'name="cases_in_table" value="1"' in preview, "the panel still defers to the table"
        assert vendor_writes(server) == []


# One verdict per rerun -----------------------------------------------------------------------


@pytest.fixture
def rerun_of_nine(user):
    """A failed run and an accepted failed-only rerun of it that made one run per case."""
    source = make_run(status=Status.FAILED, total_count=20, passed_count=11, failed_count=9)
    request = RerunRequest.objects.create(
        orchestrator=source.orchestrator,
        source_run=source,
        requested_by=user,
        scope="failed",
        state=RerunState.ACCEPTED,
        options={"summary": "failed only, 9 cases"},
    )
    for n in range(9):
        make_run(
            source.schedule,
            rerun_of=source,
            rerun_request=request,
            trigger=Trigger.RERUN,
            status=Status.QUEUED,
            finished_at=None,
            total_count=1,
            queued_count=1,
            external_id=f"rerun-{n}",
        )
    return source, request


def _finish(request: RerunRequest, *, passed: int) -> None:
    for n, run in enumerate(request.runs.order_by("external_id")):
        ok = n < passed
        run.status = Status.PASSED if ok else Status.FAILED
        run.queued_count, run.passed_count, run.failed_count = 0, int(ok), int(not ok)
        run.save()


def test_the_request_page_tells_sent_from_the_verdict_and_follows_it_live(
    viewer_client, rerun_of_nine
):
    _source, request = rerun_of_nine
    url = request.get_absolute_url()
    page = " ".join(viewer_client.get(url).content.decode().split())
    assert "Accepted" in page and "0 of 9 done so far" in page
    assert f'hx-get="{url}" hx-trigger="every 3s"' in page

    _finish(request, passed=7)
    response = viewer_client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 286  # over: polling stops
    fragment = " ".join(response.content.decode().split())
    assert "7 passed, 2 still failing" in fragment and "status-failed" in fragment


def test_the_source_run_says_how_its_rerun_ended_live(viewer_client, rerun_of_nine):
    source, request = rerun_of_nine
    page = " ".join(viewer_client.get(source.get_absolute_url()).content.decode().split())
    poll = reverse("runs:run_reruns", args=[source.pk])
    assert "After rerun" in page and "0 of 9 done so far" in page
    assert f'hx-get="{poll}" hx-trigger="every 3s"' in page

    assert viewer_client.get(poll, HTTP_HX_REQUEST="true").status_code == 200
    _finish(request, passed=9)
    response = viewer_client.get(poll, HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    assert "all 9 passed" in response.content.decode()


# A preview is what is sent ----------------------------------------------------------------------


def test_send_without_a_preview_sends_nothing_and_shows_the_preview(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, orchestrator):
        run = failed_run(orchestrator)
        data = {**form_data(client.get(run.get_absolute_url()).content.decode()), "scope": "failed"}
        page = client.post(reverse("runs:rerun", args=[run.pk]), {**data, "action": "send"})
        html = page.content.decode()
        assert "changed after its preview, so nothing was sent" in html
        assert "Preview: failed only" in html and 'name="plan_digest"' in html
        assert vendor_writes(server) == [] and not RerunRequest.objects.exists()


def test_a_send_whose_agents_changed_after_the_preview_is_refused(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (server, orchestrator):
        run = failed_run(orchestrator)
        other = orchestrator.agents.exclude(pk__in=run.results.values("agent")).first()
        url = reverse("runs:rerun", args=[run.pk])
        data = previewed(
            client,
            url,
            {**form_data(client.get(run.get_absolute_url()).content.decode()), "scope": "failed"},
        )
        changed = {**data, "where": "chosen", "agents": [other.pk]}
        html = client.post(url, changed).content.decode()
        assert "nothing was sent" in html and f"on {other.title}" in html
        assert vendor_writes(server) == [] and not RerunRequest.objects.exists()
        # The new preview's Send sends exactly that.
        resent = client.post(url, previewed(client, url, changed))
        assert resent.status_code == 302
        deliver_pending()
        assert {w["path"].rsplit("/", 1)[-1] for w in vendor_writes(server)} == {other.external_id}


def test_choosing_agents_without_checking_one_is_refused_clearly(client):
    client.force_login(make_user("ana", rerunner=True))
    with synced("leapwork") as (_server, orchestrator):
        run = failed_run(orchestrator)
        data = {
            **form_data(client.get(run.get_absolute_url()).content.decode()),
            "scope": "failed",
            "where": "chosen",
            "action": "preview",
        }
        html = client.post(reverse("runs:rerun", args=[run.pk]), data).content.decode()
        assert "Check at least one agent" in html and 'name="plan_digest"' not in html


def test_a_preview_lists_its_first_cases_and_calls_and_counts_the_rest(rerunner_client):
    """Every one is sent; a rerun of a big run's failures does not draw each of them."""
    run = make_run(make_schedule(make_orchestrator(OrchestratorKind.TESTSIGMA)), status="failed")
    for i in range(PREVIEW_LISTED + 20):
        make_result(run, case_key=f"case-{i:03d}", status="failed", seq=i)
    url = reverse("runs:rerun", args=[run.pk])
    data = form_data(rerunner_client.get(url).content.decode())

    page = rerunner_client.post(url, {**data, "scope": "failed", "action": "preview"})

    html = page.content.decode()
    assert f"{PREVIEW_LISTED + 20} cases will run" in html
    assert html.count("<li>case-") == PREVIEW_LISTED
    assert "and 20 more cases, which run too" in html
    assert 'name="plan_digest"' in html
