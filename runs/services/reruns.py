"""Reruns: validate a rerun against what the orchestrator can do, record it, send it.

The RerunRequest is written (pending) before the orchestrator is called, and no database
transaction is open during the call: record, call, then save. A repeated idempotency key
returns the existing request and sends nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from runs.models import (
    Agent,
    ExecutionResult,
    Orchestrator,
    OrchestratorKind,
    RerunRequest,
    RerunScope,
    RerunState,
    Run,
    Schedule,
    Trigger,
)
from runs.orchestrators.base import (
    CallResult,
    Capabilities,
    CaseTarget,
    OrchestratorClient,
    OrchestratorError,
    PlannedCall,
    RerunOutcome,
    RerunSpec,
    Scope,
    StepTarget,
    Unavailable,
)
from runs.orchestrators.registry import client_class
from runs.services.polling import poll_cycle_ensure
from runs.services.session import orchestrator_session
from runs.services.sync import run_refresh
from runs.status import FAILURES

logger = logging.getLogger(__name__)

PERMISSION = "runs.add_rerunrequest"

__all__ = ["Scope", "rerun_capabilities", "rerun_plan", "rerun_start"]


def rerun_capabilities(orchestrator: Orchestrator) -> Capabilities:
    """What this orchestrator's reruns can do: the forms show only this."""
    return client_class(orchestrator.kind).capabilities


