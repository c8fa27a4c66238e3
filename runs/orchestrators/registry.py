"""Which client and emulator serve each orchestrator kind (imported lazily)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from runs.orchestrators.base import OrchestratorClient
    from runs.orchestrators.emulation import EmulatorApp

KINDS = ("leapwork", "conductor", "testsigma")

_CLIENTS = {
    "leapwork": "runs.orchestrators.leapwork.client:LeapworkClient",
    "conductor": "runs.orchestrators.conductor.client:ConductorClient",
    "testsigma": "runs.orchestrators.testsigma.client:TestsigmaClient",
}
_EMULATORS = {
    "leapwork": "runs.orchestrators.leapwork.emulator:LeapworkEmulator",
    "conductor": "runs.orchestrators.conductor.emulator:ConductorEmulator",
    "testsigma": "runs.orchestrators.testsigma.emulator:TestsigmaEmulator",
}


def _load(path: str) -> type:
    module, name = path.split(":")
    return getattr(import_module(module), name)


def client_class(kind: str) -> type[OrchestratorClient]:
    return _load(_CLIENTS[kind])


def emulator_class(kind: str) -> type[EmulatorApp]:
    return _load(_EMULATORS[kind])


def client_for(
    kind: str,
    base_url: str,
    credential: str = "",
    *,
    timeout: float = 10.0,
    concurrency: int = 8,
    transport: httpx.BaseTransport | None = None,
) -> OrchestratorClient:
    """A vendor client over a fresh httpx.Client with explicit timeouts, sending at most
    `concurrency` calls at a time."""
    from runs.orchestrators.http import make_client

    http_client = make_client(
        base_url, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), transport=transport
    )
    return client_class(kind)(http_client, credential=credential, concurrency=concurrency)
