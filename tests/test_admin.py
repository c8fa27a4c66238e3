"""The admin edits orchestrators; mirrored data is read-only; a credential is write-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from runs.models import Orchestrator
from tests.factories import make_orchestrator, make_result, make_run, make_schedule

pytestmark = pytest.mark.django_db

SECRET = "AK-very-secret-4711"


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    client.force_login(admin)
    return client


def test_the_credential_never_appears_in_the_admin(admin_client):
    orchestrator = make_orchestrator(credential=SECRET)
    run = make_run(make_schedule(orchestrator))
    pages = [
        reverse("admin:runs_orchestrator_changelist"),
        reverse("admin:runs_orchestrator_change", args=[orchestrator.pk]),
        reverse("admin:runs_run_change", args=[run.pk]),
        reverse("admin:runs_schedule_changelist"),
        reverse("admin:index"),
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert SECRET not in response.content.decode(), page


def test_saving_without_a_credential_keeps_the_stored_one(admin_client):
    orchestrator = make_orchestrator(credential=SECRET, name="lab")
    response = admin_client.post(
        reverse("admin:runs_orchestrator_change", args=[orchestrator.pk]),
        {
            "kind": "leapwork",
            "name": "lab-renamed",
            "base_url": orchestrator.base_url,  # unchanged: no connection check
            "credential": "",
            "test_plan_ids": "[]",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    orchestrator.refresh_from_db()
    assert orchestrator.name == "lab-renamed"
    assert orchestrator.credential == SECRET


def test_mirrored_data_is_read_only(admin_client):
    run = make_run()
    result = make_result(run)
    assert admin_client.get(reverse("admin:runs_run_add")).status_code == 403
    response = admin_client.post(reverse("admin:runs_run_delete", args=[run.pk]), {"post": "yes"})
    assert response.status_code == 403
    change = admin_client.get(reverse("admin:runs_executionresult_change", args=[result.pk]))
    assert change.status_code == 200
    assert b'type="submit"' not in change.content or b"Save" not in change.content
    assert Orchestrator.objects.count() == 1
