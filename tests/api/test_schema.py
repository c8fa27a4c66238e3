"""The OpenAPI schema at /api/v1/openapi.json is valid OpenAPI 3 and says what the API does:
every operation declares its errors as problem+json, and its security."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from tests.api.conftest import API

pytestmark = pytest.mark.django_db


def test_the_schema_is_valid_openapi_3(client):
    schema = client.get(f"{API}/openapi.json").json()
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["info"] == {
        "title": "Runboard API",
        "version": "1",
        "description": schema["info"]["description"],
    }


def test_every_operation_declares_its_errors_as_problem_json_and_needs_auth(client):
    schema = client.get(f"{API}/openapi.json").json()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert len(operations) == 12
    for operation in operations:
        answers = operation["responses"]
        assert "401" in answers, operation["operationId"]
        for status, answer in answers.items():
            (media_type,) = answer["content"]
            expected = "application/problem+json" if int(status) >= 400 else "application/json"
            assert media_type == expected, (operation["operationId"], status)
        assert operation["security"], operation["operationId"]
    schemes = schema["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}


def test_writes_declare_every_error_they_may_answer(client):
    schema = client.get(f"{API}/openapi.json").json()
    for path in ("/runs/{id}/rerun", "/schedules/{id}/run-now"):
        answers = schema["paths"][API + path]["post"]["responses"]
        assert set(answers) == {"200", "202", "400", "401", "403", "404", "409", "422", "429"}
