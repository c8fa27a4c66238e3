"""Who may call the API: a live token or a logged-in session (with CSRF); readers read,
Rerunners rerun; everyone else hears 401 or 403 as problem+json, never a login redirect."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.middleware.csrf import get_token
from django.test import Client
from django.utils import timezone

from runs.models import ApiToken
from runs.services.api_tokens import api_token_create, api_token_revoke
from tests.api.conftest import API
from tests.factories import make_run, make_schedule, make_user

pytestmark = pytest.mark.django_db


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    return problem


def test_it_answers_401_without_a_token_instead_of_the_login_redirect(client):
    response = client.get(f"{API}/runs")
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["Bearer rb_not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "rb_no-scheme"]
)
def test_it_refuses_an_unknown_token(client, header):
    assert_problem(client.get(f"{API}/runs", HTTP_AUTHORIZATION=header), 401)


def test_it_refuses_a_revoked_token(client):
    token, raw = api_token_create(user=make_user(), name="ci")
    assert client.get(f"{API}/runs", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    api_token_revoke(token=token)
    assert_problem(client.get(f"{API}/runs", HTTP_AUTHORIZATION=f"Bearer {raw}"), 401)


def test_it_refuses_an_expired_token_and_one_of_an_inactive_user(client):
    _token, expired = api_token_create(
        user=make_user(), name="old", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_problem(client.get(f"{API}/runs", HTTP_AUTHORIZATION=f"Bearer {expired}"), 401)
    _token, inactive = api_token_create(user=make_user(is_active=False), name="gone")
    assert_problem(client.get(f"{API}/runs", HTTP_AUTHORIZATION=f"Bearer {inactive}"), 401)


def test_a_token_reads_and_notes_when_it_was_last_used(client):
    token, raw = api_token_create(user=make_user(), name="ci")
    response = client.get(f"{API}/orchestrators", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200 and response.json() == []
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_a_viewer_token_may_read_but_not_rerun(reader):
    run = make_run(status="failed")
    assert reader.get(f"{API}/runs/{run.pk}").status_code == 200
    problem = assert_problem(
        reader.post(f"{API}/runs/{run.pk}/rerun", {}, content_type="application/json"), 403
    )
    assert "Rerunners" in problem["detail"]
    schedule_now = reader.post(
        f"{API}/schedules/{run.schedule_id}/run-now", {}, content_type="application/json"
    )
    assert_problem(schedule_now, 403)


def test_the_session_works_with_its_csrf_token_on_writes():
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("ana", rerunner=True))
    schedule = make_schedule()
    assert client.get(f"{API}/schedules").status_code == 200

    url = f"{API}/schedules/{schedule.pk}/run-now"
    body = {"preview": True, "variables": {"Browser": "firefox"}}
    assert_problem(client.post(url, body, content_type="application/json"), 403)

    # The CSRF cookie and token a page of the site would have given the browser.
    request = client.get("/accounts/password_change/").wsgi_request
    token = get_token(request)
    client.cookies["csrftoken"] = request.META["CSRF_COOKIE"]
    answer = client.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 200, answer.content
    assert answer.json()["summary"] == "run now with Browser=firefox"


def test_a_token_needs_no_csrf_token():
    client = Client(enforce_csrf_checks=True)
    _token, raw = api_token_create(user=make_user("ana", rerunner=True), name="ci")
    schedule = make_schedule()
    response = client.post(
        f"{API}/schedules/{schedule.pk}/run-now",
        {"preview": True},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 200, response.content


def test_the_schema_and_its_docs_are_public_and_the_docs_need_no_inline_script(client):
    schema = client.get(f"{API}/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Runboard API"
    docs = client.get(f"{API}/docs")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "script-src 'self'" in docs["Content-Security-Policy"]
    assert "/static/ninja/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    # Every script is a static file, or data that is never run (application/json).
    for script in re.findall(r"<script([^>]*)>", page):
        assert "src=" in script or 'type="application/json"' in script, script
    assert "style=" not in page and "<style" not in page


@pytest.mark.parametrize("header", [None, "Bearer rb_revoked-or-unknown"])
def test_a_write_without_a_live_token_is_a_401_not_a_csrf_refusal(header):
    client = Client(enforce_csrf_checks=True)
    schedule = make_schedule()
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(
        f"{API}/schedules/{schedule.pk}/run-now", {}, content_type="application/json", **extra
    )
    assert_problem(response, 401)
