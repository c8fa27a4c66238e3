"""The mirrored domain: orchestrators, their schedules, agents, test cases, runs and results.

Only `runs.services` writes mirrored rows; the admin edits orchestrators and shows the rest
read-only. DESIGN.md ("The domain") maps each model to each vendor's word for it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from runs.indexes import CoveringIndex, DescendingNullsLastIndex, PrefixIndex, TrigramIndex
from runs.status import FAILURE_VALUES, Status


class OrchestratorKind(models.TextChoices):
    LEAPWORK = "leapwork", "Leapwork"
    CONDUCTOR = "conductor", "Conductor"
    TESTSIGMA = "testsigma", "Testsigma"


class Orchestrator(models.Model):
    kind = models.CharField(max_length=16, choices=OrchestratorKind.choices)
    name = models.SlugField(
        max_length=64, unique=True, help_text="Appears in links: /go/<name>/<vendor run id>."
    )
    base_url = models.URLField(max_length=500)
    # Leapwork AccessKey; empty (conductor-oss) or keyId:keySecret (Orkes); Testsigma API key.
    credential = models.CharField(max_length=500, blank=True)
    test_plan_ids = models.JSONField(
        default=list, blank=True, help_text="Testsigma test plans offered by the run-now form."
    )
    enabled = models.BooleanField(default=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True)
    last_sync_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_sync_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Its Run rows (attempts included), kept by whatever creates them (runs.services.agent_counts).
    run_count = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def healthy(self) -> bool:
        return not self.last_sync_error


class Agent(models.Model):
    """Leapwork agent, Conductor worker, Testsigma machine."""

    orchestrator = models.ForeignKey(  # led by its unique (orchestrator, external_id)
        Orchestrator, on_delete=models.CASCADE, related_name="agents", db_index=False
    )
    external_id = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    host = models.CharField(max_length=300, blank=True)
    # Kept by sync in the same transaction as the results they count (services.agent_counts),
    # so the agents page reads these rows and never the results. Plain integers: a counter
    # that drifted must not stop a sync; `manage.py agent_counts_rebuild` repairs it. Defaults
    # in the database too, for rows written by SQL (bench/history.py).
    run_count = models.IntegerField(default=0, db_default=0)
    result_count = models.IntegerField(default=0, db_default=0)
    failed_count = models.IntegerField(default=0, db_default=0)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(
                fields=["orchestrator", "external_id"], name="agent_unique_external_id"
            )
        ]
        # The agents page: the most recently seen first, a page by key, however many workers
        # a cluster has had; found by any part of their title or host.
        indexes = [
            DescendingNullsLastIndex(field="last_seen_at", name="agent_last_seen_idx"),
            TrigramIndex(field="title", name="agent_title_trgm"),
            TrigramIndex(field="host", name="agent_host_trgm"),
        ]

    def __str__(self) -> str:
        return self.title


class Schedule(models.Model):
    """Leapwork schedule, Conductor workflow definition (by name), Testsigma test plan."""

    orchestrator = models.ForeignKey(  # led by its unique (orchestrator, external_id)
        Orchestrator, on_delete=models.CASCADE, related_name="schedules", db_index=False
    )
    external_id = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    is_enabled = models.BooleanField(default=True)
    # Leapwork's Run Flow by Id makes a temporary schedule for each run.
    is_temporary = models.BooleanField(default=False)
    # Leapwork RunListSteps [{id, title, index}]; Conductor task references [{id, title, index}].
    steps = models.JSONField(default=list, blank=True)
    vanished_at = models.DateTimeField(null=True, blank=True)
    # Its newest run (by start) and that run's start, kept by the run writer
    # (runs.services.sync.write.schedules_touch): the overview reads each schedule's latest
    # run through this key, not a search of its runs per schedule.
    last_run_at = models.DateTimeField(null=True, blank=True)
    latest_run = models.ForeignKey(
        "Run", null=True, blank=True, editable=False, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(
                fields=["orchestrator", "external_id"], name="schedule_unique_external_id"
            )
        ]
        indexes = [TrigramIndex(field="title", name="schedule_title_trgm")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("runs:schedule", args=[self.pk])


class TestCase(models.Model):
    """Leapwork flow, Conductor task (definition name + reference name), Testsigma test case."""

    orchestrator = models.ForeignKey(  # led by its unique (orchestrator, external_id)
        Orchestrator, on_delete=models.CASCADE, related_name="test_cases", db_index=False
    )
    external_id = models.CharField(max_length=300)
    title = models.CharField(max_length=300)
    suite = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(
                fields=["orchestrator", "external_id"], name="testcase_unique_external_id"
            )
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("runs:test_case", args=[self.pk])


class Trigger(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    MANUAL = "manual", "Manual"
    RERUN = "rerun", "Rerun"


class Run(models.Model):
    """One run: Leapwork run, one attempt of a Conductor execution, Testsigma test plan result."""

    # Both keys lead indexes of their own below (run_orch_idx, run_schedule_idx) and the
    # orchestrator the unique attempt too: no single-column index for either.
    orchestrator = models.ForeignKey(
        Orchestrator, on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    # The schedule a run belongs to in Runboard: a rerun's runs stay under their source's.
    schedule = models.ForeignKey(
        Schedule,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="runs",
        db_index=False,
    )
    # The vendor's own schedule when it is not `schedule`: the temporary schedule Leapwork's
    # Run Flow by Id makes for each run (deleted upstream once the run is over).
    vendor_schedule = models.ForeignKey(
        Schedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="vendor_runs"
    )
    external_id = models.CharField(max_length=200)
    # A Conductor rerun, retry or restart reuses its workflowId: each attempt is its own Run.
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices(), default=Status.QUEUED)
    vendor_status = models.CharField(max_length=100, blank=True)
    # When it started, or was queued if it has not started yet: never empty, so history
    # pages can paginate by (started_at, id).
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    # Leapwork variables Runboard sent; Conductor workflow input; Testsigma runtimeData.
    variables = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULED)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    # Who the orchestrator says started it (Testsigma executedBy, Conductor createdBy).
    vendor_triggered_by = models.CharField(max_length=200, blank=True)
    rerun_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns"
    )
    rerun_request = models.ForeignKey(
        "RerunRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    build = models.CharField(max_length=200, blank=True)
    environment = models.CharField(max_length=200, blank=True)
    version = models.CharField(max_length=50, blank=True)
    correlation_id = models.CharField(max_length=300, blank=True)
    message = models.TextField(blank=True)
    total_count = models.PositiveIntegerField(default=0)
    passed_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    # Finished, neither passed nor failed: cancelled, skipped, unknown.
    other_count = models.PositiveIntegerField(default=0)
    # Not finished yet: total = passed + failed + other + queued + running.
    queued_count = models.PositiveIntegerField(default=0)
    running_count = models.PositiveIntegerField(default=0)
    # Its results by agent and status, which sync keeps with them (runs/services/agent_counts):
    # [[status, agent pk or null, results, data-driven ones], …]. None: not kept (results
    # written some other way), so the run page counts them.
    result_counts = models.JSONField(null=True, blank=True, default=None, editable=False)
    # Testsigma discovery: the run this one derives from, and its plan's newest run.
    parent_external_id = models.CharField(max_length=200, blank=True)
    latest_sibling_id = models.CharField(max_length=200, blank=True)
    # A digest of the last snapshot stored: a sync pass rewrites only runs that changed.
    fingerprint = models.CharField(max_length=64, blank=True)
    # Attempts that were overwritten upstream stay frozen; vanished runs are kept as history.
    is_frozen = models.BooleanField(default=False)
    vanished_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["orchestrator", "external_id", "attempt"], name="run_unique_attempt"
            ),
            models.CheckConstraint(condition=Q(attempt__gte=1), name="run_attempt_positive"),
        ]
        indexes = [
            models.Index(fields=["-started_at", "-id"], name="run_started_idx"),
            models.Index(fields=["schedule", "-started_at", "-id"], name="run_schedule_idx"),
            models.Index(fields=["status", "-started_at", "-id"], name="run_status_idx"),
            models.Index(fields=["orchestrator", "-started_at", "-id"], name="run_orch_idx"),
            models.Index(fields=["duration", "id"], name="run_duration_idx"),
            DescendingNullsLastIndex(field="duration", name="run_duration_desc_idx"),
            TrigramIndex(field="external_id", name="run_external_trgm"),
            TrigramIndex(field="build", name="run_build_trgm"),
            # The build filter: builds that start with what was typed ("2.0" finds 2.0.1).
            PrefixIndex(field="build", name="run_build_prefix_idx"),
            models.Index(fields=["trigger", "-started_at", "-id"], name="run_trigger_idx"),
            # The variables a schedule's rerun form starts from: its newest run that had
            # any, not a walk back through every run of the schedule that had none.
            models.Index(
                fields=["schedule", "-started_at"],
                name="run_schedule_vars_idx",
                condition=~Q(variables={}),
            ),
        ]

    def __str__(self) -> str:
        label = self.schedule.title if self.schedule_id else self.external_id
        return f"{label} #{self.external_id[:8]}" + (
            f" (attempt {self.attempt})" if self.attempt > 1 else ""
        )

    def get_absolute_url(self) -> str:
        return reverse("runs:detail", args=[self.pk])

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @property
    def is_terminal(self) -> bool:
        return self.status_enum.is_terminal

    @property
    def done_count(self) -> int:
        """Results that have finished (queued and running ones are not done)."""
        return self.passed_count + self.failed_count + self.other_count


class ExecutionResult(models.Model):
    """Leapwork run item, Conductor task execution, Testsigma test case result."""

    # No single-column indexes on these: each leads a composite index below.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="results", db_index=False)
    test_case = models.ForeignKey(
        TestCase,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="results",
        db_index=False,
    )
    agent = models.ForeignKey(
        Agent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="results",
        db_index=False,
    )
    # Leapwork RunItemId, Conductor taskId, Testsigma testCaseResultId.
    external_id = models.CharField(max_length=200)
    # Leapwork FlowId, Conductor referenceTaskName, Testsigma testCaseId: what a rerun names.
    case_key = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices(), default=Status.QUEUED)
    vendor_status = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    message = models.TextField(blank=True)
    log_excerpt = models.TextField(blank=True)
    # Conductor: seq orders tasks, retry_count counts retries, input is the task's inputData.
    seq = models.PositiveIntegerField(default=0)
    retry_count = models.PositiveIntegerField(default=0)
    input = models.JSONField(default=dict, blank=True)
    # Testsigma data-driven cases: [{id, name, status, vendor_status}].
    is_data_driven = models.BooleanField(default=False)
    iterations = models.JSONField(default=list, blank=True)
    # A failure's cause: the hash of its normalized message (runs.services.fingerprints, a
    # FailureGroup's), and the version of the algorithm that made it; empty unless it failed.
    fingerprint = models.CharField(max_length=16, blank=True, default="", db_default="")
    fingerprint_version = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["seq", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "external_id"], name="result_unique_external_id")
        ]
        indexes = [
            models.Index(fields=["run", "status"], name="result_run_status_idx"),
            # A run's page walks its results by (seq, id), a page at a time, at any run size.
            models.Index(fields=["run", "seq", "id"], name="result_run_seq_idx"),
            # ...and its failures first, the same way: a few in a run of thousands of passes.
            models.Index(
                fields=["run", "seq", "id"],
                name="result_run_failure_seq_idx",
                condition=Q(status__in=FAILURE_VALUES),
            ),
            # A run's results on one agent (the run page filtered by agent).
            models.Index(fields=["run", "agent"], name="result_run_agent_idx"),
            # The test case page: its results, newest first, a page by key.
            DescendingNullsLastIndex(
                leading=["test_case"], field="started_at", name="result_case_started_idx"
            ),
            models.Index(fields=["agent", "-started_at"], name="result_agent_idx"),
            # Failures only: by cause, newest first (a group's page), and by time (a window).
            # Both carry what those pages count, which PostgreSQL then reads from the index
            # alone, not from a heap page per failure.
            CoveringIndex(
                fields=["fingerprint", "-started_at"],
                name="result_fingerprint_idx",
                condition=~Q(fingerprint=""),
                covering=["id", "run", "test_case", "agent"],
            ),
            CoveringIndex(
                fields=["-started_at"],
                name="result_failed_started_idx",
                condition=~Q(fingerprint=""),
                covering=["id", "fingerprint", "run", "test_case", "agent"],
            ),
            # ...and one agent's in a window (the failures page filtered by agent), which
            # otherwise ANDs the agent's results with every failure of the history, or reads
            # every failure of the window from the index by start for the agent's few.
            CoveringIndex(
                fields=["agent", "-started_at"],
                name="result_agent_failed_idx",
                condition=~Q(fingerprint=""),
                covering=["id", "fingerprint", "run", "test_case"],
            ),
            # Whether a cause failed these cases before (new or known on a run's page): the
            # failures of a page's cases, not every result of them, with the run that says
            # on which schedule and when.
            CoveringIndex(
                fields=["test_case", "fingerprint"],
                name="result_case_cause_idx",
                condition=~Q(fingerprint=""),
                covering=["run"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_key or self.external_id} ({self.status})"

    @property
    def status_enum(self) -> Status:
        return Status(self.status)


class RunAgent(models.Model):
    """An agent a run's results ran on, with the run's start: kept by sync with the run's
    counts (runs.services.agent_counts), so the history filtered by agent walks the agent's
    runs newest first from an index, not every run of the history asking its results whether
    the agent ran any (an agent retired long ago: every run of the history)."""

    # No single-column indexes: the unique pair leads with the run, the index with the agent.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="agent_links", db_index=False
    )
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="run_links", db_index=False
    )
    # The run's started_at, written with the row (a run's start moves only when sync writes
    # the run, which writes these rows again).
    started_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "agent"], name="runagent_unique_pair")
        ]
        indexes = [
            models.Index(fields=["agent", "-started_at", "-run"], name="runagent_agent_started_idx")
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} on agent {self.agent_id}"


class RerunScope(models.TextChoices):
    ALL = "all", "All cases"
    FAILED = "failed", "Failed only"
    PICKED = "picked", "Picked cases"
    FROM_TASK = "from_task", "From a task"
    RUN_NOW = "run_now", "Run now"


class RerunState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    ACCEPTED = "accepted", "Accepted"
    PARTIAL = "partial", "Partly accepted"
    FAILED = "failed", "Refused"
    UNKNOWN = "unknown", "Outcome unknown"


class RerunBatch(models.Model):
    """One send of "rerun every failure of this cause": a RerunRequest per source run, each
    keyed by the batch's key and its source, so sending the batch again sends nothing."""

    group = models.ForeignKey("FailureGroup", on_delete=models.CASCADE, related_name="batches")
    idempotency_key = models.CharField(max_length=64, unique=True)
    days = models.PositiveSmallIntegerField()
    digest = models.CharField(max_length=64)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    requested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Rerun of cause {self.group_id} by {self.requested_by or 'someone'}"


