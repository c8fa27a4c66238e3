"""Background work on Django's tasks API (django-tasks-db backend): task wrappers only.

Reruns are sent by `rerun_send` on a queue of their own (`reruns`, its own worker), so a
rerun never waits behind a sync pass; webhooks by `webhook_send` on theirs (`webhooks`), so
no sync or rerun ever waits for a webhook's receiver.

Three self-renewing chains, all in runs.services.polling: `sync_cycle` syncs every enabled
orchestrator that is due, every RUNBOARD_SYNC_INTERVAL seconds; `poll_cycle` refreshes running
runs every RUNBOARD_POLL_INTERVAL seconds and stops when nothing runs; `watch_cycle` starts
again, every RUNBOARD_CHAIN_LEASE seconds, a chain whose link died with its worker. Each task is
registered under its chain's name so the services can enqueue it without importing this.
"""

from __future__ import annotations

from django.tasks import task

from runs.services import failure_groups, polling, rerun_delivery, webhooks
from runs.services.queue import chain_register

RERUN_QUEUE = "reruns"
WEBHOOK_QUEUE = "webhooks"


@task()
def sync_cycle() -> list[str]:
    """Sync every enabled orchestrator that is due, then wait for the next interval."""
    return polling.sync_cycle_run()


@task()
def poll_cycle() -> int:
    """Refresh every running run; go on while any still runs."""
    return polling.poll_cycle_run()


@task()
def watch_cycle() -> list[str]:
    """Start again the chains whose link died with its worker, and the reruns whose did."""
    restarted = polling.watch_cycle_run()
    if recovered := rerun_delivery.reruns_recover():
        restarted.append(f"{recovered} rerun request(s)")
    if lost := webhooks.webhooks_recover():
        restarted.append(f"{lost} webhook delivery(ies)")
    return restarted


@task(queue_name=RERUN_QUEUE)
def rerun_send(request_id: int) -> str | None:
    """Send a recorded rerun call by call and settle it (runs.services.rerun_delivery)."""
    request = rerun_delivery.rerun_deliver(request_id)
    return request.state if request is not None else None


@task(queue_name=WEBHOOK_QUEUE)
def webhook_send(delivery_id: int) -> str | None:
    """One attempt at a webhook delivery; a failure enqueues the next (runs.services.webhooks)."""
    delivery = webhooks.webhook_deliver(delivery_id=delivery_id)
    return delivery.state if delivery is not None else None


@task()
def fingerprints_refresh() -> int:
    """Fingerprint the failures stored before fingerprints existed, or by an older version."""
    return failure_groups.fingerprints_refresh()


chain_register(polling.SYNC_CHAIN, sync_cycle)
chain_register(polling.WATCH_CHAIN, watch_cycle)
chain_register(polling.POLL_CHAIN, poll_cycle)
chain_register(rerun_delivery.RERUN_TASK, rerun_send)
chain_register(polling.FINGERPRINTS_JOB, fingerprints_refresh)
chain_register(webhooks.WEBHOOK_TASK, webhook_send)


def sync_cycle_ensure() -> bool:
    """Start the periodic sync chain if it is not waiting already (called by `make run`)."""
    return polling.sync_cycle_ensure()