class RerunInvalid(Exception):
    """The rerun asks for something this orchestrator cannot do, or names what does not exist."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class RerunInput:
    """What the form asked for, by Runboard ids (ExecutionResult and Agent pks)."""

    scope: str
    result_ids: tuple[int, ...] = ()
    agent_ids: tuple[int, ...] = ()
    iterations: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    only_failed_iterations: bool = False
    variables: Mapping[str, str] = field(default_factory=dict)
    workflow_input: Mapping[str, Any] | None = None
    correlation_id: str | None = None
    task_input: Mapping[str, Any] | None = None
    build: str = ""
    environment: str = ""


@dataclass(frozen=True)
class PlannedCase:
    title: str
    agents: tuple[str, ...]
    iterations: tuple[str, ...] = ()


@dataclass(frozen=True)
class RerunPlan:
    """Exactly what will run, and the requests the orchestrator will receive."""

    scope: str
    summary: str
    cases: tuple[PlannedCase, ...]
    agents: tuple[str, ...]
    variables: Mapping[str, Any]
    calls: tuple[PlannedCall, ...]
    spec: RerunSpec | None = None  # None for "run now"
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """A digest of everything this plan would send: Send must carry the one previewed."""
        sent = {
            "scope": self.scope,
            "cases": [asdict(case) for case in self.cases],
            "agents": list(self.agents),
            "variables": dict(self.variables),
            "calls": [asdict(call) for call in self.calls],
            "options": {k: v for k, v in self.options.items() if k != "summary"},
        }
        encoded = json.dumps(sent, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()


class PlanChanged(Exception):
    """The inputs sent no longer plan what was previewed: nothing was sent."""

    def __init__(self, plan: RerunPlan) -> None:
        super().__init__(
            "The form changed after its preview, so nothing was sent. "
            "Check the new preview below, then send it."
        )
        self.plan = plan


# Planning (no HTTP) --------------------------------------------------------------------------


def rerun_plan(
    *,
    source: Run | None = None,
    schedule: Schedule | None = None,
    data: RerunInput,
    client: OrchestratorClient | None = None,
) -> RerunPlan:
    """Validate a rerun (or run-now) and say exactly what it will send; raises RerunInvalid."""
    if (source is None) == (schedule is None):
        raise ValueError("rerun_plan needs a source run or a schedule, not both")
    if schedule is not None:
        return _plan_run_now(schedule, data)
    assert source is not None
    with orchestrator_session(source.orchestrator, client=client) as session:
        return _plan_rerun(source, data, session)


def _plan_rerun(source: Run, data: RerunInput, client: OrchestratorClient) -> RerunPlan:
    scope = _scope(source, data, client)
    results = list(source.results.select_related("agent", "test_case").order_by("seq", "id"))
    for result in results:
        result.run = source  # no query per result for its run's orchestrator
    picked, agents = _validated(source, data, scope, results, client)
    steps, cases, planned_cases = _targets(source, data, scope, results, picked, agents)

    only_failed_iterations = bool(
        scope == Scope.FAILED
        and client.capabilities.iterations
        and data.only_failed_iterations
        and any(r.is_data_driven for r in picked)
    )
    task = picked[0] if scope == Scope.FROM_TASK else None
    spec = RerunSpec(
        scope=scope,
        cases=tuple(cases),
        steps=steps,
        variables=dict(data.variables),
        workflow_input=dict(data.workflow_input) if data.workflow_input is not None else None,
        correlation_id=data.correlation_id or None,
        task_id=task.external_id if task else "",
        task_input=dict(data.task_input) if data.task_input is not None else None,
        only_failed_iterations=only_failed_iterations,
    )
    schedule_id = source.schedule.external_id if source.schedule else ""
    calls = tuple(client.plan_rerun(source.external_id, spec, schedule_id=schedule_id))
    label = f"from task {task.case_key}" if task else RerunScope(scope.value).label.lower()
    summary = _summary(
        scope=label,
        agents=_where(scope, agents, client.capabilities),
        count=len(planned_cases),
        iterations=only_failed_iterations,
    )
    options = {
        "scope": scope.value,
        "summary": summary,
        "cases": [c.title for c in planned_cases],
        "result_ids": [r.pk for r in picked],
        "agents": list(_titles(agents)),
        "variables": dict(data.variables),
        "workflow_input": spec.workflow_input,
        "correlation_id": spec.correlation_id,
        "task": task.case_key if task else None,
        "task_input": spec.task_input,
        "iterations": {str(k): list(v) for k, v in data.iterations.items()},
        "only_failed_iterations": only_failed_iterations,
    }
    return RerunPlan(
        scope=scope.value,
        summary=summary,
        cases=tuple(planned_cases),
        agents=_titles(agents) or tuple(a.title for a in _source_agents(results)),
        variables=(
            dict(data.variables) or dict(data.workflow_input or {}) or dict(data.task_input or {})
        ),
        calls=calls,
        spec=spec,
        options=options,
    )


def _scope(source: Run, data: RerunInput, client: OrchestratorClient) -> Scope:
    """The vendor scope asked for, if this orchestrator can rerun it."""
    orchestrator = source.orchestrator
    wanted = data.scope
    if wanted == RerunScope.PICKED and orchestrator.kind == OrchestratorKind.CONDUCTOR:
        wanted = RerunScope.FROM_TASK  # Conductor reruns one picked task, from that task
    try:
        scope = Scope(wanted)
    except ValueError:
        raise RerunInvalid({"scope": f"Unknown scope {data.scope!r}."}) from None
    if scope not in client.capabilities.scopes:
        label = RerunScope(scope.value).label
        raise RerunInvalid({"scope": f"{orchestrator.get_kind_display()} cannot rerun “{label}”."})
    return scope


def _validated(
    source: Run,
    data: RerunInput,
    scope: Scope,
    results: list[ExecutionResult],
    client: OrchestratorClient,
) -> tuple[list[ExecutionResult], list[Agent]]:
    """(the results to rerun, the agents chosen), or RerunInvalid with every problem found."""
    orchestrator = source.orchestrator
    capabilities = client.capabilities
    vendor = orchestrator.get_kind_display()
    errors: dict[str, str] = {}
    by_pk = {r.pk: r for r in results}
    if any(pk not in by_pk for pk in data.result_ids):
        errors["cases"] = "Some picked cases are not results of this run."
    agents = _agents(orchestrator, data.agent_ids, errors)
    if data.agent_ids and not capabilities.agent_picker:
        errors["agents"] = f"{vendor} does not let Runboard pick agents."
    if data.variables and not capabilities.variables:
        errors["variables"] = f"{vendor} takes no variables on a rerun."
    _check_variables(data.variables, errors)
    if data.workflow_input is not None and not capabilities.workflow_input:
        errors["workflow_input"] = "This orchestrator takes no workflow input."
    if data.task_input is not None and not capabilities.task_input:
        errors["task_input"] = "This orchestrator takes no task input."

    picked = [by_pk[pk] for pk in data.result_ids if pk in by_pk]
    if scope == Scope.FAILED:
        picked = [r for r in _last_tries(results) if r.status in FAILURES]
        if not picked:
            errors["scope"] = "This run has no failed cases to rerun."
    elif scope == Scope.PICKED and not picked and "cases" not in errors:
        errors["cases"] = "Pick at least one case."
    elif scope == Scope.FROM_TASK and len(picked) != 1:
        errors["cases"] = "Pick exactly one task to rerun from."
    for pk, iteration_ids in data.iterations.items():
        result = by_pk.get(pk)
        known = {str(i.get("id")) for i in (result.iterations if result else [])}
        if result is None or not set(iteration_ids) <= known:
            errors["iterations"] = "Some picked iterations are not iterations of this run."
    if errors:
        raise RerunInvalid(errors)
    return picked, agents


def _targets(
    source: Run,
    data: RerunInput,
    scope: Scope,
    results: list[ExecutionResult],
    picked: list[ExecutionResult],
    agents: list[Agent],
) -> tuple[tuple[StepTarget, ...], list[CaseTarget], list[PlannedCase]]:
    """What the vendor is asked to run (steps or cases), and what the preview lists."""
    leapwork = source.orchestrator.kind == OrchestratorKind.LEAPWORK
    if scope == Scope.ALL:
        planned = [
            PlannedCase(
                r.test_case.title if r.test_case else r.case_key,
                (_titles(agents) if leapwork else ()) or (_agent_title(r),),
            )
            for r in _last_tries(results)
        ]
        if not leapwork:
            return (), [], planned
        # Leapwork: one Steps entry per RunListStep, each on the chosen agents (default: the
        # agents the source run used; run items do not say which step they ran in).
        step_agents = tuple(a.external_id for a in agents or _source_agents(results))
        steps = tuple(
            StepTarget(step_id=str(step["id"]), agent_ids=step_agents)
            for step in (source.schedule.steps if source.schedule else [])
        )
        if not steps:
            raise RerunInvalid({"scope": "The schedule's steps are not known yet: sync it first."})
        return steps, [], planned

    cases: list[CaseTarget] = []
    # What the preview lists mirrors what is sent: a case once, with every agent it runs on.
    planned: dict[str, PlannedCase] = {}
    seen: set[tuple[str, str]] = set()
    for result in picked:
        key = result.case_key or result.external_id
        agents_of_case = _target_agents(result, agents)
        if scope in (Scope.FAILED, Scope.PICKED):
            fresh = []
            for agent in agents_of_case or [None]:
                if (key, agent.external_id if agent else "") in seen:
                    continue  # a flow runs once on an agent, however many agents it failed on
                seen.add((key, agent.external_id if agent else ""))
                fresh.append(agent)
                cases.append(
                    CaseTarget(
                        result_id=result.external_id,
                        case_key=result.case_key,
                        agent_ids=(agent.external_id,) if agent else (),
                        iteration_ids=tuple(data.iterations.get(result.pk, ())),
                        is_data_driven=result.is_data_driven,
                    )
                )
            agents_of_case = [a for a in fresh if a is not None]
        earlier = planned.get(key)
        planned[key] = PlannedCase(
            title=result.test_case.title if result.test_case else result.case_key,
            agents=(earlier.agents if earlier else ())
            + (_titles(agents_of_case) or (() if earlier else ("its agent",))),
            iterations=_iteration_names(result, data.iterations.get(result.pk)),
        )
    return (), cases, list(planned.values())


def _plan_run_now(schedule: Schedule, data: RerunInput) -> RerunPlan:
    capabilities = rerun_capabilities(schedule.orchestrator)
    errors: dict[str, str] = {}
    if not capabilities.run_now:
        errors["scope"] = "This orchestrator cannot start a schedule now."
    if data.variables and not capabilities.run_now_variables:
        errors["variables"] = "This orchestrator takes no variables when run now."
    if (data.build or data.environment) and not capabilities.build_and_environment:
        errors["build"] = "This orchestrator takes no build number or environment."
    _check_variables(data.variables, errors)
    if errors:
        raise RerunInvalid(errors)
    variables = dict(data.variables)
    summary = _summary(scope="run now", agents="", count=0, iterations=False)
    if variables:
        summary += f" with {', '.join(f'{k}={v}' for k, v in variables.items())}"
    return RerunPlan(
        scope=RerunScope.RUN_NOW,
        summary=summary,
        cases=(),
        agents=(),
        variables=variables,
        calls=(),
        options={
            "scope": RerunScope.RUN_NOW,
            "summary": summary,
            "variables": variables,
            "build": data.build,
            "environment": data.environment,
        },
    )


def _check_variables(variables: Mapping[str, Any], errors: dict[str, str]) -> None:
    for name in variables:
        if not name or not str(name).strip() or any(c in str(name) for c in "&=?# "):
            errors["variables"] = f"“{name}” is not a valid variable name."


def _agents(orchestrator, agent_ids: Sequence[int], errors: dict[str, str]) -> list[Agent]:
    agents = list(Agent.objects.filter(orchestrator=orchestrator, pk__in=list(agent_ids)))
    if len(agents) != len(set(agent_ids)):
        errors["agents"] = "Some chosen agents do not belong to this orchestrator."
    order = {pk: i for i, pk in enumerate(agent_ids)}
    return sorted(agents, key=lambda a: order.get(a.pk, 0))


def _target_agents(result: ExecutionResult, chosen: Sequence[Agent]) -> list[Agent]:
    """Where a case runs again: on the agents chosen, else on the agent it ran on."""
    if chosen:
        return list(chosen)
    return [result.agent] if result.agent is not None else []


def _last_tries(results: Sequence[ExecutionResult]) -> list[ExecutionResult]:
    """The results that stand: of a Conductor task's several tries, the last one (a retry is
    another result of the same reference name); elsewhere each result is its own case run."""
    last: dict[str, ExecutionResult] = {}
    for result in sorted(results, key=lambda r: (r.seq, r.pk)):
        conductor = result.run.orchestrator.kind == OrchestratorKind.CONDUCTOR
        last[result.case_key if conductor and result.case_key else result.external_id] = result
    return list(last.values())


def _source_agents(results: Sequence[ExecutionResult]) -> list[Agent]:
    seen: dict[int, Agent] = {}
    for result in results:
        if result.agent is not None:
            seen.setdefault(result.agent.pk, result.agent)
    return list(seen.values())


def _titles(agents: Sequence[Agent]) -> tuple[str, ...]:
    return tuple(a.title for a in agents)


def _agent_title(result: ExecutionResult) -> str:
    return result.agent.title if result.agent else "its agent"


def _iteration_names(result: ExecutionResult, ids: Sequence[str] | None) -> tuple[str, ...]:
    if not ids:
        return ()
    return tuple(
        str(i.get("name") or i.get("id")) for i in result.iterations if str(i.get("id")) in ids
    )


def _where(scope: Scope, chosen: Sequence[Agent], capabilities: Capabilities) -> str:
    """Where the rerun runs, in the words of the form's agent picker."""
    if chosen:
        return f"on {', '.join(_titles(chosen))}"
    if not capabilities.agent_picker:
        return ""
    if scope == Scope.ALL:
        return "on the agents this run used"
    return "each case on the agent it ran on"


