"""The one client interface every vendor implements, its snapshots, capabilities and errors.

Nothing here (or anywhere under runs/orchestrators/) touches the ORM: clients turn vendor JSON
into frozen snapshots at the boundary, and runs.services turns snapshots into rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from runs.status import Status

# Errors ------------------------------------------------------------------------------------


class OrchestratorError(Exception):
    """Anything that went wrong talking to an orchestrator."""

    retryable: ClassVar[bool] = False
    title: ClassVar[str] = "Orchestrator error"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __str__(self) -> str:
        code = f" (HTTP {self.status_code})" if self.status_code else ""
        return f"{self.title}{code}: {self.message}"


class Unauthorized(OrchestratorError):
    title = "The orchestrator refused the credential"


class NotFound(OrchestratorError):
    title = "Not found on the orchestrator"


class Conflict(OrchestratorError):
    title = "The orchestrator refused: conflict"


class BadRequest(OrchestratorError):
    title = "The orchestrator refused the request"


class Unavailable(OrchestratorError):
    """5xx, 446, 455, timeouts, refused connections: retrying may help.

    `outcome_unknown` is set when the request may have reached the orchestrator (a read
    timeout, a connection lost after sending): a write may or may not have happened.
    """

    retryable = True
    title = "The orchestrator is unavailable"

    def __init__(
        self, message: str, *, status_code: int | None = None, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.outcome_unknown = outcome_unknown


class ProtocolError(OrchestratorError):
    """An answer that is not what the vendor's documents describe."""

    title = "The orchestrator answered something unexpected"


# Capabilities ------------------------------------------------------------------------------


class Scope(StrEnum):
    ALL = "all"
    FAILED = "failed"
    PICKED = "picked"
    FROM_TASK = "from_task"


@dataclass(frozen=True)
class Capabilities:
    """What a vendor can do, from DESIGN.md's "Reruns" table. The forms show only this."""

    scopes: frozenset[Scope]
    agent_picker: bool = False
    variables: bool = False  # Leapwork schedule variables on reruns and run-now
    workflow_input: bool = False  # Conductor: edited workflow input on "all"
    task_input: bool = False  # Conductor: edited task input on "from a task"
    iterations: bool = False  # Testsigma data-driven iterations
    run_now: bool = True
    run_now_variables: bool = False  # Leapwork variables / Conductor input / Testsigma runtimeData
    build_and_environment: bool = False  # Testsigma buildNo and environmentId
    max_picked: int | None = None  # Conductor reruns from one task
    # What "picked cases" means: Conductor reruns from the one task picked (and what follows).
    picked_scope: Scope = Scope.PICKED
    # Leapwork reruns "all" as its schedule's RunListSteps, each on agents (reRunOnAgents).
    rerun_all_by_steps: bool = False
    # Conductor: run-now takes a JSON workflow input rather than name=value variables.
    run_now_input: bool = False

    # Discovery and storage ----------------------------------------------------------------
    # Testsigma documents no run list: runs are followed by id (given, tracked, reRunParentId,
    # a plan's newest run) and a plan's name is known only from its runs.
    lists_runs: bool = True
    schedule_titles_from_runs: bool = False
    # Conductor reruns, retries and restarts reuse the run id: Runboard keeps each attempt,
    # and a finished run may change again (discovery asks for runs updated since).
    reruns_in_place: bool = False
    # Leapwork runs a flow once on each agent of its step: each is a case of its own when
    # counting (elsewhere several results of one case are its tries, and the last stands).
    results_per_agent: bool = False
    # Testsigma lists no plans: the ones configured on the orchestrator are created once (named
    # by their runs later) and never marked vanished.
    lists_schedules: bool = True


# Snapshots ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSnapshot:
    """A Leapwork RunListStep (or a Conductor task of a definition)."""

    external_id: str
    title: str
    index: int = 0


