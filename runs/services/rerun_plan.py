"""Rerun planning: validate a rerun against what the orchestrator can do, and say exactly
what it will send. No HTTP: the vendor's rules are the client class's capabilities and its
`plan_rerun` classmethod, so a preview opens no connection.

The agents chosen keep one shape from the form to the call: Agent rows, whose external ids
go into the vendor-neutral RerunSpec.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, NullIf

from runs.models import Agent, ExecutionResult, Orchestrator, RerunScope, Run, Schedule
from runs.orchestrators.base import (
    BadRequest,
    Capabilities,
    PlannedCall,
    RerunSpec,
    Scope,
)
from runs.services.rerun_targets import (
    Picked,
    PlannedCase,
    PlanResult,
    RerunInput,
    RerunInvalid,
    agent_titles,
    rerun_targets,
    source_agents,
)
from runs.services.session import orchestrator_client_class
from runs.services.standing import case_of, results_standing
from runs.status import FAILURE_VALUES, FAILURES

# What makes two results tries of one case (standing.case_of), in SQL: its case key, else its
# own id.
CASE = Coalesce(NullIf(F("case_key"), Value("")), F("external_id"))
# A PlanResult's columns, in its order (its agent is read apart).
PLAN_RESULT_FIELDS = (
    *("id", "run_id", "external_id", "case_key", "seq", "status", "is_data_driven"),
    *("iterations", "agent_id", "test_case__title"),
)
AGENT_AT = PLAN_RESULT_FIELDS.index("agent_id")


def rerun_capabilities(orchestrator: Orchestrator) -> Capabilities:
    """What this orchestrator's reruns can do: the forms show only this."""
    return orchestrator_client_class(orchestrator).capabilities


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


def rerun_plan(
    *, source: Run | None = None, schedule: Schedule | None = None, data: RerunInput
) -> RerunPlan:
    """Validate a rerun (or run-now) and say exactly what it will send; raises RerunInvalid."""
    if (source is None) == (schedule is None):
        raise ValueError("rerun_plan needs a source run or a schedule, not both")
    if schedule is not None:
        return _plan_run_now(schedule, data)
    assert source is not None
    [plan] = rerun_plans([(source, data)])
    if isinstance(plan, RerunInvalid):
        raise plan
    return plan


def rerun_plans(asked: Sequence[tuple[Run, RerunInput]]) -> list[RerunPlan | RerunInvalid]:
    """Plan the reruns of several runs (a cause's batch), each as rerun_plan would: its plan,
    or why it cannot be. The results of every run are read in one query."""
    scopes: list[Scope | RerunInvalid] = []
    for source, data in asked:
        try:
            scopes.append(_scope(source, data, rerun_capabilities(source.orchestrator)))
        except RerunInvalid as exc:
            scopes.append(exc)
    results = _results_read(
        [(source, data, scope) for (source, data), scope in zip(asked, scopes, strict=True)]
    )
    plans: list[RerunPlan | RerunInvalid] = []
    for (source, data), scope in zip(asked, scopes, strict=True):
        if isinstance(scope, RerunInvalid):
            plans.append(scope)
            continue
        try:
            plans.append(_plan_rerun(source, data, scope, results.get(source.pk, [])))
        except RerunInvalid as exc:
            plans.append(exc)
    return plans


