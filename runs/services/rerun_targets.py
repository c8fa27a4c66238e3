"""Rerun targets: what a rerun asks the vendor to run (steps or cases, on which agents),
and what its preview lists. Pure: works on the rows the planner loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runs.models import Agent, Run
from runs.orchestrators.base import Capabilities, CaseTarget, Scope, StepTarget
from runs.services.standing import case_of, results_standing


class RerunInvalid(Exception):
    """The rerun asks for something this orchestrator cannot do, or names what does not exist."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A result as a plan reads it: the case it is a try of, how it stands, where it ran.
    Plain rows, not model objects (runs.services.rerun_plan): rerunning everything of a run
    of 10,000 results read them as objects in 0.4 s, as rows in 70 ms."""

    pk: int
    run_id: int
    external_id: str
    case_key: str
    seq: int
    status: str
    is_data_driven: bool
    iterations: list[dict[str, Any]]
    agent_id: int | None
    case_title: str | None  # its test case's title; None when it has no test case
    agent: Agent | None

    @property
    def title(self) -> str:
        """What the preview calls its case."""
        return self.case_title if self.case_title is not None else self.case_key


@dataclass(frozen=True)
class RerunInput:
    """What the form asked for: results by pk, the agents chosen as rows."""

    scope: str
    result_ids: tuple[int, ...] = ()
    agents: tuple[Agent, ...] = ()
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
class Picked:
    """What a rerun works on: the source's results, those picked, the agents chosen."""

    source: Run
    data: RerunInput
    scope: Scope
    capabilities: Capabilities
    results: list[PlanResult]
    picked: list[PlanResult]
    agents: list[Agent]

    @property
    def task(self) -> PlanResult | None:
        return self.picked[0] if self.scope == Scope.FROM_TASK else None

    @property
    def only_failed_iterations(self) -> bool:
        return bool(
            self.scope == Scope.FAILED
            and self.capabilities.iterations
            and self.data.only_failed_iterations
            and any(r.is_data_driven for r in self.picked)
        )


def rerun_targets(
    work: Picked,
) -> tuple[tuple[StepTarget, ...], list[CaseTarget], list[PlannedCase]]:
    """What the vendor is asked to run (steps or cases), and what the preview lists."""
    if work.scope == Scope.ALL:
        return _targets_all(work)
    cases: list[CaseTarget] = []
    # What the preview lists mirrors what is sent: a case once, with every agent it runs on.
    planned: dict[str, PlannedCase] = {}
    seen: set[tuple[str, str]] = set()
    for result in work.picked:
        key = case_of(result)
        agents_of_case = _target_agents(result, work.agents)
        if work.scope in (Scope.FAILED, Scope.PICKED):
            agents_of_case = _case_targets(work, result, agents_of_case, seen, cases)
        earlier = planned.get(key)
        planned[key] = PlannedCase(
            title=result.title,
            agents=(earlier.agents if earlier else ())
            + (agent_titles(agents_of_case) or (() if earlier else ("its agent",))),
            iterations=_iteration_names(result, work.data.iterations.get(result.pk)),
        )
    return (), cases, list(planned.values())


def _case_targets(
    work: Picked,
    result: PlanResult,
    agents: list[Agent],
    seen: set[tuple[str, str]],
    cases: list[CaseTarget],
) -> list[Agent]:
    """Add a case's targets, once on each agent; return the agents it was added on."""
    key = case_of(result)
    fresh = []
    for agent in agents or [None]:
        if (key, agent.external_id if agent else "") in seen:
            continue  # a flow runs once on an agent, however many agents it failed on
        seen.add((key, agent.external_id if agent else ""))
        fresh.append(agent)
        cases.append(
            CaseTarget(
                result_id=result.external_id,
                case_key=result.case_key,
                agent_ids=(agent.external_id,) if agent else (),
                iteration_ids=tuple(work.data.iterations.get(result.pk, ())),
                is_data_driven=result.is_data_driven,
            )
        )
    return [a for a in fresh if a is not None]


def _targets_all(
    work: Picked,
) -> tuple[tuple[StepTarget, ...], list[CaseTarget], list[PlannedCase]]:
    """Everything again: by the schedule's steps where the vendor reruns so, else as one."""
    by_steps = work.capabilities.rerun_all_by_steps
    standing = results_standing(work.results, per_agent=work.capabilities.results_per_agent)
    planned = [
        PlannedCase(
            r.title,
            (agent_titles(work.agents) if by_steps else ()) or (_agent_title(r),),
        )
        for r in standing
    ]
    if not by_steps:
        return (), [], planned
    # One Steps entry per step, each on the chosen agents (default: the agents the source
    # run used; run items do not say which step they ran in).
    step_agents = tuple(a.external_id for a in work.agents or source_agents(work.results))
    schedule = work.source.schedule
    steps = tuple(
        StepTarget(step_id=str(step["id"]), agent_ids=step_agents)
        for step in (schedule.steps if schedule else [])
    )
    if not steps:
        raise RerunInvalid({"scope": "The schedule's steps are not known yet: sync it first."})
    return steps, [], planned


def _target_agents(result: PlanResult, chosen: Sequence[Agent]) -> list[Agent]:
    """Where a case runs again: on the agents chosen, else on the agent it ran on."""
    if chosen:
        return list(chosen)
    return [result.agent] if result.agent is not None else []


def source_agents(results: Sequence[PlanResult]) -> list[Agent]:
    seen: dict[int, Agent] = {}
    for result in results:
        if result.agent is not None:
            seen.setdefault(result.agent.pk, result.agent)
    return list(seen.values())


def agent_titles(agents: Sequence[Agent]) -> tuple[str, ...]:
    return tuple(a.title for a in agents)


def _agent_title(result: PlanResult) -> str:
    return result.agent.title if result.agent else "its agent"


def _iteration_names(result: PlanResult, ids: Sequence[str] | None) -> tuple[str, ...]:
    if not ids:
        return ()
    return tuple(
        str(i.get("name") or i.get("id")) for i in result.iterations if str(i.get("id")) in ids
    )