def _summary(*, scope: str, agents: str, count: int, iterations: bool) -> str:
    parts = [scope + (" (failed iterations)" if iterations else "")]
    if agents:
        parts.append(agents)
    if count:
        parts.append(f"{count} case{'s' if count != 1 else ''}")
    return ", ".join(parts)


# Sending -------------------------------------------------------------------------------------


def rerun_start(
    *,
    user: AbstractBaseUser | AnonymousUser,
    idempotency_key: str,
    data: RerunInput,
    source: Run | None = None,
    schedule: Schedule | None = None,
    transport: httpx.BaseTransport | None = None,
    previewed_digest: str | None = None,
) -> tuple[RerunRequest, bool]:
    """Record, send and settle a rerun or run-now; return (request, sent now?).

    A key seen before returns its request untouched: nothing is sent twice. With
    `previewed_digest` (the forms always give it), inputs that plan anything else than what
    was previewed raise PlanChanged and send nothing.
    """
    if not user.has_perm(PERMISSION):
        raise PermissionDenied("Rerunning needs the permission runs.add_rerunrequest.")
    existing = rerun_request_find(idempotency_key=idempotency_key)
    if existing is not None:
        return existing, False
    target = source if source is not None else schedule
    assert target is not None
    orchestrator = target.orchestrator
    with orchestrator_session(orchestrator, transport=transport) as client:
        plan = rerun_plan(source=source, schedule=schedule, data=data, client=client)
        if previewed_digest is not None and previewed_digest != plan.digest:
            raise PlanChanged(plan)
        try:
            with transaction.atomic():
                request = RerunRequest.objects.create(
                    orchestrator=orchestrator,
                    source_run=source,
                    schedule=schedule,
                    requested_by=user if user.is_authenticated else None,
                    scope=plan.scope,
                    options=plan.options,
                    idempotency_key=idempotency_key,
                )
        except IntegrityError:
            return RerunRequest.objects.get(idempotency_key=idempotency_key), False
        previous = None
        if source is not None and orchestrator.kind == OrchestratorKind.CONDUCTOR:
            previous = _freshen(source, client)
        outcome = _send(client, plan, data, source=source, schedule=schedule)
        _settle(
            request, outcome, plan, user=user, source=source, schedule=schedule, previous=previous
        )
        _fetch_new_runs(request, client)
    request.refresh_from_db()
    if request.runs.exists():
        poll_cycle_ensure()
    return request, True


