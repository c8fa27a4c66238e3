"""Inputs that once made a server error (issue 14, point 5): each is now a clear 4xx or a
form error, and changes nothing."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from runs.models import Orchestrator, RerunRequest, Run
from runs.status import Status
from tests.emulated import emulated, vendor_writes
from tests.factories import (
    make_agent,
    make_orchestrator,
    make_result,
    make_run,
    make_schedule,
    make_test_case,
    make_user,
)

pytestmark = pytest.mark.django_db

# Nothing listens on the discard port: a request that got that far would fail to connect.
NOWHERE = "http://127.0.0.1:9"
HUGE = "99999999999999999999"  # beyond a bigint


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    return client


def failed_run_of(kind: str) -> Run:
    schedule = make_schedule(make_orchestrator(kind, base_url=NOWHERE))
    run = make_run(schedule, status=Status.FAILED)
    case = make_test_case(schedule.orchestrator)
    agent = make_agent(schedule.orchestrator)
    make_result(run, test_case=case, agent=agent, status=Status.FAILED, case_key=case.external_id)
    return run


def preview_then_send(client, url: str, data: dict) -> list:
    """Preview, then send what was previewed (when the preview offered to send it)."""
    preview = client.post(url, {**data, "action": "preview"})
    responses = [preview]
    match = re.search(r'name="plan_digest" value="([0-9a-f]{64})"', preview.content.decode())
    if match:
        send = {**data, "plan_digest": match.group(1), "action": "send"}
        responses.append(client.post(url, send))
    return responses


def assert_refused(responses: list, message: str) -> None:
    for response in responses:
        assert response.status_code < 500
    assert message in responses[-1].content.decode()
    assert not RerunRequest.objects.exists(), "a refused input records nothing"


# JSON fields of the rerun and run-now forms -----------------------------------------------

# Deep enough for Python's JSON parser to give up, within the size limit.
NESTED = "[" * 30_000 + "]" * 30_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": ' + NESTED + "}", "nested too deeply"),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nested too deeply"),
        ('{"a": ' + '{"b": ' * 40 + "1" + "}" * 40 + "}", "nested too deeply"),
        ('{"a": ' + "1" * 5_000 + "}", "not valid JSON"),
        ('{"a": NaN}', "NaN"),
        ('{"a": Infinity}', "Infinity"),
        ('{"a": -Infinity}', "Infinity"),
        ('{"a": 1e999}', "Infinity"),
        ('{"a": "nul \\u0000 inside"}', "NUL"),
        ('{"a\\u0000": 1}', "NUL"),
        ('{"a": "\\ud800"}', "surrogate"),
    ],
)
def test_it_refuses_workflow_input_that_cannot_be_stored(rerunner_client, text, message):
    run = failed_run_of("conductor")
    url = reverse("runs:rerun", args=[run.pk])
    data = {"idempotency_key": "k1", "scope": "all", "workflow_input": text}
    assert_refused(preview_then_send(rerunner_client, url, data), message)


def test_it_refuses_deeply_nested_input_on_run_now(rerunner_client):
    schedule = make_schedule(make_orchestrator("conductor", base_url=NOWHERE))
    url = reverse("runs:run_now", args=[schedule.pk])
    data = {"idempotency_key": "k1", "workflow_input": '{"a": ' + NESTED + "}"}
    assert_refused(preview_then_send(rerunner_client, url, data), "nested too deeply")


def test_it_refuses_a_json_text_over_the_size_limit(rerunner_client):
    schedule = make_schedule(make_orchestrator("conductor", base_url=NOWHERE))
    url = reverse("runs:run_now", args=[schedule.pk])
    data = {"idempotency_key": "k1", "workflow_input": '{"a": "' + "x" * 200_000 + '"}'}
    assert_refused(preview_then_send(rerunner_client, url, data), "at most")


# Variables of the rerun and run-now forms -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Browser", "x" * 70_000, "too long"),
        ("B" * 70_000, "firefox", "too long"),
        ("Browser", "fire\x00fox", "NUL"),
        ("Brow\x00ser", "firefox", "NUL"),
    ],
)
def test_it_refuses_variables_that_cannot_be_sent_before_recording(
    rerunner_client, name, value, message
):
    schedule = make_schedule(make_orchestrator("leapwork", base_url=NOWHERE))
    url = reverse("runs:run_now", args=[schedule.pk])
    data = {"idempotency_key": "k1", "var_name": [name], "var_value": [value]}
    assert_refused(preview_then_send(rerunner_client, url, data), message)


def test_it_refuses_variables_too_long_together(rerunner_client):
    run = failed_run_of("leapwork")
    url = reverse("runs:rerun", args=[run.pk])
    names = [f"Var{i}" for i in range(40)]
    data = {
        "idempotency_key": "k1",
        "scope": "all",
        "var_name": names,
        "var_value": ["é" * 1_500] * len(names),
    }
    assert_refused(preview_then_send(rerunner_client, url, data), "too long")


# Connecting an orchestrator ---------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["https://☃.example", "https://xn--.example", "https://\uff21\uff22\uff23.example"]
)
def test_the_connect_form_refuses_a_base_url_httpx_cannot_use(staff_client, base_url):
    data = {"kind": "leapwork", "name": "lab", "base_url": base_url, "credential": "key"}
    response = staff_client.post(reverse("runs:orchestrator_connect"), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "cannot be used for HTTP requests" in page or "Enter a valid URL" in page
    assert not Orchestrator.objects.exists()


@pytest.mark.parametrize("credential", ["ключ", "café", "a\nb", "a\x7fb"])
def test_the_connect_form_refuses_a_credential_that_cannot_go_in_a_header(staff_client, credential):
    with emulated("leapwork") as (_app, server):
        data = {
            "kind": "leapwork",
            "name": "lab",
            "base_url": server.base_url,
            "credential": credential,
        }
        response = staff_client.post(reverse("runs:orchestrator_connect"), data)
        assert response.status_code == 200
        assert "printable ASCII" in response.content.decode()
        assert not Orchestrator.objects.exists()
        assert server.app.requests() == [], "refused before anything is sent"


def test_the_admin_form_refuses_what_the_connect_form_refuses(staff_client):
    with emulated("leapwork") as (_app, server):
        url = reverse("admin:runs_orchestrator_add")
        data = {"kind": "leapwork", "name": "lab", "test_plan_ids": "[]", "enabled": "on"}
        bad_url = staff_client.post(
            url, {**data, "base_url": "https://☃.example", "credential": "key"}
        )
        bad_key = staff_client.post(
            url, {**data, "base_url": server.base_url, "credential": "ключ"}
        )
        for response in (bad_url, bad_key):
            assert response.status_code == 200
        assert "cannot be used" in bad_url.content.decode()
        assert "printable ASCII" in bad_key.content.decode()
        assert not Orchestrator.objects.exists()


# Tracking a run ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["leapwork", "conductor", "testsigma"])
@pytest.mark.parametrize("run_id", ["abc\ndef", "a\x7fb", "x" * 199])
def test_tracking_an_odd_run_id_is_a_form_error(viewer_client, kind, run_id):
    orchestrator = make_orchestrator(kind, base_url=NOWHERE)
    data = {"orchestrator": orchestrator.pk, "run_id": run_id}
    response = viewer_client.post(reverse("runs:track_run"), data)
    assert response.status_code == 422
    assert not Run.objects.exists()


# Page parameters --------------------------------------------------------------------------


@pytest.fixture
def history():
    schedule = make_schedule()
    agent = make_agent(schedule.orchestrator)
    case = make_test_case(schedule.orchestrator)
    run = make_run(schedule)
    make_result(run, test_case=case, agent=agent)
    return run, case, agent


@pytest.mark.parametrize(
    "query",
    [
        "date_to=9999-12-31",
        "date_from=9999-12-31",
        "date_from=0001-01-01",
        "date_to=0001-01-01",
        f"after={HUGE}_1",
        f"before={HUGE}_1",
        f"after=1_{HUGE}",
        f"after=-{HUGE}_-{HUGE}",
        f"sort=duration&after={HUGE}_1",
        "sort=duration&after=86399999999999999999_1",
        "sort=-duration&before=86399999999999999_1",
        f"sort=duration&after=n_{HUGE}",
        f"agent={HUGE}",
        f"schedule={HUGE}",
        "schedule=-1",
    ],
)
def test_the_history_ignores_out_of_range_values(viewer_client, history, query):
    response = viewer_client.get(f"{reverse('runs:list')}?{query}")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query",
    [f"agent={HUGE}", f"agent=-{HUGE}", f"after={HUGE}_1", f"after=1_{HUGE}", f"before=1_{HUGE}"],
)
def test_the_run_page_ignores_out_of_range_values(viewer_client, history, query):
    run, _case, _agent = history
    response = viewer_client.get(f"{run.get_absolute_url()}?{query}")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query", [f"from={HUGE}", f"from=-{HUGE}", f"after={HUGE}_1", f"before=1_{HUGE}"]
)
def test_the_case_page_ignores_out_of_range_values(viewer_client, history, query):
    _run, case, _agent = history
    response = viewer_client.get(f"{reverse('runs:test_case', args=[case.pk])}?{query}")
    assert response.status_code == 200


@pytest.mark.parametrize("query", [f"after={HUGE}_1", f"before=1_{HUGE}"])
def test_the_schedule_page_ignores_out_of_range_values(viewer_client, history, query):
    run, _case, _agent = history
    response = viewer_client.get(f"{reverse('runs:schedule', args=[run.schedule_id])}?{query}")
    assert response.status_code == 200


@pytest.mark.parametrize("external_id", ["%00", "a%00b", "x" * 2_000])
def test_go_answers_404_for_an_id_that_cannot_be_one(viewer_client, history, external_id):
    run, _case, _agent = history
    response = viewer_client.get(f"/go/{run.orchestrator.name}/{external_id}")
    assert response.status_code == 404
    assert "No run" in response.content.decode() or "not" in response.content.decode()


@pytest.mark.parametrize("pk", [HUGE, "9223372036854775808"])
def test_ids_beyond_a_bigint_in_the_path_are_404(viewer_client, pk):
    for path in (f"/runs/{pk}/", f"/cases/{pk}/", f"/schedules/{pk}/", f"/reruns/{pk}/"):
        assert viewer_client.get(path).status_code == 404


def test_nothing_refused_reached_a_vendor(rerunner_client):
    """The refusals above happen before any request: a real emulator sees no write."""
    with emulated("leapwork") as (_app, server):
        orchestrator = Orchestrator.objects.create(
            kind="leapwork", name="lab", base_url=server.base_url, credential="leap-key"
        )
        schedule = make_schedule(orchestrator)
        url = reverse("runs:run_now", args=[schedule.pk])
        data = {"idempotency_key": "k1", "var_name": ["Browser"], "var_value": ["x" * 70_000]}
        responses = preview_then_send(rerunner_client, url, data)
        assert all(response.status_code < 500 for response in responses)
        assert vendor_writes(server) == []
        assert not RerunRequest.objects.exists()


@pytest.mark.parametrize(
    "picks",
    [
        {"scope": "all", "where": "chosen", "agents": [HUGE]},
        {"scope": "picked", "cases": [HUGE]},
        {"scope": "picked", "cases": ["-" + HUGE]},
    ],
)
def test_picked_ids_beyond_a_bigint_are_form_errors(rerunner_client, picks):
    """Found by the property tests: the picked ids went to the database unchecked."""
    run = failed_run_of("leapwork")
    url = reverse("runs:rerun", args=[run.pk])
    response = rerunner_client.post(url, {"idempotency_key": "k1", "action": "preview", **picks})
    assert response.status_code == 200
    assert not RerunRequest.objects.exists()
