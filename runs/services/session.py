"""The client session: one vendor client per orchestrator, configured from its row.

Sync, reruns, connect and polling all open their clients here, so what a client is told
about its orchestrator (base URL, credential, timeout, configured schedules) is said once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
from django.conf import settings

from runs.models import Orchestrator
from runs.orchestrators.base import OrchestratorClient
from runs.orchestrators.registry import client_class, client_for


def orchestrator_client(
    orchestrator: Orchestrator, *, transport: httpx.BaseTransport | None = None
) -> OrchestratorClient:
    """A new client for this orchestrator; the caller closes it."""
    client = client_for(
        orchestrator.kind,
        orchestrator.base_url,
        orchestrator.credential,
        timeout=settings.RUNBOARD_HTTP_TIMEOUT,
        concurrency=settings.RUNBOARD_FETCH_CONCURRENCY,
        transport=transport,
    )
    client.follow_schedules([str(plan) for plan in orchestrator.test_plan_ids])
    return client


@contextlib.contextmanager
def orchestrator_session(
    orchestrator: Orchestrator,
    *,
    client: OrchestratorClient | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Iterator[OrchestratorClient]:
    """The client given, or a new one for this orchestrator that is closed afterwards."""
    if client is not None:
        yield client
        return
    fresh = orchestrator_client(orchestrator, transport=transport)
    try:
        yield fresh
    finally:
        fresh.close()


def orchestrator_client_class(orchestrator: Orchestrator) -> type[OrchestratorClient]:
    """The vendor client class: its capabilities and pure planning rules, no connection."""
    return client_class(orchestrator.kind)