def _freshen(source: Run, client: OrchestratorClient) -> Run:
    """Conductor reruns overwrite the execution: store its latest state first, as history.

    Returns the attempt the rerun will follow.
    """
    try:
        return run_refresh(run=source, client=client)
    except OrchestratorError as exc:
        logger.info("could not refresh %s before its rerun: %s", source, exc)
    return (
        Run.objects.filter(orchestrator=source.orchestrator, external_id=source.external_id)
        .order_by("-attempt")
        .first()
        or source
    )


def _send(
    client: OrchestratorClient,
    plan: RerunPlan,
    data: RerunInput,
    *,
    source: Run | None,
    schedule: Schedule | None,
) -> RerunOutcome:
    try:
        if schedule is not None:
            run_id = client.run_now(
                schedule.external_id,
                variables=dict(plan.variables) or None,
                build=data.build,
                environment=data.environment,
            )
            return RerunOutcome(calls=(CallResult(target=schedule.external_id, run_id=run_id),))
        assert source is not None and plan.spec is not None
        schedule_id = source.schedule.external_id if source.schedule else ""
        return client.rerun(source.external_id, plan.spec, schedule_id=schedule_id)
    except OrchestratorError as exc:
        target = schedule.external_id if schedule else source.external_id if source else ""
        return RerunOutcome(calls=(CallResult(target=target, error=exc),))


