"""Emulators served on loopback for service and view tests, and the Orchestrators that point at them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from runs.models import Orchestrator, Run
from runs.orchestrators.emulation import Clock, EmulatorApp, ServedEmulator, served
from runs.orchestrators.registry import emulator_class
from runs.services.sync import orchestrator_sync, run_track
from runs.status import Status

CREDENTIALS = {"leapwork": "leap-key", "conductor": "", "testsigma": "ts-api-key"}


@contextlib.contextmanager
def emulated(kind: str, **kwargs: Any) -> Iterator[tuple[EmulatorApp, ServedEmulator]]:
    """A `kind` emulator with a paused clock (unless a clock is given), served on 127.0.0.1."""
    if "clock" not in kwargs:
        kwargs["clock"] = Clock()
        kwargs["clock"].pause()
    kwargs.setdefault("credential", CREDENTIALS[kind])
    kwargs.setdefault("history", 3)
    app = emulator_class(kind)(**kwargs)
    with served(app) as server:
        yield app, server


def orchestrator_for(server: ServedEmulator, *, name: str = "", **fields: Any) -> Orchestrator:
    """An Orchestrator row whose base URL and credential are the served emulator's."""
    app = server.app
    values = {"base_url": server.base_url, "credential": app.credential, **fields}
    return Orchestrator.objects.create(kind=app.kind, name=name or f"{app.kind}-emu", **values)


def emulator_state(server: ServedEmulator) -> dict[str, Any]:
    return httpx.get(f"{server.base_url}/_emulator/state", timeout=10).json()


def emulator_control(server: ServedEmulator, name: str, body: Any = None) -> dict[str, Any]:
    """POST to /_emulator/<name> (clock, faults, reset); DELETE faults when body is None."""
    url = f"{server.base_url}/_emulator/{name}"
    if body is None:
        response = httpx.delete(url, timeout=10)
    else:
        response = httpx.post(url, json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def step_clock(server: ServedEmulator, seconds: float) -> None:
    emulator_control(server, "clock", {"action": "step", "seconds": seconds})


@contextlib.contextmanager
def synced(kind: str, **options: Any) -> Iterator[tuple[ServedEmulator, Orchestrator]]:
    """An emulator served on loopback, connected as an orchestrator and synced once."""
    options.setdefault("history", 1)
    with emulated(kind, **options) as (_app, server):
        if kind == "testsigma":
            orchestrator = orchestrator_for(server)
            orchestrator.base_url = f"{server.base_url}/api/v1"
            orchestrator.save()
            for run in emulator_state(server)["runs"]:
                run_track(orchestrator=orchestrator, external_id=str(run["id"]))
        else:
            orchestrator = orchestrator_for(server)
            report = orchestrator_sync(orchestrator=orchestrator)
            assert report.ok, report.error
        yield server, orchestrator


def vendor_writes(server: ServedEmulator) -> list[dict]:
    """The requests that could change something upstream, from the emulator's own log."""
    return [e for e in server.app.requests() if e["method"] in {"PUT", "POST", "DELETE"}]


def failed_run(orchestrator: Orchestrator, **filters: Any) -> Run:
    """The newest failed run Runboard holds of this orchestrator."""
    run = (
        Run.objects.filter(orchestrator=orchestrator, status=Status.FAILED, **filters)
        .order_by("-started_at")
        .first()
    )
    assert run is not None, "the emulator's history has a failed run"
    return run
