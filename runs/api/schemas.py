"""What the API takes and answers, as pydantic schemas (the OpenAPI schema is made of them).

Outputs are built from rows and selector results by the `of` classmethods, so every field a
client reads is named here once. No `from __future__ import annotations`: ninja and pydantic
read these annotations at import time.
"""

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import BaseModel, field_validator, model_validator

from runs import selectors
from runs.models import (
    Agent,
    ExecutionResult,
    FailureGroup,
    Orchestrator,
    RerunCall,
    RerunRequest,
    Run,
    Schedule,
    TestCase,
)
from runs.selectors import BIGINT_MAX, FailureGroupDetail, FailureGroupSummary, ResultCounts
from runs.services.reruns import RerunPlan

NO_NUL = "cannot hold a NUL character"


class Out(BaseModel):
    """An answer's shape, built field by field by its `of` from what the selectors read, never
    from a model instance: a plain pydantic model. ninja's Schema would pass every value
    through its getter for Django models (1.8 of the 3.0 ms a page of 50 runs took to build)."""


class ProblemDetail(Out):
    """RFC 9457 problem details: every error the API answers."""

    type: str = Field(..., description="urn:runboard:problem:<name>, or about:blank")
    title: str
    status: int
    detail: str
    errors: dict[str, str] | None = Field(None, description="field: what is wrong with it")


def _seconds(value: Any) -> float | None:
    return value.total_seconds() if value is not None else None


class Named(Out):
    id: int
    title: str


def _named(row: Agent | Schedule | TestCase | selectors.Titled | None) -> Named | None:
    return Named(id=row.pk, title=row.title) if row is not None else None


class OrchestratorOut(Out):
    id: int
    name: str
    kind: str
    enabled: bool
    healthy: bool
    last_synced_at: datetime | None
    last_sync_error: str
    schedule_count: int
    agent_count: int
    run_count: int
    has_running: bool

    @classmethod
    def of(cls, row: Orchestrator) -> "OrchestratorOut":
        return cls(
            id=row.pk,
            name=row.name,
            kind=row.kind,
            enabled=row.enabled,
            healthy=row.healthy,
            last_synced_at=row.last_synced_at,
            last_sync_error=row.last_sync_error,
            schedule_count=row.schedule_count,
            agent_count=row.agent_count,
            run_count=row.run_count,
            has_running=row.has_running,
        )


class ScheduleOut(Out):
    id: int
    orchestrator: str
    external_id: str
    title: str
    is_enabled: bool
    last_run_at: datetime | None
    url: str

    @classmethod
    def of(cls, row: Schedule) -> "ScheduleOut":
        return cls(
            id=row.pk,
            orchestrator=row.orchestrator.name,
            external_id=row.external_id,
            title=row.title,
            is_enabled=row.is_enabled,
            last_run_at=row.last_run_at,
            url=row.get_absolute_url(),
        )


class Page(Out):
    """A page by key: pass `next` as `after` (or `previous` as `before`) for the next one."""

    next: str | None = Field(None, description="the cursor of the next page, if any")
    previous: str | None = Field(None, description="the cursor of the page before, if any")


class SchedulePage(Page):
    items: list[ScheduleOut]


class RunCountsOut(Out):
    total: int
    passed: int
    failed: int = Field(..., description="failed or error")
    other: int = Field(..., description="finished, neither passed nor failed")
    queued: int
    running: int


class RunOut(Out):
    id: int
    orchestrator: str
    schedule: str | None = Field(..., description="the schedule's title")
    external_id: str
    attempt: int
    status: str
    vendor_status: str
    trigger: str
    build: str
    started_at: datetime
    finished_at: datetime | None
    duration: float | None = Field(..., description="seconds")
    rerun_of: int | None
    counts: RunCountsOut
    url: str

    @classmethod
    def of(cls, run: Run) -> "RunOut":
        return cls(
            id=run.pk,
            orchestrator=run.orchestrator.name,
            schedule=run.schedule.title if run.schedule_id else None,
            external_id=run.external_id,
            attempt=run.attempt,
            status=run.status,
            vendor_status=run.vendor_status,
            trigger=run.trigger,
            build=run.build,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration=_seconds(run.duration),
            rerun_of=run.rerun_of_id,
            counts=RunCountsOut(
                total=run.total_count,
                passed=run.passed_count,
                failed=run.failed_count,
                other=run.other_count,
                queued=run.queued_count,
                running=run.running_count,
            ),
            url=run.get_absolute_url(),
        )