def _state(outcome: RerunOutcome) -> str:
    if not outcome.errors:
        return RerunState.ACCEPTED
    if outcome.run_ids:
        return RerunState.PARTIAL
    if any(isinstance(c.error, Unavailable) and c.error.outcome_unknown for c in outcome.errors):
        return RerunState.UNKNOWN
    return RerunState.FAILED


def _message(state: str, outcome: RerunOutcome) -> str:
    errors = "; ".join(f"{c.target}: {c.error}" for c in outcome.errors)
    if state == RerunState.ACCEPTED:
        count = len(outcome.run_ids)
        return f"The orchestrator accepted it: {count} new run{'s' if count != 1 else ''}."
    if state == RerunState.PARTIAL:
        return f"Only part of it was accepted. These calls failed: {errors}"
    if state == RerunState.UNKNOWN:
        return (
            "The orchestrator did not answer in time, so whether it started anything is "
            f"unknown. Check its own history before trying again. ({errors})"
        )
    return f"The orchestrator refused it; nothing ran. {errors}"


def _settle(
    request: RerunRequest,
    outcome: RerunOutcome,
    plan: RerunPlan,
    *,
    user: AbstractBaseUser | AnonymousUser,
    source: Run | None,
    schedule: Schedule | None,
    previous: Run | None,
) -> None:
    state = _state(outcome)
    response = {
        "calls": [
            {
                "target": c.target,
                "run_id": c.run_id,
                "error": str(c.error) if c.error else "",
                "status_code": c.error.status_code if c.error else None,
            }
            for c in outcome.calls
        ]
    }
    triggered_by = user if user.is_authenticated else None
    with transaction.atomic():
        for run_id in dict.fromkeys(outcome.run_ids):
            _new_run(
                run_id,
                request,
                plan,
                source=source,
                schedule=schedule,
                user=triggered_by,
                previous=previous,
            )
        RerunRequest.objects.filter(pk=request.pk).update(
            state=state,
            response=response,
            message=_message(state, outcome),
            completed_at=timezone.now(),
        )


