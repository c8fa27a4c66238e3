"""Connecting an orchestrator: the check runs first, and a failed one saves nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from runs.models import Orchestrator, Run
from runs.services.orchestrators import ConnectError, orchestrator_check, orchestrator_connect
from tests.emulated import emulated, emulator_state

pytestmark = pytest.mark.django_db


def test_it_saves_an_orchestrator_that_accepts_the_credential():
    with emulated("leapwork", history=0) as (app, server):
        connection = orchestrator_connect(
            kind="leapwork", base_url=server.base_url + "/", name="lab", credential=app.credential
        )

    assert connection.created
    saved = Orchestrator.objects.get(name="lab")
    assert saved.base_url == server.base_url and saved.credential == app.credential


def test_it_saves_nothing_when_the_credential_is_refused():
    with (
        emulated("leapwork", history=0) as (_app, server),
        pytest.raises(ConnectError, match="refused the credential"),
    ):
        orchestrator_connect(
            kind="leapwork", base_url=server.base_url, name="lab", credential="wrong"
        )

    assert not Orchestrator.objects.exists()


def test_it_saves_nothing_when_a_given_run_cannot_be_read():
    with (
        emulated("testsigma", history=1) as (app, server),
        pytest.raises(ConnectError, match="Run 999999 could not be read"),
    ):
        orchestrator_connect(
            kind="testsigma",
            base_url=server.base_url,
            name="ts",
            credential=app.credential,
            run_ids=["999999"],
        )

    assert not Orchestrator.objects.exists() and not Run.objects.exists()


def test_it_follows_the_testsigma_runs_it_is_given():
    with emulated("testsigma", history=2) as (app, server):
        state = emulator_state(server)
        run_id = str(state["runs"][0]["id"])
        connection = orchestrator_connect(
            kind="testsigma",
            base_url=server.base_url,
            name="ts",
            credential=app.credential,
            test_plan_ids=[str(state["runs"][0]["plan_id"])],
            run_ids=[run_id],
        )

    assert [run.external_id for run in connection.tracked] == [run_id]
    assert connection.orchestrator.test_plan_ids == [str(state["runs"][0]["plan_id"])]
    assert Run.objects.get(external_id=run_id).results.count() == len(
        state["runs"][0]["case_results"]
    )


def test_it_refuses_run_ids_for_vendors_that_list_their_runs():
    with pytest.raises(ConnectError, match="--run is for Testsigma"):
        orchestrator_connect(
            kind="conductor", base_url="http://127.0.0.1:1", name="c", credential="", run_ids=["x"]
        )


def test_it_checks_an_unsaved_orchestrator():
    with emulated("conductor", history=0) as (_app, server):
        orchestrator_check(orchestrator=Orchestrator(kind="conductor", base_url=server.base_url))
        with pytest.raises(ConnectError, match="unavailable"):
            orchestrator_check(
                orchestrator=Orchestrator(kind="conductor", base_url="http://127.0.0.1:1")
            )


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw-admin-123"))
    return client


def _admin_form(base_url: str, credential: str) -> dict[str, str]:
    return {
        "kind": "leapwork",
        "name": "lab",
        "base_url": base_url,
        "credential": credential,
        "test_plan_ids": "[]",
        "enabled": "on",
    }


def test_it_runs_the_same_check_in_the_admin(staff_client):
    url = reverse("admin:runs_orchestrator_add")
    with emulated("leapwork", history=0) as (app, server):
        refused = staff_client.post(url, _admin_form(server.base_url, "wrong"))
        accepted = staff_client.post(url, _admin_form(server.base_url, app.credential))

    assert refused.status_code == 200
    assert "refused the credential" in refused.content.decode()
    assert accepted.status_code == 302
    assert Orchestrator.objects.get().credential == app.credential