class RunPage(Page):
    items: list[RunOut]


class AgentCountOut(Out):
    id: int
    title: str
    results: int
    failed: int


class ResultCountsOut(Out):
    """A run's results counted by status and by agent, in one snapshot."""

    by_status: dict[str, int]
    agents: list[AgentCountOut]
    failures: int

    @classmethod
    def of(cls, counts: ResultCounts) -> "ResultCountsOut":
        return cls(
            by_status=dict(counts.statuses),
            agents=[
                AgentCountOut(id=a.pk, title=a.title, results=a.results, failed=a.failed)
                for a in counts.agents
            ],
            failures=counts.failures,
        )


class RunDetailOut(RunOut):
    schedule_id: int | None
    environment: str
    correlation_id: str
    message: str
    variables: dict[str, Any]
    is_frozen: bool
    rerun_request: int | None
    results: ResultCountsOut

    @classmethod
    def of_detail(cls, run: Run, counts: ResultCounts) -> "RunDetailOut":
        return cls(
            **RunOut.of(run).model_dump(),
            schedule_id=run.schedule_id,
            environment=run.environment,
            correlation_id=run.correlation_id,
            message=run.message,
            variables=run.variables if isinstance(run.variables, dict) else {},
            is_frozen=run.is_frozen,
            rerun_request=run.rerun_request_id,
            results=ResultCountsOut.of(counts),
        )


class ResultOut(Out):
    id: int
    external_id: str
    case_key: str
    test_case: Named | None
    agent: Named | None
    status: str
    vendor_status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None = Field(..., description="seconds")
    message: str
    log_excerpt: str
    retry_count: int
    iterations: list[dict[str, Any]]
    run: int

    @classmethod
    def of(cls, result: ExecutionResult | selectors.ResultRow) -> "ResultOut":
        return cls(
            id=result.pk,
            external_id=result.external_id,
            case_key=result.case_key,
            test_case=_named(result.test_case),
            agent=_named(result.agent),
            status=result.status,
            vendor_status=result.vendor_status,
            started_at=result.started_at,
            finished_at=result.finished_at,
            duration=_seconds(result.duration),
            message=result.message,
            log_excerpt=result.log_excerpt,
            retry_count=result.retry_count,
            iterations=result.iterations if isinstance(result.iterations, list) else [],
            run=result.run_id,
        )


class ResultPage(Page):
    items: list[ResultOut]


class CaseStatsOut(Out):
    results: int
    failed: int
    in_original_runs: int
    failed_in_original_runs: int
    flaky: int = Field(..., description="failed in a run, then passed when it was rerun")


class CaseOut(Page):
    """A test case, its counts, and a page of its results (newest first)."""

    id: int
    orchestrator: str
    external_id: str
    title: str
    suite: str
    stats: CaseStatsOut
    items: list[ResultOut]

    @classmethod
    def of(
        cls, case: TestCase, stats: selectors.CaseStats, page: selectors.Page[ExecutionResult]
    ) -> "CaseOut":
        return cls(
            id=case.pk,
            orchestrator=case.orchestrator.name,
            external_id=case.external_id,
            title=case.title,
            suite=case.suite,
            stats=CaseStatsOut(
                results=stats.results,
                failed=stats.failed,
                in_original_runs=stats.flakiness.results,
                failed_in_original_runs=stats.flakiness.failed,
                flaky=stats.flakiness.flaky,
            ),
            items=[ResultOut.of(result) for result in page.items],
            next=page.next_cursor,
            previous=page.prev_cursor,
        )


class FailureGroupOut(Out):
    id: int
    fingerprint: str
    version: int
    normalized: str = Field(..., description="the message with its details replaced")
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    url: str

    @classmethod
    def of(cls, group: FailureGroup) -> "FailureGroupOut":
        return cls(
            id=group.pk,
            fingerprint=group.fingerprint,
            version=group.version,
            normalized=group.normalized,
            first_seen_at=group.first_seen_at,
            last_seen_at=group.last_seen_at,
            url=group.get_absolute_url(),
        )


