"""A faithful local Leapwork controller: the REST API subset in shared/api/leapwork.md.

The estate (schedules with RunListSteps, flows, agents, schedule variables, past runs) comes
from the seed. Runs move along the emulator's clock: Queued briefly, then Executing one run
item after another (each `pace` seconds: NoStatus -> Running -> its outcome), then Finished.
Outcomes: most flows pass, some always fail, some fail only on one agent, and flaky ones fail
on some first attempts and pass when run again (reRun, reRunOnAgents, Run Flow by Id); now and
then a service is down for a whole run and every flow that needs it fails. Each failing flow
has a cause from the shared catalogue (failure_causes.py), rendered into its keyframes.

`legacy_forms=True` answers the other documented forms (RunItemsIds, Pass, EnvironmentInfo,
AutomationRunId, reRunOnAgents as a bare text id, status and stop only under schedules/).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

from runs.orchestrators import failure_causes
from runs.orchestrators.emulation import (
    BadJson,
    EmulatorApp,
    HttpError,
    Request,
    Response,
    json_response,
    seeded_uuid,
)

V4 = "/api/v4"
ID = r"[^/]+"
TERMINAL = frozenset(
    {"Passed", "Pass", "Done", "Failed", "Error", "Inconclusive", "Timeout", "Cancelled"}
)
FAILING = frozenset({"Failed", "Error", "Inconclusive", "Timeout"})
FILTERS = (
    "NoFilter",
    "LastMinute",
    "LastHour",
    "LastDay",
    "LastWeek",
    "LastMonth",
    "LastYear",
    "ThisHour",
    "ThisDay",
    "ThisWeek",
    "ThisMonth",
    "ThisYear",
    "LastDays",
)
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
DOTNET_EPOCH = datetime(1, 1, 1)

SCHEDULE_TITLES = (
    ("Smoke - Web shop", "Web"),
    ("Regression - Checkout", "Web"),
    ("Nightly - Customer portal", "Nightly"),
    ("Payments API", "API"),
    ("Mobile - Onboarding", "Mobile"),
    ("Back office - Orders", "Nightly"),
)
FLOW_SUBJECTS = (
    "Login with valid credentials",
    "Login with wrong password",
    "Reset password",
    "Search product by name",
    "Filter search results",
    "Add item to basket",
    "Remove item from basket",
    "Apply discount code",
    "Checkout as guest",
    "Checkout with saved card",
    "Pay with invoice",
    "Change delivery address",
    "Download invoice PDF",
    "Cancel order",
    "Return item",
    "Create customer",
    "Update customer profile",
    "Subscribe to newsletter",
    "Unsubscribe from newsletter",
    "Export orders to Excel",
    "Import price list",
    "Approve refund",
    "Sign up with email",
    "Verify phone number",
    "Switch language",
    "Open order history",
    "Track shipment",
    "Contact support form",
    "Upload profile picture",
    "Log out",
)
AGENT_NAMES = (
    ("Chrome-Win11-01", "win11-agent-01.qa.local"),
    ("Edge-Win11-02", "win11-agent-02.qa.local"),
    ("Firefox-Ubuntu-01", "ubuntu-agent-01.qa.local"),
    ("Chrome-Win10-03", "win10-agent-03.qa.local"),
    ("Safari-macOS-01", "mac-agent-01.qa.local"),
    ("Chrome-Linux-02", "linux-agent-02.qa.local"),
)
VARIABLE_DEFAULTS = {
    "Browser": "Chrome",
    "Environment": "staging",
    "BaseUrl": "https://staging.shop.example.com",
    "Locale": "en-US",
    "UserName": "qa.robot@example.com",
}
FLAKY_RATE = 0.4  # chance a flaky flow fails on a first attempt
OUTAGE_RATE = 0.06  # chance a service is down for a whole (first-attempt) run
CAUSE_KINDS = {
    "fail": failure_causes.ALWAYS,
    "agent": failure_causes.AGENT,
    "flaky": failure_causes.TRANSIENT,
}
# The Leapwork block a cause's log lines come from.
CAUSE_BLOCKS = {
    "env-outage": "Call web service",
    "page-timeout": "Start web browser",
    "auth-expired": "Call web service",
    "locator-changed": "Click web element",
    "assertion-value": "Compare values",
    "data-missing": "Read data",
    "browser-crash": "Start web browser",
    "disk-full": "Capture screenshot",
}
LEVELS = {"info": "Info", "warning": "Warning", "error": "Error"}


@dataclass
class Agent:
    id: str
    title: str
    host: str
    created: datetime
    temporary: bool = False


@dataclass
class Flow:
    id: str
    title: str
    schedule_id: str
    behaviour: str = "pass"  # pass | fail | agent | flaky
    fails_on: str = ""  # the agent an "agent" flow fails on
    failure_word: str = "Failed"
    cause: str = ""  # failure_causes key, for flows that can fail


@dataclass
class Step:
    id: str  # RunListStepId
    entry_id: str  # the RunListStep record's own Id
    title: str
    index: int
    flow_ids: list[str]
    agent_ids: list[str]


@dataclass
class Schedule:
    id: str
    title: str
    folder: tuple[str, str] | None
    created: datetime
    steps: list[Step]
    variables: dict[str, str]
    is_enabled: bool = True
    is_scheduled: bool = True
    temporary: bool = False
    delete_after: bool = False
    deleted: bool = False
    next_auto: datetime | None = None
    auto_count: int = 0

    @property
    def agent_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for step in self.steps:
            seen.update(dict.fromkeys(step.agent_ids))
        return list(seen)


@dataclass
class Item:
    id: str
    run_id: str
    step_id: str
    flow_id: str
    agent_id: str
    start: datetime
    end: datetime
    outcome: str
    status: str = "NoStatus"
    cause: str = ""  # why it fails, when its outcome is a failure


@dataclass
class Run:
    id: str
    schedule_id: str
    created: datetime
    run_type: str  # Scheduled | Manual
    trigger: str  # history | scheduled | run_now | rerun | rerun_on_agents | run_flow
    items: list[Item]
    queued_until: datetime
    source_run_id: str = ""
    variables_sent: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    status: str = "Queued"
    finished: datetime | None = None

    @property
    def is_over(self) -> bool:
        return self.status == "Finished" and all(i.status in TERMINAL for i in self.items)


def with_ids(value: Any) -> Any:
    """Number every object as Json.NET's PreserveReferencesHandling does: "1", "2"... in order."""
    counter = [0]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            counter[0] += 1
            numbered: dict[str, Any] = {"$id": str(counter[0])}
            for key, child in node.items():
                numbered[key] = walk(child)
            return numbered
        if isinstance(node, list):
            return [walk(child) for child in node]
        return node

    return walk(value)