def _new_run(
    external_id: str,
    request: RerunRequest,
    plan: RerunPlan,
    *,
    source: Run | None,
    schedule: Schedule | None,
    user: Any,
    previous: Run | None,
) -> Run:
    """The run a rerun made, shown at once; sync fills it in as it progresses."""
    orchestrator = request.orchestrator
    fields: dict[str, Any] = {
        "rerun_request": request,
        "triggered_by": user,
        "trigger": Trigger.MANUAL if schedule is not None else Trigger.RERUN,
        "variables": dict(plan.variables),
    }
    if previous is not None and previous.external_id == external_id:
        # Conductor reran in place: the attempt it followed stays frozen, a new one follows.
        Run.objects.filter(pk=previous.pk).update(is_frozen=True)
        spec = plan.spec
        fields["variables"] = (
            dict(spec.workflow_input) if spec and spec.workflow_input else previous.variables
        )
        fields.update(rerun_of=previous, schedule=previous.schedule)
        run, _ = Run.objects.update_or_create(
            orchestrator=orchestrator,
            external_id=external_id,
            attempt=previous.attempt + 1,
            defaults=fields,
            create_defaults={**fields, "status": "queued", "started_at": timezone.now()},
        )
        return run
    # A rerun's runs stay under their source's schedule (Leapwork's temporary schedules are
    # the vendor's business: sync keeps them in `vendor_schedule`).
    fields["schedule"] = schedule if schedule is not None else source.schedule if source else None
    run, _ = Run.objects.update_or_create(
        orchestrator=orchestrator,
        external_id=external_id,
        attempt=1,
        defaults={**fields, "rerun_of": source},
        create_defaults={**fields, "rerun_of": source, "status": "queued"},
    )
    return run


def _fetch_new_runs(request: RerunRequest, client: OrchestratorClient) -> None:
    """Read each new run once right away, so its page opens with cases and agents."""
    for run in Run.objects.filter(rerun_request=request).select_related("orchestrator"):
        try:
            run_refresh(run=run, client=client)
        except OrchestratorError as exc:
            logger.info("new run %s not readable yet: %s", run.external_id, exc)


def rerun_request_find(*, idempotency_key: str) -> RerunRequest | None:
    """The request sent before with this key, if any: a key is sent once."""
    return RerunRequest.objects.filter(idempotency_key=idempotency_key).first()