def _plan_rerun(
    source: Run, data: RerunInput, scope: Scope, results: list[PlanResult]
) -> RerunPlan:
    client_class = orchestrator_client_class(source.orchestrator)
    capabilities = client_class.capabilities
    picked, agents = _validated(source, data, scope, results, capabilities)
    work = Picked(source, data, scope, capabilities, results, picked, agents)
    steps, cases, planned_cases = rerun_targets(work)
    task = work.task
    spec = RerunSpec(
        scope=scope,
        cases=tuple(cases),
        steps=steps,
        variables=dict(data.variables),
        workflow_input=dict(data.workflow_input) if data.workflow_input is not None else None,
        correlation_id=data.correlation_id or None,
        task_id=task.external_id if task else "",
        task_input=dict(data.task_input) if data.task_input is not None else None,
        only_failed_iterations=work.only_failed_iterations,
    )
    schedule_id = source.schedule.external_id if source.schedule else ""
    try:
        calls = tuple(client_class.plan_rerun(source.external_id, spec, schedule_id=schedule_id))
    except BadRequest as exc:  # what the vendor could not be asked (a flow with no agent)
        raise RerunInvalid({"scope": f"Cannot be rerun: {exc.message}."}) from exc
    summary = _summary(
        scope=f"from task {task.case_key}" if task else RerunScope(scope.value).label.lower(),
        agents=_where(scope, agents, capabilities),
        count=len(planned_cases),
        iterations=work.only_failed_iterations,
    )
    # Where it runs, when no agent is chosen: the run's agents to rerun it all, else those
    # the cases to rerun ran on.
    ran_on = source_agents(results if scope == Scope.ALL else picked)
    return RerunPlan(
        scope=scope.value,
        summary=summary,
        cases=tuple(planned_cases),
        agents=agent_titles(agents) or agent_titles(ran_on),
        variables=(
            dict(data.variables) or dict(data.workflow_input or {}) or dict(data.task_input or {})
        ),
        calls=calls,
        spec=spec,
        options=_options(work, spec, summary, planned_cases),
    )


def _results_read(
    asked: Sequence[tuple[Run, RerunInput, Scope | RerunInvalid]],
) -> dict[int, list[PlanResult]]:
    """The results each plan reads, by run, as rows: one query, and one for their agents.
    Rerunning everything reads all of a run's results. Otherwise: those asked for by id
    (picked, or their iterations), and to rerun the failed ones every try of each case that
    failed there, since its latest try decides whether it still stands failed. A run of
    10,000 results with a few failures reads a few rows, not 10,000."""
    everything, failed, ids = set(), set(), set()
    for source, data, scope in asked:
        if isinstance(scope, RerunInvalid):
            continue  # refused before anything is read
        if scope == Scope.ALL:
            everything.add(source.pk)
            continue
        ids |= {*data.result_ids, *data.iterations}
        if scope == Scope.FAILED:
            failed.add(source.pk)
    if not (everything or failed or ids):
        return {}
    # Tries of the cases that failed in any of these runs (one set for all: a case that
    # failed in another run only is dropped below).
    failed_cases = ExecutionResult.objects.filter(run_id__in=failed, status__in=FAILURE_VALUES)
    wanted = (
        Q(run_id__in=everything)
        | Q(pk__in=ids)
        | Q(run_id__in=failed, case__in=failed_cases.annotate(case=CASE).values("case"))
    )
    rows = list(
        ExecutionResult.objects.alias(case=CASE)
        .filter(wanted)
        .order_by("run_id", "seq", "id")
        .values_list(*PLAN_RESULT_FIELDS)
    )
    # Their agents (a few, each shared by its results), in one more query.
    agents = Agent.objects.in_bulk({row[AGENT_AT] for row in rows} - {None})
    read = [PlanResult(*row, agent=agents.get(row[AGENT_AT])) for row in rows]
    tries = [(r, (r.run_id, case_of(r))) for r in read]  # each with its run's case
    failing = {run_case for r, run_case in tries if r.status in FAILURES}
    results: dict[int, list[PlanResult]] = {}
    for r, run_case in tries:
        if r.run_id in everything or r.pk in ids or run_case in failing:
            results.setdefault(r.run_id, []).append(r)
    return results


def _options(
    work: Picked, spec: RerunSpec, summary: str, planned_cases: list[PlannedCase]
) -> dict[str, Any]:
    """What the RerunRequest records of the rerun asked for."""
    task, data = work.task, work.data
    return {
        "scope": work.scope.value,
        "summary": summary,
        "cases": [c.title for c in planned_cases],
        "result_ids": [r.pk for r in work.picked],
        "agents": list(agent_titles(work.agents)),
        "variables": dict(data.variables),
        "workflow_input": spec.workflow_input,
        "correlation_id": spec.correlation_id,
        "task": task.case_key if task else None,
        "task_input": spec.task_input,
        "iterations": {str(k): list(v) for k, v in data.iterations.items()},
        "only_failed_iterations": work.only_failed_iterations,
    }