class RerunRequest(models.Model):
    """The audit and idempotency record of one rerun or run-now, written before the call."""

    orchestrator = models.ForeignKey(
        Orchestrator, on_delete=models.CASCADE, related_name="rerun_requests"
    )
    source_run = models.ForeignKey(  # led by rerun_source_idx
        Run,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="rerun_requests",
        db_index=False,
    )
    schedule = models.ForeignKey(
        Schedule, on_delete=models.CASCADE, null=True, blank=True, related_name="rerun_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    requested_at = models.DateTimeField(default=timezone.now)
    scope = models.CharField(max_length=16, choices=RerunScope.choices)
    options = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True, default=uuid.uuid4)
    # Sent with the other reruns of one cause ("rerun every failure of this cause").
    batch = models.ForeignKey(
        RerunBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests"
    )
    state = models.CharField(max_length=16, choices=RerunState.choices, default=RerunState.PENDING)
    # What the orchestrator answered (run ids, per-call errors) or the error text.
    response = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Sent through the API: the SHA-256 of the request's body, so the same Idempotency-Key
    # with another body is refused instead of answered with this request.
    body_digest = models.CharField(max_length=64, blank=True, editable=False)
    # The worker sending it holds a lease, renewed at every call (runs.services.rerun_delivery).
    lease_token = models.CharField(max_length=36, blank=True, editable=False)
    lease_renewed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(source_run__isnull=False, schedule__isnull=True)
                    | Q(source_run__isnull=True, schedule__isnull=False)
                ),
                name="rerun_request_source_xor_schedule",
            )
        ]
        indexes = [
            models.Index(fields=["source_run", "-requested_at"], name="rerun_source_idx"),
            # The few requests still sending or not settled: recovery and reconciliation.
            models.Index(
                fields=["requested_at"],
                name="rerun_open_idx",
                condition=Q(state__in=["pending", "sending", "unknown", "partial"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} by {self.requested_by or 'someone'} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("runs:rerun_request", args=[self.pk])


class RerunCallState(models.TextChoices):
    PLANNED = "planned", "Waiting"
    SENDING = "sending", "Sending"
    ACCEPTED = "accepted", "Accepted"
    REFUSED = "refused", "Refused"
    UNKNOWN = "unknown", "Outcome unknown"
    NOT_SENT = "not_sent", "Not sent"


class RerunCall(models.Model):
    """One call of a rerun request, recorded before it is sent and settled when it answers.

    A call found `sending` by a worker taking over from one that died was in flight at the
    crash: it becomes `unknown` and is reconciled, never sent again.
    """

    request = models.ForeignKey(  # led by its unique (request, index)
        RerunRequest, on_delete=models.CASCADE, related_name="calls", db_index=False
    )
    index = models.PositiveIntegerField()
    target = models.CharField(max_length=300)
    # The planned request (runs.orchestrators.base.PlannedCall); no method: a run-now.
    method = models.CharField(max_length=8, blank=True)
    path = models.CharField(max_length=1000, blank=True)
    params = models.JSONField(default=dict, blank=True)
    body = models.JSONField(null=True, blank=True)
    state = models.CharField(
        max_length=16, choices=RerunCallState.choices, default=RerunCallState.PLANNED
    )
    run_external_id = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    # Its answer was lost; the run it started was found later by asking the orchestrator.
    reconciled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "index"]
        constraints = [
            models.UniqueConstraint(fields=["request", "index"], name="rerun_call_unique_index")
        ]

    def __str__(self) -> str:
        return f"{self.target} ({self.state})"


class FailureGroup(models.Model):
    """A cause of failure: the failed results whose messages normalize to the same text, on
    any orchestrator (runs.services.fingerprints). Written by sync, once per new cause."""

    fingerprint = models.CharField(max_length=16, unique=True)
    version = models.PositiveSmallIntegerField()
    # What was hashed: the message with its ids, numbers, times and quoted values replaced.
    normalized = models.TextField()
    # The earliest and latest start of its failures that sync has seen.
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        indexes = [models.Index(fields=["-first_seen_at"], name="failure_group_first_seen_idx")]
        permissions = [("mute_failuregroup", "Can mute a failure group")]

    def __str__(self) -> str:
        return self.normalized[:80]

    def get_absolute_url(self) -> str:
        return reverse("runs:failure_group", args=[self.pk])


def mute_in_force(at: datetime | None = None, prefix: str = "") -> Q:
    """A mute in force at `at` (now): not lifted, and not expired (an expiry needs no rewrite).
    `prefix` names the mutes from a related model ("mutes__")."""
    at = at or timezone.now()
    return Q(**{f"{prefix}lifted_at__isnull": True}) & (
        Q(**{f"{prefix}until__isnull": True}) | Q(**{f"{prefix}until__gt": at})
    )


class FailureMuteQuerySet(models.QuerySet):
    def active(self, at: datetime | None = None) -> FailureMuteQuerySet:
        """Mutes in force."""
        return self.filter(mute_in_force(at))


class FailureMute(models.Model):
    """A cause muted, everywhere or for one schedule or agent, for good or until a time.

    Muted failures still show, greyed, but no longer make a schedule "failing". Stored run
    counts stay raw: a mute applies when pages read them. Muting and lifting are recorded.
    """

    group = models.ForeignKey(FailureGroup, on_delete=models.CASCADE, related_name="mutes")
    schedule = models.ForeignKey(
        Schedule, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    until = models.DateTimeField(null=True, blank=True)
    reason = models.TextField()
    muted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    muted_at = models.DateTimeField(default=timezone.now)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)

    objects = FailureMuteQuerySet.as_manager()

    class Meta:
        ordering = ["-muted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.group} muted by {self.muted_by or 'someone'}"

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None and (self.until is None or self.until > timezone.now())


class Revision(models.Model):
    """A count of the changes to what the history pages show, in one row: a page drawn at one
    revision is served again until the count moves (runs.services.revision)."""

    value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"revision {self.value}"


class ChainLease(models.Model):
    """When a background chain's running link last said it was alive (runs.services.queue):
    a link whose lease runs out is taken for dead, and its chain is started again."""

    name = models.CharField(max_length=32, primary_key=True)
    renewed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} lease, renewed {self.renewed_at:%Y-%m-%d %H:%M:%S}"


class ApiToken(models.Model):
    """A personal API token (`Authorization: Bearer …`): only its SHA-256 is stored, the
    token itself is shown once when it is made. It acts with its user's permissions."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The token's first characters, to tell tokens apart in lists (never enough to use one).
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The writes of the current minute, for the rate limit: one UPDATE per write.
    window_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    window_writes = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"


class WebhookEvent(models.TextChoices):
    RERUN_FINISHED = "rerun.finished", "A rerun finished (with its verdict)"
    SCHEDULE_FAILING = "schedule.failing", "A schedule started failing"
    FAILURE_NEW = "failure.new", "A failure never seen before anywhere"
    SYNC_FAILING = "sync.failing", "An orchestrator's sync is failing"


class WebhookFormat(models.TextChoices):
    RUNBOARD = "runboard", "Runboard JSON"
    SLACK = "slack", "Slack incoming webhook"


class Webhook(models.Model):
    """Where to tell the team about an event: an outgoing HTTP POST, signed with the secret
    (HMAC-SHA256 of the body, in a header)."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, blank=True)  # WebhookEvent values
    body_format = models.CharField(
        max_length=16, choices=WebhookFormat.choices, default=WebhookFormat.RUNBOARD
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class WebhookDeliveryState(models.TextChoices):
    PENDING = "pending", "Waiting"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Gave up"


class WebhookDelivery(models.Model):
    """One event for one webhook: its body, and how sending it went (attempts, last error).
    `key` names the event's subject, so an event is delivered once per webhook."""

    webhook = models.ForeignKey(  # led by its unique (webhook, key)
        Webhook, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    event = models.CharField(max_length=32, choices=WebhookEvent.choices)
    key = models.CharField(max_length=200)
    payload = models.JSONField(default=dict)
    state = models.CharField(
        max_length=16,
        choices=WebhookDeliveryState.choices,
        default=WebhookDeliveryState.PENDING,
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "key"], name="webhook_delivery_once")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due_idx",
                condition=Q(state="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook} ({self.state})"