class FailureGroupSummaryOut(FailureGroupOut):
    """A cause in the window asked for: how far it reached, and what reruns made of it."""

    results: int
    runs: int
    cases: int
    agents: int
    orchestrators: int
    last_at: datetime | None
    per_day: list[int]
    is_new: bool
    muted: bool
    rerun: int
    cleared: int
    rerun_verdict: str

    @classmethod
    def of_summary(cls, s: FailureGroupSummary) -> "FailureGroupSummaryOut":
        return cls(
            **FailureGroupOut.of(s.group).model_dump(),
            results=s.results,
            runs=s.runs,
            cases=s.cases,
            agents=s.agents,
            orchestrators=s.orchestrators,
            last_at=s.last_at,
            per_day=list(s.per_day),
            is_new=s.is_new,
            muted=s.muted,
            rerun=s.rerun,
            cleared=s.cleared,
            rerun_verdict=s.rerun_verdict,
        )


class FailureGroupDetailOut(FailureGroupOut):
    """Where a cause struck in the last `days` days, and its newest failures."""

    days: int
    total: int
    cases: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    schedules: list[dict[str, Any]]
    examples: list[ResultOut]

    @classmethod
    def of_detail(cls, group: FailureGroup, d: FailureGroupDetail) -> "FailureGroupDetailOut":
        return cls(
            **FailureGroupOut.of(group).model_dump(),
            days=d.days,
            total=d.total,
            cases=d.cases,
            agents=d.agents,
            schedules=d.schedules,
            examples=[ResultOut.of(result) for result in d.examples],
        )


# Reruns ------------------------------------------------------------------------------------


def _lone_surrogate(data: Any) -> bool:
    """Whether any text in `data` holds half of a UTF-16 pair, which JSON can carry ("\\ud800")
    but no database can store (a form's text never holds one)."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and any("\ud800" <= char <= "\udfff" for char in value):
            return True
    return False


class _Input(Schema):
    """What a rerun and a run-now share: preview or send, and the digest of a preview."""

    @model_validator(mode="after")
    def storable(self) -> Any:
        if _lone_surrogate(self.model_dump()):
            raise ValueError("Texts cannot hold a lone surrogate (\\ud800 to \\udfff).")
        return self

    preview: bool = Field(False, description="true: answer the plan and its digest, send nothing")
    digest: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="the digest of the plan previewed: a send that would differ is a 409",
    )
    variables: dict[str, str] = Field(
        default_factory=dict, description="name: value (Leapwork variables, Testsigma runtimeData)"
    )
    inputs: dict[str, Any] | None = Field(
        None, description="a JSON object: the workflow input (Conductor)"
    )


class RerunIn(_Input):
    """A rerun of a run: every option of the run page's rerun form."""

    scope: Literal["failed", "all", "picked", "from_task"] = "failed"
    cases: list[int] = Field(
        default_factory=list, description="ids of the run's results to rerun (scope picked)"
    )
    task: int | None = Field(
        None, ge=1, le=BIGINT_MAX, description="id of the result to rerun from (from_task)"
    )
    agents: list[int] = Field(
        default_factory=list, description="ids of the agents to run on (Leapwork)"
    )
    iterations: dict[str, list[str]] = Field(
        default_factory=dict,
        description="result id: ids of its iterations to rerun (Testsigma data-driven cases)",
    )
    only_failed_iterations: bool = False
    task_input: dict[str, Any] | None = Field(
        None, description="a JSON object: the input of the task rerun from (Conductor)"
    )
    correlation_id: str | None = Field(None, max_length=300)

    @field_validator("cases", "agents")
    @classmethod
    def ids_in_range(cls, ids: list[int]) -> list[int]:
        if any(not 1 <= pk <= BIGINT_MAX for pk in ids) or len(ids) > 10_000:
            raise ValueError("give at most 10,000 ids, each from 1 to 2**63-1")
        return ids

    @field_validator("correlation_id")
    @classmethod
    def no_nul(cls, value: str | None) -> str | None:
        if value and "\x00" in value:
            raise ValueError(NO_NUL)
        return value


class RunNowIn(_Input):
    """Run a schedule now: every option of the schedule page's run-now form."""

    build: str = Field("", max_length=200, description="Testsigma build number")
    environment: str = Field("", max_length=200, description="Testsigma environment id")

    @field_validator("build", "environment")
    @classmethod
    def no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError(NO_NUL)
        return value.strip()