@dataclass(frozen=True)
class ScheduleSnapshot:
    external_id: str
    title: str
    description: str = ""
    is_enabled: bool = True
    is_temporary: bool = False
    steps: tuple[StepSnapshot, ...] = ()


@dataclass(frozen=True)
class AgentSnapshot:
    external_id: str
    title: str
    host: str = ""


@dataclass(frozen=True)
class IterationSnapshot:
    external_id: str
    title: str
    status: Status
    vendor_status: str = ""


@dataclass(frozen=True)
class ResultSnapshot:
    """One execution result: a Leapwork run item, a Conductor task, a Testsigma case result."""

    external_id: str
    case_key: str  # flow id / task reference name / test case id
    case_title: str
    status: Status
    vendor_status: str = ""
    case_external_id: str = ""  # the TestCase's id when it differs from case_key (Conductor)
    suite: str = ""
    agent_id: str = ""
    agent_title: str = ""
    # When it was queued (Conductor scheduledTime): a result queued but not started yet
    # still tells when the attempt it belongs to began.
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: timedelta | None = None
    message: str = ""
    log_excerpt: str = ""
    seq: int = 0
    retry_count: int = 0
    input: Mapping[str, Any] = field(default_factory=dict)
    is_data_driven: bool = False
    iterations: tuple[IterationSnapshot, ...] = ()

    @property
    def test_case_id(self) -> str:
        return self.case_external_id or self.case_key


@dataclass(frozen=True)
class RunSnapshot:
    external_id: str
    schedule_id: str
    schedule_title: str
    status: Status
    vendor_status: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: timedelta | None = None
    trigger: str = "scheduled"  # scheduled | manual | rerun
    triggered_by: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)
    build: str = ""
    environment: str = ""
    version: str = ""
    correlation_id: str = ""
    message: str = ""
    parent_external_id: str = ""  # Testsigma reRunParentId; Conductor reRunFromWorkflowId
    latest_sibling_id: str = ""  # Testsigma execution.lastRunId: the plan's newest run
    schedule_is_temporary: bool = False
    results: tuple[ResultSnapshot, ...] = ()


@dataclass(frozen=True)
class RunRef:
    """One entry of a schedule's run list: enough to decide whether to fetch it."""

    external_id: str
    started_at: datetime | None = None
    status: Status | None = None
    updated_at: datetime | None = None


# Rerun specifications ----------------------------------------------------------------------


@dataclass(frozen=True)
class CaseTarget:
    """One case to rerun: the result it reruns, its case, where, and which iterations."""

    result_id: str
    case_key: str
    agent_ids: tuple[str, ...] = ()
    iteration_ids: tuple[str, ...] = ()
    is_data_driven: bool = False


@dataclass(frozen=True)
class StepTarget:
    """A Leapwork RunListStep and the agents it runs on."""

    step_id: str
    agent_ids: tuple[str, ...]


