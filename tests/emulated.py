"""Emulators served on loopback for sync tests, and the Orchestrator rows that point at them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from runs.models import Orchestrator
from runs.orchestrators.emulation import Clock, EmulatorApp, ServedEmulator, served
from runs.orchestrators.registry import emulator_class

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