def _scope(source: Run, data: RerunInput, capabilities: Capabilities) -> Scope:
    """The vendor scope asked for, if this orchestrator can rerun it."""
    wanted = data.scope
    if wanted == RerunScope.PICKED:
        wanted = capabilities.picked_scope  # what "picked cases" means to this vendor
    try:
        scope = Scope(wanted)
    except ValueError:
        raise RerunInvalid({"scope": f"Unknown scope {data.scope!r}."}) from None
    if scope not in capabilities.scopes:
        label = RerunScope(scope.value).label
        vendor = source.orchestrator.get_kind_display()
        raise RerunInvalid({"scope": f"{vendor} cannot rerun “{label}”."})
    return scope


def _validated(
    source: Run,
    data: RerunInput,
    scope: Scope,
    results: list[PlanResult],
    capabilities: Capabilities,
) -> tuple[list[PlanResult], list[Agent]]:
    """(the results to rerun, the agents chosen), or RerunInvalid with every problem found."""
    vendor = source.orchestrator.get_kind_display()
    errors: dict[str, str] = {}
    by_pk = {r.pk: r for r in results}
    if any(pk not in by_pk for pk in data.result_ids):
        errors["cases"] = "Some picked cases are not results of this run."
    agents = _agents(source.orchestrator, data.agents, errors)
    if data.agents and not capabilities.agent_picker:
        errors["agents"] = f"{vendor} does not let Runboard pick agents."
    if data.variables and not capabilities.variables:
        errors["variables"] = f"{vendor} takes no variables on a rerun."
    _check_variables(data.variables, errors)
    if data.workflow_input is not None and not capabilities.workflow_input:
        errors["workflow_input"] = "This orchestrator takes no workflow input."
    if data.task_input is not None and not capabilities.task_input:
        errors["task_input"] = "This orchestrator takes no task input."
    picked = _picked(data, scope, results, by_pk, capabilities, errors)
    for pk, iteration_ids in data.iterations.items():
        result = by_pk.get(pk)
        known = {str(i.get("id")) for i in (result.iterations if result else [])}
        if result is None or not set(iteration_ids) <= known:
            errors["iterations"] = "Some picked iterations are not iterations of this run."
    if errors:
        raise RerunInvalid(errors)
    return picked, agents


def _picked(
    data: RerunInput,
    scope: Scope,
    results: list[PlanResult],
    by_pk: dict[int, PlanResult],
    capabilities: Capabilities,
    errors: dict[str, str],
) -> list[PlanResult]:
    picked = [by_pk[pk] for pk in data.result_ids if pk in by_pk]
    if scope == Scope.FAILED:
        standing = results_standing(results, per_agent=capabilities.results_per_agent)
        picked = [r for r in standing if r.status in FAILURES]
        if not picked:
            errors["scope"] = "This run has no failed cases to rerun."
    elif scope == Scope.PICKED and not picked and "cases" not in errors:
        errors["cases"] = "Pick at least one case."
    elif scope == Scope.FROM_TASK and len(picked) != 1:
        errors["cases"] = "Pick exactly one task to rerun from."
    return picked


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


def _agents(
    orchestrator: Orchestrator, chosen: Sequence[Agent], errors: dict[str, str]
) -> list[Agent]:
    """The chosen agents of this orchestrator, in the order chosen, each once."""
    own = {a.pk: a for a in chosen if a.orchestrator_id == orchestrator.pk}
    if len(own) != len({a.pk for a in chosen}):
        errors["agents"] = "Some chosen agents do not belong to this orchestrator."
    return list(own.values())


def _where(scope: Scope, chosen: Sequence[Agent], capabilities: Capabilities) -> str:
    """Where the rerun runs, in the words of the form's agent picker."""
    if chosen:
        return f"on {', '.join(agent_titles(chosen))}"
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