class PlannedCaseOut(Out):
    title: str
    agents: list[str]
    iterations: list[str]


class PlannedCallOut(Out):
    target: str = Field(..., description="what the call reruns, in words")
    method: str
    path: str
    params: dict[str, Any]
    body: Any = None


class PlanOut(Out):
    """A preview: what will run, the requests the orchestrator will receive, and the digest
    a send may carry to be sure it sends exactly this."""

    scope: str
    summary: str
    digest: str
    cases: list[PlannedCaseOut]
    agents: list[str]
    variables: dict[str, Any]
    calls: list[PlannedCallOut]

    @classmethod
    def of(cls, plan: RerunPlan, targets: list[str]) -> "PlanOut":
        return cls(
            scope=str(plan.scope),
            summary=plan.summary,
            digest=plan.digest,
            cases=[
                PlannedCaseOut(title=c.title, agents=list(c.agents), iterations=list(c.iterations))
                for c in plan.cases
            ],
            agents=list(plan.agents),
            variables=dict(plan.variables),
            calls=[
                PlannedCallOut(
                    target=target,
                    method=call.method,
                    path=call.path,
                    params=dict(call.params),
                    body=call.body,
                )
                for call, target in zip(plan.calls, targets, strict=False)
            ],
        )


class RerunCallOut(Out):
    index: int
    target: str
    method: str
    path: str
    state: str = Field(..., description="planned, sending, accepted, refused, unknown, not_sent")
    status_code: int | None
    error: str
    run_external_id: str
    sent_at: datetime | None
    answered_at: datetime | None

    @classmethod
    def of(cls, call: RerunCall) -> "RerunCallOut":
        return cls(
            index=call.index,
            target=call.target,
            method=call.method,
            path=call.path,
            state=call.state,
            status_code=call.status_code,
            error=call.error,
            run_external_id=call.run_external_id,
            sent_at=call.sent_at,
            answered_at=call.answered_at,
        )


class VerdictOut(Out):
    """What the rerun's runs found: poll until `is_over`; `status` passed or failed then."""

    status: str
    text: str
    is_over: bool
    runs: int
    runs_over: int
    runs_failed: int
    total: int
    passed: int
    failing: int
    other: int
    unfinished: int

    @classmethod
    def of(cls, verdict: selectors.RerunVerdict | None) -> "VerdictOut | None":
        if verdict is None:
            return None
        return cls(
            status=verdict.status,
            text=verdict.text,
            is_over=verdict.is_over,
            runs=verdict.runs,
            runs_over=verdict.runs_over,
            runs_failed=verdict.runs_failed,
            total=verdict.total,
            passed=verdict.passed,
            failing=verdict.failing,
            other=verdict.other,
            unfinished=verdict.unfinished,
        )


class RerunRequestOut(Out):
    """A rerun or run-now request: whether the orchestrator took it (`state`), its calls,
    the runs it made and their verdict (null until it made a run)."""

    id: int
    state: str = Field(..., description="pending, sending, accepted, partial, failed, unknown")
    is_sent: bool = Field(..., description="false while pending or sending")
    message: str
    scope: str
    summary: str
    orchestrator: str
    source_run: int | None
    schedule: int | None
    requested_by: str | None
    requested_at: datetime
    completed_at: datetime | None
    calls: list[RerunCallOut]
    runs: list[RunOut]
    verdict: VerdictOut | None
    url: str

    @classmethod
    def of(cls, request: RerunRequest, calls: list[RerunCall]) -> "RerunRequestOut":
        runs = list(request.runs.all())
        return cls(
            id=request.pk,
            state=request.state,
            is_sent=request.state not in ("pending", "sending"),
            message=request.message,
            scope=request.scope,
            summary=str(request.options.get("summary", "")),
            orchestrator=request.orchestrator.name,
            source_run=request.source_run_id,
            schedule=request.schedule_id,
            requested_by=request.requested_by.get_username() if request.requested_by else None,
            requested_at=request.requested_at,
            completed_at=request.completed_at,
            calls=[RerunCallOut.of(call) for call in calls],
            runs=[RunOut.of(run) for run in runs],
            verdict=VerdictOut.of(selectors.rerun_verdict(request)),
            url=request.get_absolute_url(),
        )
