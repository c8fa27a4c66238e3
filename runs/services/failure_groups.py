"""Failure groups kept in step with the fingerprint algorithm: failures stored before it
existed, or fingerprinted by an older version, are fingerprinted again, a batch at a time."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from runs.models import ExecutionResult
from runs.services import sql
from runs.services.fingerprints import FINGERPRINT_VERSION, failure_fingerprint
from runs.services.revision import revision_bump
from runs.status import FAILURES

FAILURE_VALUES = [status.value for status in FAILURES]


def fingerprints_refresh(*, batch: int = 2000) -> int:
    """Fingerprint every failure without the current version's fingerprint; how many were.

    Walks the failures by id, a batch per transaction (a long history is never locked at
    once), each batch in three statements: read, update, and the groups it saw."""
    stale = (
        ExecutionResult.objects.filter(status__in=FAILURE_VALUES)
        .exclude(fingerprint_version=FINGERPRINT_VERSION)
        .order_by("pk")
    )
    done, after = 0, 0
    while rows := list(
        stale.filter(pk__gt=after).values_list("pk", "started_at", "message", "log_excerpt")[:batch]
    ):
        _refresh(rows)
        done += len(rows)
        after = rows[-1][0]
    return done


def _refresh(rows: list[tuple[Any, ...]]) -> None:
    results, groups = [], {}
    for pk, at, message, log_excerpt in rows:
        fingerprint, normalized = failure_fingerprint(message, log_excerpt)
        results.append(
            ExecutionResult(pk=pk, fingerprint=fingerprint, fingerprint_version=FINGERPRINT_VERSION)
        )
        if not fingerprint:
            continue
        first, last = groups.get(fingerprint, (normalized, at, at))[1:]
        if at is not None:
            first = at if first is None else min(first, at)
            last = at if last is None else max(last, at)
        groups[fingerprint] = (normalized, first, last)
    with transaction.atomic():
        ExecutionResult.objects.bulk_update(results, ["fingerprint", "fingerprint_version"])
        sql.failure_groups_upsert(
            [
                (fp, FINGERPRINT_VERSION, text, first, last)
                for fp, (text, first, last) in groups.items()
            ]
        )
        revision_bump()