def timespan(delta: timedelta) -> str:
    """A .NET TimeSpan string: [d.]hh:mm:ss[.fffffff]."""
    ticks = max(0, round(delta.total_seconds() * 10_000_000))
    seconds, fraction = divmod(ticks, 10_000_000)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if days:
        text = f"{days}.{text}"
    if fraction:
        text += f".{fraction:07d}"
    return text


def _iso7(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}0"


class LeapworkEmulator(EmulatorApp):
    """The Leapwork controller API on the emulation core."""

    kind = "leapwork"
    estate_types: ClassVar[dict[str, Any]] = {
        "agents": dict[str, Agent],
        "flows": dict[str, Flow],
        "schedules": dict[str, Schedule],
        "runs": dict[str, Run],
        "active": set[str],
        "folders": dict[str, str],
    }

    def __init__(
        self, *, legacy_forms: bool = False, utc_offset_minutes: int = 60, **kwargs: Any
    ) -> None:
        # Set before the core registers routes: legacy_forms changes which paths exist.
        self.legacy_forms = legacy_forms
        self.tz = timezone(timedelta(minutes=utc_offset_minutes))
        super().__init__(**kwargs)

    # Estate ----------------------------------------------------------------------------------

    @property
    def queue_seconds(self) -> float:
        """How long a new run stays Queued before its first item starts."""
        return min(1.0, self.pace)

    def build(self) -> None:
        rng = self.rng
        now = self.now()
        self.agents: dict[str, Agent] = {}
        self.flows: dict[str, Flow] = {}
        self.schedules: dict[str, Schedule] = {}
        self.runs: dict[str, Run] = {}
        self.items: dict[str, Item] = {}
        self.active: set[str] = set()
        self.folders = {name: seeded_uuid(rng) for name in ("Web", "API", "Mobile", "Nightly")}

        for title, host in AGENT_NAMES[: rng.randint(4, 6)]:
            created = now - timedelta(days=rng.randint(60, 400))
            agent = Agent(seeded_uuid(rng), title, host, created)
            self.agents[agent.id] = agent
        temp = Agent(seeded_uuid(rng), "Cloud-Chrome-temp", "cloud-1.leapwork.example", now, True)
        self.agents[temp.id] = temp
        pool = [agent.id for agent in self.agents.values() if not agent.temporary]

        for index, (title, folder) in enumerate(SCHEDULE_TITLES[: rng.randint(4, 6)]):
            self._build_schedule(index, title, folder, pool, now)

        for schedule in list(self.schedules.values()):
            self._build_history(schedule, now)
            if self.autorun > 0:
                schedule.next_auto = now + timedelta(seconds=self.autorun * rng.uniform(0.5, 1.5))

    def _build_schedule(
        self, index: int, title: str, folder: str, pool: list[str], now: datetime
    ) -> None:
        rng = self.rng
        schedule_id = seeded_uuid(rng)
        n_flows = rng.randint(5, 60) if index else rng.randint(5, 12)
        # Schedule 1 is the one that is sure to show every kind of outcome.
        agent_ids = rng.sample(pool, rng.randint(2 if index == 1 else 1, 3))
        flows = [
            Flow(
                seeded_uuid(rng),
                f"{FLOW_SUBJECTS[(index * 7 + number) % len(FLOW_SUBJECTS)]} #{number + 1:02d}",
                schedule_id,
            )
            for number in range(n_flows)
        ]

        n_steps = min(rng.randint(1, 3), n_flows)
        # Schedule 1's first step keeps flows 0-2, the ones sure to show every outcome.
        first = 3 if index == 1 else 1
        bounds = sorted(rng.sample(range(first, n_flows), n_steps - 1)) if n_steps > 1 else []
        edges = [0, *bounds, n_flows]
        steps = []
        for number in range(n_steps):
            chunk = [flow.id for flow in flows[edges[number] : edges[number + 1]]]
            agents = rng.sample(agent_ids, rng.randint(1, len(agent_ids)))
            steps.append(
                Step(
                    seeded_uuid(rng), seeded_uuid(rng), f"Step {number + 1}", number, chunk, agents
                )
            )
        for agent_id in agent_ids:  # every agent of the schedule runs some step
            if not any(agent_id in step.agent_ids for step in steps):
                rng.choice(steps).agent_ids.append(agent_id)
        if index == 1:
            steps[0].agent_ids = list(agent_ids)
        step_agents = {flow_id: step.agent_ids for step in steps for flow_id in step.flow_ids}

        for flow in flows:
            roll = rng.random()
            if index == 0:
                pass  # the smoke schedule is green
            elif roll < 0.06:
                flow.behaviour = "fail"
                flow.failure_word = "Error" if rng.random() < 0.3 else "Failed"
            elif roll < 0.11:
                # Fails on one of the agents its step runs on, passes on the others.
                flow.behaviour, flow.fails_on = "agent", rng.choice(step_agents[flow.id])
            elif roll < 0.17:
                flow.behaviour = "flaky"
        if index == 1:
            flows[0].behaviour, flows[0].failure_word = "fail", "Failed"
            flows[1].behaviour = "flaky"
            flows[2].behaviour, flows[2].fails_on = "agent", agent_ids[-1]
        for flow in flows:
            flow.cause = self._cause(flow)
            self.flows[flow.id] = flow

        names = rng.sample(sorted(VARIABLE_DEFAULTS), rng.randint(2, 3))
        variables = {name: VARIABLE_DEFAULTS[name] for name in sorted(names)}
        created = now - timedelta(days=rng.randint(40, 300))
        self.schedules[schedule_id] = Schedule(
            schedule_id,
            title,
            (self.folders[folder], folder),
            created,
            steps,
            variables,
        )

    def _cause(self, flow: Flow) -> str:
        """Why a flow fails when it does: a cause of the kind its behaviour calls for."""
        if flow.behaviour not in CAUSE_KINDS:
            return ""
        # A generator of its own: causes leave the rest of the estate as it was.
        draw = random.Random(f"{self.seed}:cause:{flow.id}")
        return failure_causes.pick_cause(draw, CAUSE_KINDS[flow.behaviour])

    def _build_history(self, schedule: Schedule, now: datetime) -> None:
        if self.history <= 0:
            return
        interval = min(timedelta(days=1), timedelta(days=28) / self.history)
        plan = self._schedule_plan(schedule)
        for number in range(self.history, 0, -1):
            jitter = interval * self.rng.uniform(-0.2, 0.2)
            created = now - interval * number + jitter - timedelta(minutes=10)
            manual = number % 5 == 0
            # A history run is over before now, however slow the pace.
            length = timedelta(seconds=self.queue_seconds + self.pace * len(plan) + 60)
            created = min(created, now - length)
            self._start_run(
                schedule,
                plan,
                created=created,
                run_type="Manual" if manual else "Scheduled",
                trigger="history",
                variables=dict(schedule.variables),
            )

    # Runs ------------------------------------------------------------------------------------

    def _schedule_plan(self, schedule: Schedule) -> list[tuple[str, str, str]]:
        """(step id, flow id, agent id) for every run item of a run of the whole schedule."""
        return [
            (step.id, flow_id, agent_id)
            for step in schedule.steps
            for flow_id in step.flow_ids
            for agent_id in step.agent_ids
        ]

    def _outcome(
        self, flow: Flow, item_id: str, agent_id: str, down: str | None
    ) -> tuple[str, str]:
        """(status, cause) of a run item; `down` is the service that is down for its run."""
        passed = "Pass" if self.legacy_forms else "Passed"
        if flow.behaviour == "fail":
            return flow.failure_word, flow.cause
        if flow.behaviour == "agent" and agent_id == flow.fails_on:
            return "Failed", flow.cause
        if down and failure_causes.subject_of(flow.title).service == down:
            return "Failed", "env-outage"
        # A flaky flow fails on some first attempts (`down` is None on a rerun) and no rerun.
        first = down is not None
        flakes = random.Random(f"{self.seed}:flaky:{item_id}").random() < FLAKY_RATE
        if flow.behaviour == "flaky" and first and flakes:
            return "Failed", flow.cause
        return passed, ""

    def _down(self, run_id: str, plan: list[tuple[str, str, str]], rerun: bool) -> str | None:
        """The service down for a whole run ("" none; None: a rerun, where nothing flakes)."""
        if rerun:
            return None
        draw = random.Random(f"{self.seed}:outage:{run_id}")
        if draw.random() >= OUTAGE_RATE:
            return ""
        services = sorted(
            {failure_causes.subject_of(self.flows[f].title).service for _, f, _ in plan}
        )
        return draw.choice(services) if services else ""

    def _start_run(
        self,
        schedule: Schedule,
        plan: list[tuple[str, str, str]],
        *,
        created: datetime,
        run_type: str,
        trigger: str,
        variables: dict[str, str],
        variables_sent: dict[str, str] | None = None,
        source_run_id: str = "",
    ) -> Run:
        run_id = seeded_uuid(self.rng)
        queued_until = created + timedelta(seconds=self.queue_seconds)
        down = self._down(run_id, plan, trigger in {"rerun", "rerun_on_agents", "run_flow"})
        pace = timedelta(seconds=self.pace)
        items = []
        for number, (step_id, flow_id, agent_id) in enumerate(plan):
            start = queued_until + pace * number
            item_id = seeded_uuid(self.rng)
            outcome, cause = self._outcome(self.flows[flow_id], item_id, agent_id, down)
            item = Item(
                item_id,
                run_id,
                step_id,
                flow_id,
                agent_id,
                start,
                start + pace,
                outcome,
                cause=cause,
            )
            items.append(item)
            self.items[item.id] = item
        run = Run(
            run_id,
            schedule.id,
            created,
            run_type,
            trigger,
            items,
            queued_until,
            source_run_id=source_run_id,
            variables_sent=dict(variables_sent or {}),
            variables=variables,
        )
        self.runs[run_id] = run
        self.active.add(run_id)
        self._refresh(run, self.now())
        return run

    def _refresh(self, run: Run, now: datetime) -> None:
        for item in run.items:
            if item.status in TERMINAL:
                continue
            if now >= item.end:
                item.status = item.outcome
            elif now >= item.start:
                item.status = "Running"
        if now < run.queued_until:
            run.status = "Queued"
        elif all(item.status in TERMINAL for item in run.items):
            run.status = "Finished"
            run.finished = max((item.end for item in run.items), default=run.queued_until)
        else:
            run.status = "Executing"
        if run.is_over:
            self._finish(run)

    def _finish(self, run: Run) -> None:
        self.active.discard(run.id)
        schedule = self.schedules[run.schedule_id]
        if schedule.temporary and schedule.delete_after:
            schedule.deleted = True  # its runs and their reports stay

    def advance(self, now: datetime) -> None:
        if self.autorun > 0:
            self._autorun(now)
        for run_id in list(self.active):
            self._refresh(self.runs[run_id], now)

    def _autorun(self, now: datetime) -> None:
        every = timedelta(seconds=self.autorun)
        for schedule in list(self.schedules.values()):
            if schedule.next_auto is None or schedule.temporary:
                continue
            # After a long clock step, start only the last few of the missed runs.
            if now - schedule.next_auto > every * 10:
                schedule.next_auto = now - every * 10
            while schedule.next_auto <= now:
                self._start_run(
                    schedule,
                    self._schedule_plan(schedule),
                    created=schedule.next_auto,
                    run_type="Scheduled",
                    trigger="scheduled",
                    variables=dict(schedule.variables),
                )
                self.mark_changed()
                schedule.auto_count += 1
                jitter = random.Random(f"{self.seed}:{schedule.id}:{schedule.auto_count}")
                schedule.next_auto += every * jitter.uniform(0.75, 1.25)

    def restore(self, estate: dict[str, Any]) -> None:
        super().restore(estate)
        # One Item object per run item, shared by its run and the id index, as when built.
        self.items = {item.id: item for run in self.runs.values() for item in run.items}

    def resumed(self, now: datetime) -> None:
        # The controller was off while no emulator ran: its schedules did not fire meanwhile.
        # Runs that were in flight keep their timeline and have finished if it has passed.
        if self.autorun <= 0:
            return
        for schedule in self.schedules.values():
            if schedule.temporary or (schedule.next_auto and schedule.next_auto > now):
                continue
            jitter = random.Random(f"{self.seed}:{schedule.id}:resumed:{schedule.auto_count}")
            schedule.next_auto = now + timedelta(seconds=self.autorun * jitter.uniform(0.5, 1.5))

    def describe(self) -> str:
        return f"{len(self.runs)} runs, {len(self.active)} in flight"

    def _stop(self, run: Run) -> bool:
        now = self.now()
        self._refresh(run, now)
        if run.is_over:
            return False
        for item in run.items:
            if item.status not in TERMINAL:
                item.start = min(item.start, now)
                item.end = now
                item.status = item.outcome = "Cancelled"
        run.status = "Finished"
        run.finished = now
        self._finish(run)
        return True

    # Auth and errors -------------------------------------------------------------------------

    def authorize(self, request: Request) -> None:
        # Request.headers are lower-cased, so AccessKey and accessKey both land here.
        if self.credential and request.header("AccessKey") != self.credential:
            raise HttpError(self.error(401, "Authorization has been denied for this request."))

    def error(self, status: int, message: str) -> Response:
        return json_response({"$id": "1", "Message": message}, status)

    def _fail(self, status: int, message: str) -> HttpError:
        return HttpError(self.error(status, message))

    def _ok(self, body: Any) -> Response:
        return json_response(with_ids(body))

    # Lookups ---------------------------------------------------------------------------------

    def _schedule(self, schedule_id: str, *, deleted_ok: bool = False) -> Schedule:
        schedule = self.schedules.get(schedule_id)
        if schedule is None or (schedule.deleted and not deleted_ok):
            raise self._fail(404, f"Schedule with id '{schedule_id}' was not found.")
        return schedule

    def _run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise self._fail(404, f"Run with id '{run_id}' was not found.")
        return run

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise self._fail(404, f"Agent with id '{agent_id}' was not found.")
        return agent

    def _variables(self, request: Request, *, skip: frozenset[str] = frozenset()) -> dict[str, str]:
        """Schedule variables sent as query parameters; 400 when a name is invalid or duplicated."""
        found: dict[str, str] = {}
        for name, value in request.query_pairs:
            if name.lower() in skip:
                continue
            if not VARIABLE_NAME.match(name):
                raise self._fail(400, f"Variable name '{name}' is invalid.")
            if name in found:
                raise self._fail(400, f"Variable '{name}' is duplicated.")
            found[name] = value
        return found

    # Shapes ----------------------------------------------------------------------------------

    def _date(self, moment: datetime) -> dict[str, Any]:
        local = moment.astimezone(self.tz)
        offset = local.strftime("%z")
        naive = local.replace(tzinfo=None)
        ticks = (naive - DOTNET_EPOCH) // timedelta(microseconds=1) * 10
        return {
            "Value": f"{_iso7(naive)}{offset[:3]}:{offset[3:]}",
            "LocalDateTime": _iso7(naive),
            "UtcDateTime": f"{_iso7(moment.astimezone(UTC).replace(tzinfo=None))}Z",
            "Ticks": ticks,
        }

    def _schedule_body(self, schedule: Schedule) -> dict[str, Any]:
        return {
            "Id": schedule.id,
            "Title": schedule.title,
            "IsEnabled": schedule.is_enabled,
            "IsScheduled": schedule.is_scheduled and not schedule.temporary,
            "Type": "ScheduleInfo",
            "DateCreation": self._date(schedule.created),
            "DateModify": self._date(schedule.created),
            "RunListSteps": [self._step_body(schedule, step) for step in schedule.steps],
        }

    def _step_body(self, schedule: Schedule, step: Step) -> dict[str, Any]:
        return {
            "Id": step.entry_id,
            "RunListStepId": step.id,
            "ScheduleInfoId": schedule.id,
            "StepIndex": step.index,
            "StepName": step.title,
            "StepStartCondition": "Always",
            "EnvironmentParallelization": "RunAllFlows",
        }

    def _agent_body(self, agent: Agent) -> dict[str, Any]:
        used = [
            {"ScheduleId": s.id, "ScheduleTitle": s.title}
            for s in self.schedules.values()
            if not s.deleted and agent.id in s.agent_ids
        ]
        return {
            "Id": agent.id,
            "Title": agent.title,
            "Type": "Environment",
            "HostName": agent.host,
            "Port": 6777,
            "ConnectionType": "RemoteAgent",
            "UsedBySchedules": used,
            "DateCreation": self._date(agent.created),
            "DateModify": self._date(agent.created),
        }

    def _run_body(self, run: Run) -> dict[str, Any]:
        schedule = self.schedules[run.schedule_id]
        now = self.now()
        ended = run.finished if run.status == "Finished" and run.finished else max(now, run.created)
        elapsed = ended - run.created
        passed = sum(1 for item in run.items if item.status in {"Passed", "Pass", "Done"})
        failed = sum(1 for item in run.items if item.status in FAILING)
        return {
            "RunId": run.id,
            "Schedule": {"ScheduleId": schedule.id, "ScheduleTitle": schedule.title},
            "Status": run.status,
            "Failed": failed,
            "Passed": passed,
            "Total": len(run.items),
            "ExecutionTotalTime": timespan(elapsed),
            "ExecutionMilliseconds": int(elapsed.total_seconds() * 1000),
            "CreatedAt": self._date(run.created),
            "RunType": run.run_type,
        }

    def _item_body(self, item: Item) -> dict[str, Any]:
        run = self.runs[item.run_id]
        flow = self.flows[item.flow_id]
        agent = self.agents[item.agent_id]
        now = self.now()
        if item.status == "NoStatus":
            elapsed, created = timedelta(0), run.created
        else:
            elapsed, created = min(now, item.end) - item.start, item.start
        body: dict[str, Any] = {"RunItemId": item.id}
        body["AutomationRunId" if self.legacy_forms else "RunId"] = run.id
        body["FlowInfo"] = {"FlowId": flow.id, "FlowTitle": flow.title, "Status": item.status}
        if self.legacy_forms:
            body["EnvironmentInfo"] = {"EnvironmentId": agent.id, "EnvironmentTitle": agent.title}
        else:
            body["AgentInfo"] = {
                "AgentId": agent.id,
                "AgentTitle": agent.title,
                "ConnectionType": "RemoteAgent",
            }
        body.update(
            {
                "Elapsed": timespan(elapsed),
                "ElapsedMilliseconds": int(elapsed.total_seconds() * 1000),
                "CreatedAt": self._date(created),
                "RunType": run.run_type,
            }
        )
        return body

    def failure(self, item: Item) -> failure_causes.Failure:
        """What went wrong in a failed run item: its cause, with this occurrence's details."""
        run = self.runs[item.run_id]
        return failure_causes.failure(
            item.cause or "assertion-value",
            self.flows[item.flow_id].title,
            random.Random(f"{self.seed}:failure:{item.id}"),
            env=run.variables.get("Environment", VARIABLE_DEFAULTS["Environment"]),
            agent=self.agents[item.agent_id].title,
            browser=run.variables.get("Browser", VARIABLE_DEFAULTS["Browser"]),
        )

    def _failure_frames(self, item: Item) -> list[tuple[datetime, str, str, str, str]]:
        found = self.failure(item)
        block = CAUSE_BLOCKS.get(found.cause, "Run flow")
        span = item.end - item.start
        frames = []
        for number, line in enumerate(found.log):
            at = item.start + span * (0.75 + 0.25 * number / len(found.log))
            status = item.status if line.level == "error" else "Running"
            frames.append((at, LEVELS[line.level], status, line.text, block))
        frames[-1] = (item.end, *frames[-1][1:])
        frames.append((item.end, "Info", item.status, "Flow failed", "Fail"))
        return frames

    def _keyframes(self, item: Item) -> list[dict[str, Any]]:
        if item.status == "NoStatus":
            return []
        flow = self.flows[item.flow_id]
        agent = self.agents[item.agent_id]
        run = self.runs[item.run_id]
        span = item.end - item.start
        base_url = run.variables.get("BaseUrl", VARIABLE_DEFAULTS["BaseUrl"])
        frames = [
            (item.start, "Trace", "Running", f"Flow '{flow.title}' started", "Start"),
            (
                item.start + span * 0.1,
                "Info",
                "Running",
                f"Connected to agent {agent.title}",
                "Start",
            ),
            (
                item.start + span * 0.3,
                "Trace",
                "Running",
                "Starting web browser",
                "Start web browser",
            ),
            (
                item.start + span * 0.5,
                "Info",
                "Running",
                f"Navigated to {base_url}",
                "Start web browser",
            ),
            (
                item.start + span * 0.7,
                "Trace",
                "Running",
                "Clicked web element",
                "Click web element",
            ),
        ]
        now = self.now()
        frames = [frame for frame in frames if frame[0] <= now]
        if item.status in FAILING:
            frames = [frame for frame in frames if frame[0] < item.start + span * 0.7]
            frames += self._failure_frames(item)
        elif item.status == "Cancelled":
            frames.append((item.end, "Warning", "Cancelled", "The run was stopped", "Stop"))
        elif item.status in TERMINAL:
            frames.append((item.end, "Info", item.status, "Flow passed", "Pass"))
        return [
            {
                "AutomationRunItemId": item.id,
                "Timestamp": self._date(moment),
                "Level": level,
                "Status": status,
                "LogMessage": message,
                "BlockTitle": block,
            }
            for moment, level, status, message, block in frames
        ]

    # Routes ----------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, Any]]:
        table = [
            ("GET", f"{V4}/schedules", self.list_schedules),
            ("GET", f"{V4}/schedules/hierarchy", self.hierarchy),
            ("GET", f"{V4}/schedules/run/(?P<run_id>{ID})", self.schedule_of_run),
            (
                "GET",
                f"{V4}/schedules/(?P<schedule_id>{ID})/runIds(?:/(?P<filter_by>{ID}))?",
                self.run_ids,
            ),
            ("PUT", f"/api/v[34]/schedules/(?P<schedule_id>{ID})/runNow", self.run_now),
            ("GET", f"{V4}/schedules/(?P<run_id>{ID})/status", self.run_status),
            ("PUT", f"{V4}/schedules/(?P<run_id>{ID})/stop", self.stop),
            ("GET", f"{V4}/schedules/(?P<schedule_id>{ID})", self.get_schedule),
        ]
        if not self.legacy_forms:
            table += [
                ("GET", f"{V4}/run/(?P<run_id>{ID})/status", self.run_status),
                ("PUT", f"{V4}/run/(?P<run_id>{ID})/stop", self.stop),
            ]
        table += [
            ("GET", f"{V4}/run/(?P<run_id>{ID})", self.get_run),
            ("GET", f"/api/v[34]/run/(?P<run_id>{ID})/runItemIds", self.run_item_ids),
            ("GET", f"{V4}/runItems/(?P<item_id>{ID})", self.get_run_item),
            ("GET", f"{V4}/runItems/(?P<item_id>{ID})/keyframes", self.keyframes),
            ("PUT", f"/api/v3/run/(?P<run_id>{ID})/reRun", self.rerun),
            ("PUT", f"{V4}/run/(?P<run_id>{ID})/reRun/(?P<agent_id>{ID})", self.rerun),
            ("PUT", f"{V4}/run/(?P<run_id>{ID})/reRunOnAgents", self.rerun_on_agents),
            ("PUT", f"{V4}/flows/(?P<flow_id>{ID})/agent/(?P<agent_id>{ID})", self.run_flow),
            (
                "PUT",
                f"/api/v3/flows/(?P<flow_id>{ID})/environment/(?P<agent_id>{ID})",
                self.run_flow,
            ),
            ("GET", f"{V4}/agents", self.list_agents),
            ("GET", f"{V4}/agents/(?P<agent_id>{ID})", self.get_agent),
        ]
        return table

    # leapwork.md: list schedules
    def list_schedules(self, request: Request) -> Response:
        return self._ok([self._schedule_body(s) for s in self.schedules.values() if not s.deleted])

    # leapwork.md: one schedule
    def get_schedule(self, request: Request, schedule_id: str) -> Response:
        return self._ok(self._schedule_body(self._schedule(schedule_id)))

    # leapwork.md: schedule tree
    def hierarchy(self, request: Request) -> Response:
        nodes = []
        for schedule in self.schedules.values():
            if schedule.deleted:
                continue
            parents = []
            if schedule.folder:
                folder_id, folder_title = schedule.folder
                parents.append({"Id": folder_id, "Title": folder_title, "Type": "ScheduleFolder"})
            nodes.append(
                {
                    "ScheduleHierarchy": {
                        "Id": schedule.id,
                        "Title": schedule.title,
                        "Type": "ScheduleInfo",
                        "Parent": parents,
                    },
                    "ScheduleInfo": self._schedule_body(schedule),
                }
            )
        return self._ok(nodes)

    # leapwork.md: schedule of a run (the schedule of a Run Flow by Id run, even once deleted)
    def schedule_of_run(self, request: Request, run_id: str) -> Response:
        run = self._run(run_id)
        return self._ok(self._schedule_body(self._schedule(run.schedule_id, deleted_ok=True)))

    # leapwork.md: run ids of a schedule
    def run_ids(self, request: Request, schedule_id: str, filter_by: str | None) -> Response:
        schedule = self._schedule(schedule_id)
        filter_by = filter_by or "NoFilter"
        if filter_by not in FILTERS:
            raise self._fail(400, f"The value '{filter_by}' is not valid for filterBy.")
        raw = request.query.get("count", "0") or "0"
        try:
            count = int(raw)
        except ValueError:
            raise self._fail(400, f"The value '{raw}' is not valid for count.") from None
        runs = [run for run in self.runs.values() if run.schedule_id == schedule.id]
        runs.sort(key=lambda run: run.created, reverse=True)
        since = self._filter_start(filter_by, count)
        if since is not None:
            runs = [run for run in runs if run.created >= since]
        if count > 0 and filter_by != "LastDays":
            runs = runs[:count]
        return self._ok({"runIds": [run.id for run in runs]})

    def _filter_start(self, filter_by: str, count: int) -> datetime | None:
        now = self.now()
        local = now.astimezone(self.tz)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = {
            "LastMinute": now - timedelta(minutes=1),
            "LastHour": now - timedelta(hours=1),
            "LastDay": now - timedelta(days=1),
            "LastWeek": now - timedelta(days=7),
            "LastMonth": now - timedelta(days=30),
            "LastYear": now - timedelta(days=365),
            "ThisHour": local.replace(minute=0, second=0, microsecond=0),
            "ThisDay": day,
            "ThisWeek": day - timedelta(days=day.weekday()),
            "ThisMonth": day.replace(day=1),
            "ThisYear": day.replace(month=1, day=1),
            "LastDays": now - timedelta(days=max(count, 0)),
        }
        return starts.get(filter_by)

    # leapwork.md: run schedule now
    def run_now(self, request: Request, schedule_id: str) -> Response:
        schedule = self._schedule(schedule_id)
        sent = self._variables(request)
        # Only variables defined on the schedule apply; unknown names are ignored.
        applied = {name: value for name, value in sent.items() if name in schedule.variables}
        run = self._start_run(
            schedule,
            self._schedule_plan(schedule),
            created=self.now(),
            run_type="Manual",
            trigger="run_now",
            variables={**schedule.variables, **applied},
            variables_sent=sent,
        )
        return self._ok({"RunId": run.id})

    # leapwork.md: run status (both documented paths)
    def run_status(self, request: Request, run_id: str) -> Response:
        return self._ok({"Status": self._run(run_id).status})

    # leapwork.md: run
    def get_run(self, request: Request, run_id: str) -> Response:
        return self._ok(self._run_body(self._run(run_id)))

    # leapwork.md: run item ids
    def run_item_ids(self, request: Request, run_id: str) -> Response:
        key = "RunItemsIds" if self.legacy_forms else "RunItemIds"
        return self._ok({key: [item.id for item in self._run(run_id).items]})

    # leapwork.md: run item
    def get_run_item(self, request: Request, item_id: str) -> Response:
        return self._ok(self._item_body(self._item(item_id)))

    # leapwork.md: run item log
    def keyframes(self, request: Request, item_id: str) -> Response:
        return self._ok(self._keyframes(self._item(item_id)))

    def _item(self, item_id: str) -> Item:
        item = self.items.get(item_id)
        if item is None:
            raise self._fail(404, f"Run item with id '{item_id}' was not found.")
        return item

    # leapwork.md: stop a run (both documented paths)
    def stop(self, request: Request, run_id: str) -> Response:
        return self._ok({"OperationCompleted": self._stop(self._run(run_id))})

    # leapwork.md: re-run (v3 on the same agents, v4 on one agent)
    def rerun(self, request: Request, run_id: str, agent_id: str | None = None) -> Response:
        source = self._run(run_id)
        schedule = self._schedule(source.schedule_id, deleted_ok=True)
        if agent_id is not None:
            self._agent(agent_id)
            seen = dict.fromkeys((item.step_id, item.flow_id) for item in source.items)
            plan = [(step_id, flow_id, agent_id) for step_id, flow_id in seen]
        else:
            plan = [(item.step_id, item.flow_id, item.agent_id) for item in source.items]
        sent = self._variables(request)
        applied = {name: value for name, value in sent.items() if name in schedule.variables}
        run = self._start_run(
            schedule,
            plan,
            created=self.now(),
            run_type="Manual",
            trigger="rerun",
            variables={**source.variables, **applied},
            variables_sent=sent,
            source_run_id=source.id,
        )
        return self._ok({"RunId": run.id})

    # leapwork.md: re-run on agents
    def rerun_on_agents(self, request: Request, run_id: str) -> Response:
        source = self._run(run_id)
        schedule = self._schedule(source.schedule_id, deleted_ok=True)
        try:
            body = request.json()
        except BadJson as exc:
            raise self._fail(400, f"The request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise self._fail(400, "The request body must be an object with Steps.")
        steps = body.get("Steps")
        if not isinstance(steps, list) or not steps:
            raise self._fail(400, "Steps is required: at least one RunListStep to run.")
        sent = self._body_variables(body.get("Variables"))
        by_id = {step.id: step for step in schedule.steps}
        plan: list[tuple[str, str, str]] = []
        for entry in steps:
            if not isinstance(entry, dict):
                raise self._fail(400, "Each Steps entry must be an object.")
            step = by_id.get(str(entry.get("RunListStepId")))
            if step is None:
                raise self._fail(
                    400, f"RunListStepId '{entry.get('RunListStepId')}' is not a step of this run."
                )
            agent_ids = entry.get("AgentIds") or []
            if not isinstance(agent_ids, list):
                raise self._fail(400, "AgentIds must be a list of agent ids.")
            for agent_id in agent_ids:
                if str(agent_id) not in self.agents:
                    raise self._fail(400, f"Agent '{agent_id}' does not exist.")
            source_items = [item for item in source.items if item.step_id == step.id]
            if not agent_ids:  # no agents named: the ones this step ran on
                agent_ids = list(dict.fromkeys(item.agent_id for item in source_items))
            flows = dict.fromkeys(item.flow_id for item in source_items)
            plan += [(step.id, flow_id, str(agent)) for flow_id in flows for agent in agent_ids]
        applied = {name: value for name, value in sent.items() if name in schedule.variables}
        run = self._start_run(
            schedule,
            plan,
            created=self.now(),
            run_type="Manual",
            trigger="rerun_on_agents",
            variables={**source.variables, **applied},
            variables_sent=sent,
            source_run_id=source.id,
        )
        if self.legacy_forms:
            return Response(200, run.id, {"Content-Type": "text/plain; charset=utf-8"})
        return self._ok({"RunId": run.id})

    def _body_variables(self, raw: Any) -> dict[str, str]:
        if raw is None:
            return {}
        if not isinstance(raw, list):
            raise self._fail(400, "Variables must be a list of {Name, Value}.")
        found: dict[str, str] = {}
        for entry in raw:
            name = entry.get("Name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not VARIABLE_NAME.match(name):
                raise self._fail(400, f"Variable {entry!r} has no valid Name.")
            value = entry.get("Value")
            found[name] = "" if value is None else str(value)
        return found

    # leapwork.md: run flow by id (v4 agent, v3 environment)
    def run_flow(self, request: Request, flow_id: str, agent_id: str) -> Response:
        flow = self.flows.get(flow_id)
        if flow is None:
            raise self._fail(404, f"Flow with id '{flow_id}' was not found.")
        agent = self._agent(agent_id)
        is_delete = any(
            name.lower() == "isdelete" and value.lower() == "true"
            for name, value in request.query_pairs
        )
        sent = self._variables(request, skip=frozenset({"isdelete"}))
        home = self.schedules[flow.schedule_id]
        now = self.now()
        step = Step(
            seeded_uuid(self.rng), seeded_uuid(self.rng), "Step 1", 0, [flow.id], [agent.id]
        )
        temp = Schedule(
            seeded_uuid(self.rng),
            f"Run flow {flow.title} on {agent.title}",
            None,
            now,
            [step],
            dict(home.variables),
            is_scheduled=False,
            temporary=True,
            delete_after=is_delete,
        )
        self.schedules[temp.id] = temp
        applied = {name: value for name, value in sent.items() if name in temp.variables}
        run = self._start_run(
            temp,
            [(step.id, flow.id, agent.id)],
            created=now,
            run_type="Manual",
            trigger="run_flow",
            variables={**temp.variables, **applied},
            variables_sent=sent,
        )
        return self._ok({"RunId": run.id})

    # leapwork.md: agents (?temporary=true for the temporary ones)
    def list_agents(self, request: Request) -> Response:
        temporary = request.query.get("temporary", "").lower() == "true"
        agents = [a for a in self.agents.values() if a.temporary == temporary]
        return self._ok([self._agent_body(agent) for agent in agents])

    # leapwork.md: one agent
    def get_agent(self, request: Request, agent_id: str) -> Response:
        return self._ok(self._agent_body(self._agent(agent_id)))

    # Emulator endpoints ----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with self.lock:
            self.advance(self.now())
            return self._state()

    def _state(self) -> dict[str, Any]:
        runs = []
        for run in self.runs.values():
            statuses = [item.status for item in run.items]
            passed = sum(1 for s in statuses if s in {"Passed", "Pass", "Done"})
            failed = sum(1 for s in statuses if s in FAILING)
            runs.append(
                {
                    "id": run.id,
                    "schedule_id": run.schedule_id,
                    "status": run.status,
                    "run_type": run.run_type,
                    "trigger": run.trigger,
                    "created_at": run.created.isoformat(),
                    "finished_at": run.finished.isoformat() if run.finished else None,
                    "source_run_id": run.source_run_id,
                    "variables_sent": run.variables_sent,
                    "variables": run.variables,
                    "items": [
                        {
                            "id": item.id,
                            "flow_id": item.flow_id,
                            "agent_id": item.agent_id,
                            "step_id": item.step_id,
                            "status": item.status,
                        }
                        for item in run.items
                    ],
                    "counts": {
                        "total": len(statuses),
                        "passed": passed,
                        "failed": failed,
                        "other": len(statuses) - passed - failed,
                    },
                }
            )
        return {
            "schedules": [
                {
                    "id": s.id,
                    "title": s.title,
                    "temporary": s.temporary,
                    "delete_after": s.delete_after,
                    "deleted": s.deleted,
                    "variables": s.variables,
                    "agent_ids": s.agent_ids,
                    "steps": [
                        {
                            "id": step.id,
                            "title": step.title,
                            "index": step.index,
                            "flow_ids": step.flow_ids,
                            "agent_ids": step.agent_ids,
                        }
                        for step in s.steps
                    ],
                    "run_ids": [run.id for run in self.runs.values() if run.schedule_id == s.id],
                }
                for s in self.schedules.values()
            ],
            "agents": [
                {"id": a.id, "title": a.title, "host": a.host, "temporary": a.temporary}
                for a in self.agents.values()
            ],
            "flows": [
                {
                    "id": f.id,
                    "title": f.title,
                    "schedule_id": f.schedule_id,
                    "behaviour": f.behaviour,
                    "fails_on": f.fails_on,
                }
                for f in self.flows.values()
            ],
            "runs": runs,
            "counts": {
                "schedules": sum(1 for s in self.schedules.values() if not s.deleted),
                "agents": len(self.agents),
                "flows": len(self.flows),
                "runs": len(self.runs),
                "items": len(self.items),
                "active_runs": len(self.active),
            },
        }

    def banner(self) -> list[str]:
        lines = [f"  AccessKey: {self.credential or '(any)'}"]
        for schedule in self.schedules.values():
            if not schedule.temporary:
                lines.append(f"  schedule {schedule.id}  {schedule.title}")
        for agent in self.agents.values():
            lines.append(f"  agent    {agent.id}  {agent.title}")
        return lines
