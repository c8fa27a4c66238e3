"""`manage.py connect` and `manage.py sync`."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from runs.models import Orchestrator, Run
from tests.emulated import emulated, emulator_state, orchestrator_for

pytestmark = pytest.mark.django_db


def connect(*args: str) -> str:
    out = io.StringIO()
    call_command("connect", *args, stdout=out)
    return out.getvalue()


def test_it_connects_with_the_credential_from_the_environment(monkeypatch):
    with emulated("leapwork", history=0) as (app, server):
        monkeypatch.setenv("RUNBOARD_CREDENTIAL", app.credential)
        output = connect("leapwork", server.base_url, "--name", "lab")

    assert "Connected leapwork orchestrator 'lab'" in output
    assert Orchestrator.objects.get(name="lab").credential == app.credential


def test_it_reads_the_credential_from_standard_input(monkeypatch):
    monkeypatch.delenv("RUNBOARD_CREDENTIAL", raising=False)
    with emulated("testsigma", history=1) as (app, server):
        state = emulator_state(server)
        run_id = str(state["runs"][0]["id"])
        monkeypatch.setattr("sys.stdin", io.StringIO(app.credential + "\n"))
        output = connect(
            "testsigma",
            server.base_url,
            "--name",
            "ts",
            "--test-plan",
            str(state["runs"][0]["plan_id"]),
            "--run",
            run_id,
        )

    assert f"Following run {run_id}" in output
    assert Orchestrator.objects.get(name="ts").credential == app.credential
    assert Run.objects.filter(external_id=run_id).exists()


def test_it_saves_nothing_and_says_why_when_the_check_fails(monkeypatch):
    monkeypatch.setenv("RUNBOARD_CREDENTIAL", "wrong")
    with (
        emulated("leapwork", history=0) as (_app, server),
        pytest.raises(CommandError, match="refused the credential"),
    ):
        connect("leapwork", server.base_url, "--name", "lab")

    assert not Orchestrator.objects.exists()


def test_it_prints_what_sync_imported():
    with emulated("conductor", history=1) as (_app, server):
        orchestrator_for(server, name="cluster")
        out = io.StringIO()
        call_command("sync", "--orchestrator", "cluster", stdout=out)
        state = emulator_state(server)

    workflows = len(state["workflows"])
    tasks = sum(len(w["taskIds"]) for w in state["workflows"])
    assert f"{workflows} runs fetched ({workflows} new" in out.getvalue()
    assert f"{tasks} results written" in out.getvalue()


def test_it_fails_loudly_when_an_orchestrator_cannot_be_synced(settings):
    settings.RUNBOARD_HTTP_TIMEOUT = 0.5
    Orchestrator.objects.create(kind="leapwork", name="down", base_url="http://127.0.0.1:1")
    out = io.StringIO()
    with pytest.raises(CommandError, match="could not be synced"):
        call_command("sync", stdout=out)
    assert "down: " in out.getvalue() and "FAILED" in out.getvalue()


def test_it_starts_the_periodic_chain_once():
    out = io.StringIO()
    call_command("sync", "--periodic", stdout=out)
    call_command("sync", "--periodic", stdout=out)
    assert out.getvalue().splitlines() == [
        "Periodic sync started.",
        "Periodic sync already scheduled.",
    ]
