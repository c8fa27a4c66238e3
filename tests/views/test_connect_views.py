"""Staff who may add orchestrators connect one from the UI; anyone tracks a run by its vendor id."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from runs.models import Orchestrator, Run
from tests.emulated import emulated, emulator_state
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_only_staff_may_open_the_connect_page(client):
    client.force_login(make_user("viewer"))
    assert client.get(reverse("runs:orchestrator_connect")).status_code == 403


def test_staff_connect_after_the_credential_is_checked(client):
    boss = make_user("boss", is_staff=True)
    boss.user_permissions.add(Permission.objects.get(codename="add_orchestrator"))
    client.force_login(boss)
    with emulated("leapwork") as (app, server):
        data = {
            "kind": "leapwork",
            "name": "lab",
            "base_url": server.base_url,
            "credential": "wrong",
        }
        page = client.post(reverse("runs:orchestrator_connect"), data)
        assert page.status_code == 200
        assert "refused the connection" in page.content.decode()
        assert "wrong" not in page.content.decode(), "a credential is never rendered back"
        assert not Orchestrator.objects.exists()

        response = client.post(
            reverse("runs:orchestrator_connect"), {**data, "credential": app.credential}
        )
        assert response.status_code == 302
        assert Orchestrator.objects.get(name="lab").credential == app.credential


def test_tracking_a_testsigma_run_imports_it_and_opens_its_page(client):
    client.force_login(make_user("viewer"))
    with emulated("testsigma") as (app, server):
        orchestrator = Orchestrator.objects.create(
            kind="testsigma",
            name="ts",
            base_url=f"{server.base_url}/api/v1",
            credential=app.credential,
        )
        run_id = str(emulator_state(server)["runs"][0]["id"])
        response = client.post(
            reverse("runs:track_run"), {"orchestrator": orchestrator.pk, "run_id": run_id}
        )
        run = Run.objects.get(orchestrator=orchestrator, external_id=run_id)
        assert response["Location"] == run.get_absolute_url()
        assert run.results.exists()

        unknown = client.post(
            reverse("runs:track_run"), {"orchestrator": orchestrator.pk, "run_id": "999999"}
        )
        assert unknown.status_code == 422
        assert "Not found" in unknown.content.decode()
