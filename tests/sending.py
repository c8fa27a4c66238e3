"""What the rerun worker does, run in the test's own process: rerun_start records and
enqueues, rerun_deliver (the `rerun_send` task's body) sends. The tests that run the real
worker are in tests/reliability/test_rerun_worker.py."""

from __future__ import annotations

from typing import Any

from runs.models import RerunRequest, RerunState
from runs.services.rerun_delivery import rerun_deliver
from runs.services.reruns import rerun_start


def rerun_sent(**kwargs: Any) -> tuple[RerunRequest, bool]:
    """rerun_start, then the worker's sending of what it recorded."""
    request, recorded = rerun_start(**kwargs)
    if recorded:
        rerun_deliver(request.pk)
        request.refresh_from_db()
    return request, recorded


def deliver_pending() -> list[RerunRequest]:
    """Send every request waiting for the worker (after a view recorded one)."""
    waiting = list(RerunRequest.objects.filter(state=RerunState.PENDING).order_by("pk"))
    for request in waiting:
        rerun_deliver(request.pk)
        request.refresh_from_db()
    return waiting