@dataclass(frozen=True)
class RerunSpec:
    scope: Scope
    cases: tuple[CaseTarget, ...] = ()
    steps: tuple[StepTarget, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    workflow_input: Mapping[str, Any] | None = None
    correlation_id: str | None = None
    task_id: str = ""
    task_input: Mapping[str, Any] | None = None
    only_failed_iterations: bool = False


@dataclass(frozen=True)
class CallResult:
    """One call of a rerun: the run it started, or the error it met."""

    target: str
    run_id: str = ""
    error: OrchestratorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RerunOutcome:
    """What a rerun produced: one call for most vendors, one per flow for Leapwork Run Flow by Id."""

    calls: tuple[CallResult, ...]

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(call.run_id for call in self.calls if call.ok)

    @property
    def errors(self) -> tuple[CallResult, ...]:
        return tuple(call for call in self.calls if not call.ok)


@dataclass(frozen=True)
class PlannedCall:
    """A request a rerun will send, shown in the preview before anything is sent."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None


# The interface -----------------------------------------------------------------------------


class OrchestratorClient(ABC):
    """One class per vendor over an injected httpx.Client."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @abstractmethod
    def check(self) -> None:
        """Prove the base URL and credential work; raise an OrchestratorError otherwise."""

    @abstractmethod
    def list_schedules(self) -> list[ScheduleSnapshot]: ...

    @abstractmethod
    def list_agents(self) -> list[AgentSnapshot]: ...

    @abstractmethod
    def list_runs(
        self, schedule_id: str, *, since: datetime | None = None, limit: int = 200
    ) -> list[RunRef]:
        """The runs of a schedule, newest first, at most `limit`, started after `since`."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunSnapshot:
        """One run with all its execution results."""

    def follow_schedules(self, schedule_ids: Sequence[str]) -> None:
        """The schedules configured on the orchestrator, for a vendor that lists none.

        Most vendors list their schedules and ignore this.
        """
        return None

    def discover(
        self, schedule_ids: Sequence[str], *, since: datetime, incremental: bool, limit: int = 200
    ) -> list[str]:
        """Ids of the runs of these schedules that may be new or changed since `since`.

        `incremental` is False on the first pass (`since` is then the history horizon). By
        default: each schedule's runs started since. A vendor without a run list finds none
        here (sync then follows the runs it knows, see `Capabilities.lists_runs`).
        """
        found: dict[str, None] = {}
        for schedule_id in schedule_ids:
            for ref in self.list_runs(schedule_id, since=since, limit=limit):
                found[ref.external_id] = None
        return list(found)

    @abstractmethod
    def run_now(
        self,
        schedule_id: str,
        *,
        variables: Mapping[str, Any] | None = None,
        build: str = "",
        environment: str = "",
    ) -> str:
        """Start a schedule now; return the new run's id."""

    @classmethod
    @abstractmethod
    def plan_rerun(cls, run_id: str, spec: RerunSpec, *, schedule_id: str) -> list[PlannedCall]:
        """The exact requests `rerun` would send (paths relative to the API's root), without
        sending them: a rule of the vendor, so a preview needs no connection."""

    @abstractmethod
    def rerun(self, run_id: str, spec: RerunSpec, *, schedule_id: str) -> RerunOutcome:
        """Send a rerun of run `run_id` (of schedule `schedule_id`).

        A single call's error is raised. Where a rerun makes several calls (Leapwork's Run
        Flow by Id, one per flow), each call's error is reported in the outcome instead, so
        the calls that succeeded are not lost.
        """

    @abstractmethod
    def send_planned(self, run_id: str, call: PlannedCall) -> str:
        """Send one of the calls `plan_rerun` planned for run `run_id`, never retried; return
        the id of the run it started, or raise an OrchestratorError."""

    @classmethod
    def call_target(cls, run_id: str, call: PlannedCall) -> str:
        """What one planned call reruns, in words for the rerun request's page."""
        return run_id

    @abstractmethod
    def find_started(self, run_id: str, call: PlannedCall, *, since: datetime) -> str | None:
        """The id of the run that `call` (one of plan_rerun's calls for run `run_id`) started, if
        the orchestrator shows one begun at or after `since`; None if it shows none (yet).

        For a call whose answer was lost (a timeout, a lost connection, an unreadable answer, a
        worker that died mid-call): it asks the orchestrator, matching on what was sent, and
        never sends anything. None is not proof that nothing started: some runs cannot be found
        again (each vendor's method says which).
        """

    @abstractmethod
    def find_run_now(
        self,
        schedule_id: str,
        *,
        since: datetime,
        variables: Mapping[str, Any] | None = None,
        known_run_id: str = "",
    ) -> str | None:
        """The id of a run of `schedule_id` started by "run now" at or after `since` (with these
        variables, where the orchestrator shows them); None if it shows none (yet).

        `known_run_id`, any run of that schedule, is how a vendor without a run list (Testsigma)
        finds the schedule's newest run; the others ignore it.
        """

    @abstractmethod
    def stop_run(self, run_id: str) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Release the underlying HTTP client."""
