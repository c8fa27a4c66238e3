"""Rerun a cause: every run where one cause of failure struck in a window, on every
orchestrator, in one send.

Planned the way the run page plans: one plan per source run (its failures of this cause
picked where the vendor reruns picked cases, else its failed ones), with one digest over the
whole batch, so what is sent is what was previewed. One send records a RerunBatch and a
RerunRequest per source run, in one transaction, each keyed by the batch's key and its
source: sending the batch again (a double click, a retry) records and sends nothing more.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet

from runs.models import ExecutionResult, FailureGroup, Orchestrator, RerunBatch, Run
from runs.orchestrators.base import Scope
from runs.selectors import failures_of_causes
from runs.services.rerun_plan import RerunInput, RerunPlan, rerun_capabilities, rerun_plans
from runs.services.rerun_targets import RerunInvalid
from runs.services.reruns import PERMISSION, rerun_start
from runs.status import IN_PROGRESS

# At most this many source runs in one batch, the most recently struck first: a cause that
# struck more widely is rerun in several sends, each previewed.
BATCH_RUNS = 50


@dataclass(frozen=True)
class CauseRerun:
    """One source run of the batch and what its rerun will send."""

    source: Run
    data: RerunInput
    plan: RerunPlan


@dataclass(frozen=True)
class CauseRerunPlan:
    group: FailureGroup
    days: int
    reruns: list[CauseRerun]
    # Runs where the cause struck that this batch leaves out, and why.
    skipped: list[tuple[Run, str]] = field(default_factory=list)
    more: bool = False  # more runs than BATCH_RUNS: the rest in a later send

    @property
    def digest(self) -> str:
        """One digest over every plan of the batch, each with its source run."""
        text = "\n".join(f"{r.source.pk}:{r.plan.digest}" for r in self.reruns)
        return hashlib.sha256(f"{self.group.pk}:{self.days}\n{text}".encode()).hexdigest()

    def per_orchestrator(self) -> list[tuple[Orchestrator, int, int]]:
        """(orchestrator, runs, cases) that the batch reruns, by orchestrator name."""
        totals: dict[int, list] = {}
        for rerun in self.reruns:
            orchestrator = rerun.source.orchestrator
            entry = totals.setdefault(orchestrator.pk, [orchestrator, 0, 0])
            entry[1] += 1
            entry[2] += len(rerun.plan.cases)
        return sorted((tuple(e) for e in totals.values()), key=lambda e: e[0].name)


class CausePlanChanged(Exception):
    """What the batch would send changed since its preview: nothing was sent."""

    def __init__(self, plan: CauseRerunPlan) -> None:
        super().__init__(
            "The runs to rerun changed since the preview (new failures, or reruns made "
            "meanwhile), so nothing was sent. Check the new preview, then send it."
        )
        self.plan = plan


def _window_start(days: int, now: datetime | None = None) -> datetime:
    today = (now or datetime.now(UTC)).date()
    return datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)


def cause_rerun_plan(*, group: FailureGroup, days: int) -> CauseRerunPlan:
    """Plan a rerun of every run where `group` struck in the last `days` days and that can
    be rerun: over, not an earlier attempt, and not rerun already (its rerun is the run to
    rerun now, if the cause struck there again). A batch holds the runs struck most
    recently; the rest wait for a later one."""
    failures = failures_of_causes([group.fingerprint]).filter(started_at__gte=_window_start(days))
    runs = _struck_runs(failures)
    batch = runs[:BATCH_RUNS]
    by_run: dict[int, list[int]] = defaultdict(list)
    of_batch = failures.filter(run_id__in=[run.pk for run in batch])
    for run_id, pk in of_batch.values_list("run_id", "pk").order_by("pk"):
        by_run[run_id].append(pk)
    # One plan per run, as the run page would plan it; all their results read at once.
    asked = [(run, _input(run, by_run[run.pk])) for run in batch]
    reruns: list[CauseRerun] = []
    skipped: list[tuple[Run, str]] = []
    for (run, data), plan in zip(asked, rerun_plans(asked), strict=True):
        if isinstance(plan, RerunInvalid):
            skipped.append((run, str(plan)))
        else:
            reruns.append(CauseRerun(run, data, plan))
    return CauseRerunPlan(group, days, reruns, skipped, more=len(runs) > BATCH_RUNS)


def _struck_runs(failures: QuerySet[ExecutionResult]) -> list[Run]:
    """The runs these failures struck that can be rerun, the most recently struck first: one
    more than a batch holds, to tell there are more. Read from the newest failure back, as
    far as that takes, not every failure of the window (a widespread cause has thousands)."""
    rerun = Run.objects.filter(rerun_of=OuterRef("run_id"))
    rerunnable = (
        failures.filter(run__is_frozen=False)
        .exclude(run__status__in=[status.value for status in IN_PROGRESS])
        .exclude(Exists(rerun))
        .order_by("-started_at", "-id")
    )
    limit = 2 * BATCH_RUNS
    while True:
        read = list(rerunnable.values_list("run_id", flat=True)[:limit])
        struck = list(dict.fromkeys(read))[: BATCH_RUNS + 1]
        if len(struck) > BATCH_RUNS or len(read) < limit:
            break
        limit *= 4
    runs = Run.objects.select_related("orchestrator", "schedule").in_bulk(struck)
    return [runs[pk] for pk in struck if pk in runs]  # (one deleted meanwhile is left out)


def _input(run: Run, failure_ids: list[int]) -> RerunInput:
    """Its failures of this cause, where the vendor reruns picked cases; else its failed."""
    capabilities = rerun_capabilities(run.orchestrator)
    if capabilities.picked_scope == Scope.PICKED and Scope.PICKED in capabilities.scopes:
        return RerunInput(scope="picked", result_ids=tuple(failure_ids))
    return RerunInput(scope="failed")


def cause_rerun_send(
    *,
    group: FailureGroup,
    days: int,
    user: AbstractBaseUser,
    idempotency_key: str,
    previewed_digest: str,
) -> tuple[RerunBatch, bool]:
    """Record the batch previewed and hand its reruns to the worker; (batch, recorded now?).

    A key seen before returns its batch untouched. A plan whose digest is not the one
    previewed raises CausePlanChanged and records nothing; so does any rerun the batch
    cannot record (all of the batch, or none of it)."""
    if not user.has_perm(PERMISSION):
        raise PermissionDenied("Rerunning needs the permission runs.add_rerunrequest.")
    if (existing := RerunBatch.objects.filter(idempotency_key=idempotency_key).first()) is not None:
        return existing, False
    plan = cause_rerun_plan(group=group, days=days)
    if plan.digest != previewed_digest or not plan.reruns:
        raise CausePlanChanged(plan)
    try:
        with transaction.atomic():
            batch = RerunBatch.objects.create(
                group=group,
                idempotency_key=idempotency_key,
                days=days,
                digest=plan.digest,
                requested_by=user,
            )
            for rerun in plan.reruns:
                rerun_start(
                    user=user,
                    idempotency_key=f"{idempotency_key}:{rerun.source.pk}",
                    data=rerun.data,
                    source=rerun.source,
                    previewed_digest=rerun.plan.digest,
                    batch=batch,
                )
    except IntegrityError:
        existing = RerunBatch.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing, False
    return batch, True
