"""Every error as problem+json: bad input (400) by the forms' own rules, unknown rows (404),
and a token's rate of writes (429)."""

from __future__ import annotations

import pytest

from runs.forms import JSON_MAX_DEPTH, VARIABLE_VALUE_MAX
from runs.models import RerunRequest
from runs.status import Status
from tests.api.conftest import API
from tests.factories import make_agent, make_result, make_run, make_schedule

pytestmark = pytest.mark.django_db


@pytest.fixture
def source():
    run = make_run(status=Status.FAILED)
    make_result(run, status=Status.FAILED, case_key="flow-1", agent=make_agent(run.orchestrator))
    return run


def post(client, url: str, body, **extra):
    return client.post(url, body, content_type="application/json", **extra)


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "everything"}, "scope"),
        ({"scope": 3}, "scope"),
        ({"cases": ["one"]}, "cases.0"),
        ({"cases": [2**63]}, "cases"),
        ({"agents": "all"}, "agents"),
        ({"variables": {"Browser": 1}}, "variables.Browser"),
        ({"variables": ["Browser"]}, "variables"),
        ({"variables": {"Browser": "fire\x00fox"}}, "variables"),
        ({"variables": {"": "firefox"}}, "variables"),
        ({"variables": {"Big": "x" * (VARIABLE_VALUE_MAX + 1)}}, "variables"),
        ({"scope": "all", "inputs": "env=qa"}, "inputs"),
        ({"scope": "all", "inputs": {"env": "q\x00a"}}, "inputs"),
        ({"scope": "all", "inputs": nested(JSON_MAX_DEPTH + 1)}, "inputs"),
        ({"iterations": {"first": ["1"]}}, "iterations"),
        ({"digest": "not-a-digest"}, "digest"),
        ({"preview": "maybe"}, "preview"),
        ({"correlation_id": "x" * 301}, "correlation_id"),
    ],
)
def test_a_body_no_form_would_take_is_a_400_naming_its_field(rerunner_api, source, body, field):
    response = post(rerunner_api, f"{API}/runs/{source.pk}/rerun", body)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and problem["type"] == "urn:runboard:problem:bad-input"
    assert field in problem["errors"], problem
    assert not RerunRequest.objects.exists()


def test_json_that_is_not_json_or_not_finite_is_a_400(rerunner_api, source):
    url = f"{API}/runs/{source.pk}/rerun"
    broken = rerunner_api.post(url, "{scope: failed", content_type="application/json")
    assert broken.status_code == 400 and broken["Content-Type"] == "application/problem+json"
    infinite = rerunner_api.post(
        url, '{"scope": "all", "inputs": {"n": NaN}}', content_type="application/json"
    )
    assert infinite.status_code == 400 and "inputs" in infinite.json()["errors"]
    deep = rerunner_api.post(url, "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert deep.status_code == 400


def test_an_idempotency_key_over_200_characters_is_a_400(rerunner_api, source):
    response = post(
        rerunner_api, f"{API}/runs/{source.pk}/rerun", {}, HTTP_IDEMPOTENCY_KEY="k" * 201
    )
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]


@pytest.mark.parametrize(
    "url", ["/runs/999999/rerun", "/schedules/999999/run-now", "/reruns/999999", "/cases/999999"]
)
def test_an_unknown_row_is_a_404(rerunner_api, url):
    response = (
        rerunner_api.get(API + url)
        if "reruns/" in url or "cases" in url
        else post(rerunner_api, API + url, {})
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"].startswith("No such")


def test_a_token_that_spent_its_writes_hears_429_with_retry_after(token_client, settings, source):
    settings.RUNBOARD_API_WRITES_PER_MINUTE = 2
    client = token_client(username="ana", rerunner=True)
    url = f"{API}/runs/{source.pk}/rerun"
    assert post(client, url, {"preview": True}).status_code == 200
    assert post(client, url, {}, HTTP_IDEMPOTENCY_KEY="one").status_code == 202
    refused = post(client, url, {}, HTTP_IDEMPOTENCY_KEY="two")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert refused.json()["type"] == "urn:runboard:problem:rate-limited"
    assert RerunRequest.objects.count() == 1
    # Reads are not counted, and another token has its own rate.
    assert client.get(f"{API}/runs").status_code == 200
    other = token_client(username="bob", rerunner=True)
    assert post(other, url, {"preview": True}).status_code == 200


def test_a_temporary_schedule_cannot_be_run_now(rerunner_api):
    schedule = make_schedule(is_temporary=True)
    response = post(rerunner_api, f"{API}/schedules/{schedule.pk}/run-now", {})
    assert response.status_code == 422 and "schedule" in response.json()["errors"]


@pytest.mark.parametrize(
    "url",
    [
        "/go/la%00b/run-1",
        "/go/lab/run%00-1",
        "/runs?q=a%00b",
        "/runs?orchestrator=a%00b",
        "/schedules?orchestrator=a%00b",
        "/failures?orchestrator=a%00b",
        "/runs/1/results?status=a%00b",
    ],
)
def test_a_nul_character_anywhere_is_an_answer_not_a_server_error(reader, url):
    make_run()
    response = reader.get(API + url)
    assert response.status_code in (400, 404)
    assert response["Content-Type"] == "application/problem+json"


def test_any_other_url_of_the_api_is_a_404_problem(reader):
    for url in ("/", "/nope", "/runs/1/nope"):
        response = reader.get(API + url)
        assert response.status_code == 404 and response.json()["status"] == 404


@pytest.mark.parametrize(
    "body",
    [
        '{"variables": {"Browser": "\\ud800"}}',
        '{"variables": {"\\udfff": "x"}}',
        '{"build": "1.\\ud800"}',
        '{"inputs": {"a": "\\ud800"}}',
    ],
)
def test_a_lone_surrogate_in_a_body_is_a_400(rerunner_api, body):
    schedule = make_schedule()
    url = f"{API}/schedules/{schedule.pk}/run-now"
    response = rerunner_api.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not RerunRequest.objects.exists()
