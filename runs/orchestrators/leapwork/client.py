"""The Leapwork controller REST API client (shared/api/leapwork.md).

Where Leapwork's documents disagree it reads every form: RunItemIds / RunItemsIds, Passed /
Pass, AgentInfo / EnvironmentInfo, RunId / AutomationRunId, reRunOnAgents answering JSON or a
bare id, and the run/ and schedules/ paths of status and stop.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import unquote

import httpx

from runs.orchestrators.base import (
    AgentSnapshot,
    BadRequest,
    CallResult,
    Capabilities,
    NotFound,
    OrchestratorClient,
    OrchestratorError,
    PlannedCall,
    ProtocolError,
    RerunOutcome,
    RerunSpec,
    ResultSnapshot,
    RunRef,
    RunSnapshot,
    ScheduleSnapshot,
    Scope,
    StepSnapshot,
)
from runs.orchestrators.http import Http, expect, parse_json, path_segment
from runs.status import Status, leapwork_item_status, leapwork_run_status

# Run Flow by Id names its temporary schedule "Run flow <flow> on <agent>"; the API has no flag.
TEMPORARY_TITLE = re.compile(r"^Run flow .+ on .+$")
TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")
DOTNET_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
LOG_LINES = 8
# A lost call's run is looked for from this long before the call was sent: the controller's
# clock and Runboard's may disagree a little.
CLOCK_SLACK = timedelta(minutes=1)
# Looking for a lost call's run costs a bounded number of calls whatever the controller holds
# (it runs in a rerun worker, under a lease): at most this many temporary schedules made since
# (one per Run Flow by Id call: a failed-only rerun of many flows makes that many at once), this
# many runs of each (a temporary schedule runs once), and this many runs of a real schedule.
FIND_TEMPORARY_SCHEDULES = 50
FIND_RUNS_PER_TEMPORARY = 2
FIND_RUNS = 10
# A run's items read to tell whose run it is (a Run Flow by Id run has one).
FIND_ITEMS = 5


@dataclass(frozen=True)
class Keyframe:
    """One line of a run item's log."""

    timestamp: datetime | None
    level: str
    status: str
    message: str
    block: str = ""


@dataclass(frozen=True)
class ScheduleNode:
    """A schedule in the hierarchy with the titles of the folders above it."""

    schedule: ScheduleSnapshot
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Found:
    """A run that may be the one a lost call started."""

    run_id: str
    created: datetime
    run_type: str


def _nearness(created: datetime | None, since: datetime) -> tuple[bool, timedelta]:
    """Created at or after `since` first (a call's run is made after it is sent), nearest
    first; then those within the clock slack before it, nearest first."""
    if created is None:
        return (True, timedelta.max)
    return (created < since, abs(created - since))


def _nearest(found: Sequence[_Found], since: datetime) -> str | None:
    if not found:
        return None
    return min(found, key=lambda run: _nearness(run.created, since)).run_id


@contextlib.contextmanager
def _reading(what: str) -> Iterator[None]:
    """Any shape surprise while reading a vendor answer is a ProtocolError, never a crash."""
    try:
        yield
    except OrchestratorError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ProtocolError(f"{what}: unexpected answer ({exc!r:.160})") from exc


def parse_date(value: Any) -> datetime | None:
    """A Leapwork date object {Value, LocalDateTime, UtcDateTime, Ticks} (or a bare string)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_iso(value)
    expect(value, dict, "date")
    for key in ("Value", "UtcDateTime"):
        if isinstance(value.get(key), str) and value[key]:
            return _parse_iso(value[key])
    ticks = value.get("Ticks")
    if isinstance(ticks, int) and not isinstance(ticks, bool):
        # Ticks count the controller's local clock; without Value the offset is unknown.
        return DOTNET_EPOCH + timedelta(microseconds=ticks // 10)
    return None


def _parse_iso(text: str) -> datetime:
    # .NET writes 7 fractional digits; Python reads at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip())
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_timespan(text: Any, milliseconds: Any = None) -> timedelta | None:
    """A .NET TimeSpan "[d.]hh:mm:ss[.fffffff]", else the ...Milliseconds number."""
    if isinstance(text, str) and (match := TIMESPAN.match(text.strip())):
        days, hours, minutes, seconds, fraction = match.groups()
        return timedelta(
            days=int(days or 0),
            hours=int(hours),
            minutes=int(minutes),
            seconds=int(seconds),
            microseconds=int((fraction or "0").ljust(7, "0")) / 10,
        )
    if isinstance(milliseconds, int | float) and not isinstance(milliseconds, bool):
        return timedelta(milliseconds=milliseconds)
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class LeapworkClient(OrchestratorClient):
    """A Leapwork controller, authenticated by its AccessKey."""

    kind = "leapwork"
    capabilities: ClassVar[Capabilities] = Capabilities(
        scopes=frozenset({Scope.ALL, Scope.FAILED, Scope.PICKED}),
        agent_picker=True,
        variables=True,
        run_now=True,
        run_now_variables=True,
        rerun_all_by_steps=True,
        results_per_agent=True,
    )

    def __init__(self, client: httpx.Client, *, credential: str = "", concurrency: int = 8) -> None:
        client.headers["AccessKey"] = credential
        self.client = client
        self.http = Http(client)
        # Run items are fetched this many at a time (one call each; httpx.Client is
        # thread-safe): a run of 70 items costs the latency of 9 calls, not of 70.
        self.concurrency = max(1, concurrency)
        # Made now, not on first use: runs may be read side by side (a rerun's new runs), and
        # two threads must not each make one. Its threads start with its first call.
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="leapwork")

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
        self.client.close()

    def check(self) -> None:
        # leapwork.md: agents (the cheapest authenticated read)
        expect(self.http.json("GET", "/api/v4/agents"), list, "agents")

    # Schedules ------------------------------------------------------------------------------

    def list_schedules(self) -> list[ScheduleSnapshot]:
        # leapwork.md: list schedules
        body = expect(self.http.json("GET", "/api/v4/schedules"), list, "schedules")
        return [self._schedule(entry) for entry in body]

    def get_schedule(self, schedule_id: str) -> ScheduleSnapshot:
        # leapwork.md: one schedule
        return self._schedule(
            self.http.json("GET", f"/api/v4/schedules/{path_segment(schedule_id)}")
        )

    def schedule_hierarchy(self) -> list[ScheduleNode]:
        # leapwork.md: schedule tree
        body = expect(self.http.json("GET", "/api/v4/schedules/hierarchy"), list, "hierarchy")
        nodes = []
        with _reading("schedule hierarchy"):
            for entry in body:
                node = expect(entry.get("ScheduleHierarchy"), dict, "ScheduleHierarchy")
                info = entry.get("ScheduleInfo") or {}
                parents = tuple(_text(p.get("Title")) for p in node.get("Parent") or [])
                schedule = self._schedule({**info, "Id": node["Id"], "Title": node["Title"]})
                nodes.append(ScheduleNode(schedule, parents))
        return nodes

    def schedule_of_run(self, run_id: str) -> ScheduleSnapshot:
        # leapwork.md: schedule of a run (also a Run Flow by Id run's deleted temporary one)
        return self._schedule(
            self.http.json("GET", f"/api/v4/schedules/run/{path_segment(run_id)}")
        )

    def _schedule(self, body: Any) -> ScheduleSnapshot:
        expect(body, dict, "schedule")
        with _reading("schedule"):
            title = _text(body.get("Title"))
            steps = tuple(
                StepSnapshot(
                    external_id=_text(step.get("RunListStepId") or step["Id"]),
                    title=_text(step.get("StepName")),
                    index=int(step.get("StepIndex") or 0),
                )
                for step in body.get("RunListSteps") or []
            )
            return ScheduleSnapshot(
                external_id=_text(body["Id"]),
                title=title,
                is_enabled=bool(body.get("IsEnabled", True)),
                is_temporary=bool(TEMPORARY_TITLE.match(title)),
                steps=steps,
            )

    # Agents ---------------------------------------------------------------------------------

    def list_agents(self) -> list[AgentSnapshot]:
        return self.agents()

    def agents(self, *, temporary: bool = False) -> list[AgentSnapshot]:
        # leapwork.md: agents (?temporary=true for the temporary ones)
        params = {"temporary": "true"} if temporary else None
        body = expect(self.http.json("GET", "/api/v4/agents", params=params), list, "agents")
        return [self._agent(entry) for entry in body]

    def get_agent(self, agent_id: str) -> AgentSnapshot:
        # leapwork.md: one agent
        return self._agent(self.http.json("GET", f"/api/v4/agents/{path_segment(agent_id)}"))

    def _agent(self, body: Any) -> AgentSnapshot:
        expect(body, dict, "agent")
        with _reading("agent"):
            return AgentSnapshot(
                external_id=_text(body["Id"]),
                title=_text(body.get("Title")),
                host=_text(body.get("HostName")),
            )

    # Runs -----------------------------------------------------------------------------------

    def run_ids(
        self, schedule_id: str, *, filter_by: str = "NoFilter", count: int = 0
    ) -> list[str]:
        """A schedule's run ids, newest first (`count` runs, or days with LastDays)."""
        params = {"count": count} if count > 0 else None
        # leapwork.md: run ids of a schedule
        body = self.http.json(
            "GET",
            f"/api/v4/schedules/{path_segment(schedule_id)}/runIds/{path_segment(filter_by)}",
            params=params,
        )
        expect(body, dict, "runIds")
        with _reading("runIds"):
            ids = body.get("runIds", body.get("RunIds"))
            return [_text(run_id) for run_id in expect(ids, list, "runIds")]

    def list_runs(
        self, schedule_id: str, *, since: datetime | None = None, limit: int = 200
    ) -> list[RunRef]:
        if since is None:
            ids = self.run_ids(schedule_id, count=limit)
        else:
            # Leapwork filters by whole days back from its own now: a superset of `since`.
            age = datetime.now(UTC) - since
            days = max(1, math.ceil(age.total_seconds() / 86400) + 1)
            ids = self.run_ids(schedule_id, filter_by="LastDays", count=days)[:limit]
        return [RunRef(external_id=run_id) for run_id in ids]

    def run_status(self, run_id: str) -> str:
        """The run's own word: Queued, Executing or Finished (a missing Status means Queued)."""
        body = self._with_fallback(
            "GET",
            # leapwork.md: run status (run/ form first, then the schedules/ form)
            f"/api/v4/run/{path_segment(run_id)}/status",
            f"/api/v4/schedules/{path_segment(run_id)}/status",
        )
        expect(body, dict, "run status")
        return _text(body.get("Status")) or "Queued"

    def get_run(self, run_id: str) -> RunSnapshot:
        # leapwork.md: run
        run = expect(self.http.json("GET", f"/api/v4/run/{path_segment(run_id)}"), dict, "run")
        results = self.get_run_items(self.run_item_ids(run_id))
        with _reading("run"):
            schedule = run.get("Schedule") or {}
            word = _text(run.get("Status")) or "Queued"
            status = leapwork_run_status(word, (result.status for result in results))
            started = parse_date(run.get("CreatedAt"))
            duration = parse_timespan(
                run.get("ExecutionTotalTime"), run.get("ExecutionMilliseconds")
            )
            finished = None
            if status.is_terminal:
                ends = [r.finished_at for r in results if r.finished_at]
                if ends:
                    finished = max(ends)
                elif started and duration is not None:
                    finished = started + duration
            title = _text(schedule.get("ScheduleTitle"))
            run_type = _text(run.get("RunType"))
            return RunSnapshot(
                external_id=_text(run.get("RunId") or run_id),
                schedule_id=_text(schedule.get("ScheduleId")),
                schedule_title=title,
                status=status,
                vendor_status=word,
                started_at=started,
                finished_at=finished,
                duration=duration,
                trigger="scheduled" if run_type.lower() == "scheduled" else "manual",
                schedule_is_temporary=bool(TEMPORARY_TITLE.match(title)),
                results=results,
            )

    def run_item_ids(self, run_id: str) -> list[str]:
        # leapwork.md: run item ids (RunItemIds; one docs example spells it RunItemsIds)
        body = expect(
            self.http.json("GET", f"/api/v4/run/{path_segment(run_id)}/runItemIds"),
            dict,
            "item ids",
        )
        ids = body.get("RunItemIds", body.get("RunItemsIds"))
        return [_text(item_id) for item_id in expect(ids, list, "RunItemIds")]

    def get_run_items(self, item_ids: Sequence[str]) -> tuple[ResultSnapshot, ...]:
        """The run items in their order (seq), at most `concurrency` calls in flight; the
        first item (in that order) that fails raises its error, the calls not started yet
        are dropped."""
        if self.concurrency == 1 or len(item_ids) < 2:
            return tuple(
                self.get_run_item(item_id, seq=seq) for seq, item_id in enumerate(item_ids)
            )
        futures = [
            self._pool.submit(self.get_run_item, item_id, seq=seq)
            for seq, item_id in enumerate(item_ids)
        ]
        try:
            return tuple(future.result() for future in futures)
        finally:
            for future in futures:
                future.cancel()

    def get_run_item(self, item_id: str, *, seq: int = 0) -> ResultSnapshot:
        """One run item; the log excerpt is fetched for failed and errored items only."""
        # leapwork.md: run item
        body = expect(
            self.http.json("GET", f"/api/v4/runItems/{path_segment(item_id)}"), dict, "run item"
        )
        with _reading("run item"):
            flow = expect(body.get("FlowInfo"), dict, "FlowInfo")
            agent = body.get("AgentInfo") or {}
            environment = body.get("EnvironmentInfo") or {}
            word = _text(flow.get("Status"))
            status = leapwork_item_status(word)
            duration = parse_timespan(body.get("Elapsed"), body.get("ElapsedMilliseconds"))
            started = parse_date(body.get("CreatedAt")) if status != Status.QUEUED else None
            finished = (
                started + duration
                if started and duration is not None and status.is_terminal
                else None
            )
            result = ResultSnapshot(
                external_id=_text(body.get("RunItemId") or item_id),
                case_key=_text(flow["FlowId"]),
                case_title=_text(flow.get("FlowTitle")),
                status=status,
                vendor_status=word,
                agent_id=_text(agent.get("AgentId") or environment.get("EnvironmentId")),
                agent_title=_text(agent.get("AgentTitle") or environment.get("EnvironmentTitle")),
                started_at=started,
                finished_at=finished,
                duration=duration,
                seq=seq,
            )
        if not status.is_failure:
            return result
        frames = self.keyframes(result.external_id)
        message, excerpt = log_excerpt(frames)
        return replace(result, message=message, log_excerpt=excerpt)

    def keyframes(self, item_id: str) -> list[Keyframe]:
        # leapwork.md: run item log
        body = expect(
            self.http.json("GET", f"/api/v4/runItems/{path_segment(item_id)}/keyframes"),
            list,
            "log",
        )
        with _reading("keyframes"):
            return [
                Keyframe(
                    timestamp=parse_date(frame.get("Timestamp")),
                    level=_text(frame.get("Level")),
                    status=_text(frame.get("Status")),
                    message=_text(frame.get("LogMessage")),
                    block=_text(frame.get("BlockTitle")),
                )
                for frame in body
            ]

    # Writes ---------------------------------------------------------------------------------

    def run_now(
        self,
        schedule_id: str,
        *,
        variables: Mapping[str, Any] | None = None,
        build: str = "",
        environment: str = "",
    ) -> str:
        # leapwork.md: run schedule now (variables as query parameters)
        response = self.http.request(
            "PUT",
            f"/api/v3/schedules/{path_segment(schedule_id)}/runNow",
            params=_params(variables),
        )
        return _run_id(response)

    def rerun_run(
        self, run_id: str, *, agent_id: str = "", variables: Mapping[str, Any] | None = None
    ) -> str:
        """Leapwork's plain re-run: v3 on the same agents, v4 on one agent."""
        # leapwork.md: re-run
        path = (
            f"/api/v4/run/{path_segment(run_id)}/reRun/{path_segment(agent_id)}"
            if agent_id
            else f"/api/v3/run/{path_segment(run_id)}/reRun"
        )
        return _run_id(self.http.request("PUT", path, params=_params(variables)))

    def rerun_on_agents(
        self,
        run_id: str,
        steps: Mapping[str, tuple[str, ...] | list[str]],
        *,
        variables: Mapping[str, Any] | None = None,
    ) -> str:
        """Re-run on Agents: `steps` maps each RunListStepId to its agent ids."""
        call = _rerun_on_agents_call(run_id, steps, variables or {})
        return self._send(call)

    def run_flow(
        self,
        flow_id: str,
        agent_id: str,
        *,
        variables: Mapping[str, Any] | None = None,
        is_delete: bool = True,
    ) -> str:
        """Run Flow by Id on one agent through a temporary schedule."""
        return self._send(_run_flow_call(flow_id, agent_id, variables or {}, is_delete=is_delete))

    def stop_run(self, run_id: str) -> None:
        self._with_fallback(
            "PUT",
            # leapwork.md: stop a run (run/ form first, then the schedules/ form)
            f"/api/v4/run/{path_segment(run_id)}/stop",
            f"/api/v4/schedules/{path_segment(run_id)}/stop",
        )

    @classmethod
    def plan_rerun(cls, run_id: str, spec: RerunSpec, *, schedule_id: str) -> list[PlannedCall]:
        if spec.scope == Scope.ALL:
            if not spec.steps:
                raise BadRequest("a rerun of every flow needs at least one RunListStep")
            steps = {step.step_id: step.agent_ids for step in spec.steps}
            return [_rerun_on_agents_call(run_id, steps, spec.variables)]
        if spec.scope in (Scope.FAILED, Scope.PICKED):
            if not spec.cases:
                raise BadRequest("pick at least one flow to rerun")
            calls = []
            for case in spec.cases:
                if not case.agent_ids:
                    raise BadRequest(f"flow {case.case_key} needs an agent to run on")
                calls.append(_run_flow_call(case.case_key, case.agent_ids[0], spec.variables))
            return calls
        raise BadRequest(f"Leapwork cannot rerun with scope {spec.scope}")

    def rerun(self, run_id: str, spec: RerunSpec, *, schedule_id: str) -> RerunOutcome:
        """All: one Re-run on Agents (errors raised). Failed/picked: one Run Flow by Id per
        flow, each call's error kept in its CallResult (target "<flow id>@<agent id>")."""
        plan = self.plan_rerun(run_id, spec, schedule_id=schedule_id)
        if spec.scope == Scope.ALL:
            answered = self.send_planned(run_id, plan[0])
            return RerunOutcome(calls=(CallResult(target=run_id, run_id=answered),))
        calls = []
        for call in plan:
            target = self.call_target(run_id, call)
            try:
                calls.append(CallResult(target=target, run_id=self.send_planned(run_id, call)))
            except OrchestratorError as exc:
                calls.append(CallResult(target=target, error=exc))
        return RerunOutcome(calls=tuple(calls))

    def send_planned(self, run_id: str, call: PlannedCall) -> str:
        return self._send(call)

    @classmethod
    def call_target(cls, run_id: str, call: PlannedCall) -> str:
        return _flow_target(call.path) if "/flows/" in call.path else run_id

    # Finding the run a lost call started ----------------------------------------------------

    def find_started(self, run_id: str, call: PlannedCall, *, since: datetime) -> str | None:
        """Run Flow by Id: the run, created since, of a temporary schedule made since, whose
        run items are that flow on that agent. Re-run on Agents: a run of the source run's
        schedule created since, not scheduled and not the source, on the agents the call named.
        Of several, the one created nearest after `since`.

        Leapwork never returns a run's variables: they are not matched. A Run Flow by Id run
        sent with isDelete=true is found only while it runs: once it finished, its temporary
        schedule is deleted and no documented endpoint lists it any more.
        """
        if "/flows/" in call.path:
            flow_id, agent_id = _flow_target(call.path).split("@", 1)
            return self._find_run_flow(flow_id, agent_id, since)
        if call.path.rstrip("/").endswith("/reRunOnAgents"):
            return self._find_rerun_on_agents(run_id, call.body, since)
        raise BadRequest(f"cannot tell which run {call.method} {call.path} started")

    def find_run_now(
        self,
        schedule_id: str,
        *,
        since: datetime,
        variables: Mapping[str, Any] | None = None,
        known_run_id: str = "",
    ) -> str | None:
        """A run of the schedule created since that was not scheduled, nearest after `since`
        (the variables are not matched: Leapwork never returns them)."""
        try:
            runs = self._runs_since(schedule_id, since - CLOCK_SLACK, count=FIND_RUNS)
        except NotFound:
            return None
        found = [run for run in runs if run.run_type.lower() != "scheduled"]
        return _nearest(found, since)

    def _find_run_flow(self, flow_id: str, agent_id: str, since: datetime) -> str | None:
        threshold = since - CLOCK_SLACK
        # leapwork.md: list schedules (temporary ones included while they exist)
        body = expect(self.http.json("GET", "/api/v4/schedules"), list, "schedules")
        made: list[tuple[datetime | None, str]] = []
        with _reading("schedules"):
            for entry in body:
                schedule = self._schedule(entry)
                created = parse_date(entry.get("DateCreation"))
                if schedule.is_temporary and (created is None or created >= threshold):
                    made.append((created, schedule.external_id))
        # Temporary schedules are made with their run: the nearest to `since` first.
        made.sort(key=lambda pair: _nearness(pair[0], since))
        for _created, schedule_id in made[:FIND_TEMPORARY_SCHEDULES]:
            try:
                runs = self._runs_since(schedule_id, threshold, count=FIND_RUNS_PER_TEMPORARY)
            except NotFound:
                continue  # deleted since it was listed
            found = [run for run in runs if self._items_match(run.run_id, flow_id, agent_id)]
            if found:
                return _nearest(found, since)
        return None

    def _find_rerun_on_agents(self, run_id: str, body: Any, since: datetime) -> str | None:
        steps = body.get("Steps") if isinstance(body, dict) else None
        named: set[str] | None = set()
        for step in steps if isinstance(steps, list) else []:
            agent_ids = step.get("AgentIds") if isinstance(step, dict) else None
            if not agent_ids:
                named = None  # a step on the source run's own agents: any agent may appear
                break
            if named is not None:
                named.update(_text(agent_id) for agent_id in agent_ids)
        try:
            # leapwork.md: run (its Schedule names the schedule the rerun runs on)
            source = expect(
                self.http.json("GET", f"/api/v4/run/{path_segment(run_id)}"), dict, "run"
            )
            with _reading("run"):
                schedule_id = _text(expect(source.get("Schedule"), dict, "Schedule")["ScheduleId"])
            runs = self._runs_since(schedule_id, since - CLOCK_SLACK, count=FIND_RUNS)
        except NotFound:
            return None
        found = [
            run
            for run in runs
            if run.run_id != run_id
            and run.run_type.lower() != "scheduled"
            and (not named or self._items_match(run.run_id, agent_ids=named))
        ]
        return _nearest(found, since)

    def _runs_since(self, schedule_id: str, threshold: datetime, *, count: int) -> list[_Found]:
        """The schedule's newest `count` runs created at or after `threshold`."""
        found = []
        for candidate in self.run_ids(schedule_id, count=count):
            # leapwork.md: run
            run = expect(
                self.http.json("GET", f"/api/v4/run/{path_segment(candidate)}"), dict, "run"
            )
            with _reading("run"):
                created = parse_date(run.get("CreatedAt"))
                run_type = _text(run.get("RunType"))
            if created is None:
                continue  # when it began is unknown: it cannot be shown to be this call's
            if created < threshold:
                break  # newest first: the rest are older still
            found.append(_Found(candidate, created, run_type))
        return found

    def _items_match(
        self,
        run_id: str,
        flow_id: str = "",
        agent_id: str = "",
        *,
        agent_ids: set[str] | None = None,
    ) -> bool:
        """Whether the run's items (at most FIND_ITEMS read) are all that flow on that agent
        (Run Flow by Id), or all on those agents (Re-run on Agents)."""
        item_ids = self.run_item_ids(run_id)
        if not item_ids or (flow_id and len(item_ids) != 1):
            return False  # a Run Flow by Id run has exactly one item
        for item_id in item_ids[:FIND_ITEMS]:
            # leapwork.md: run item
            body = expect(
                self.http.json("GET", f"/api/v4/runItems/{path_segment(item_id)}"),
                dict,
                "run item",
            )
            with _reading("run item"):
                flow = expect(body.get("FlowInfo"), dict, "FlowInfo")
                agent = body.get("AgentInfo") or body.get("EnvironmentInfo") or {}
                item_flow = _text(flow.get("FlowId"))
                item_agent = _text(agent.get("AgentId") or agent.get("EnvironmentId"))
            if flow_id and (item_flow, item_agent) != (flow_id, agent_id):
                return False
            if agent_ids is not None and item_agent not in agent_ids:
                return False
        return True

    # Plumbing -------------------------------------------------------------------------------

    def _send(self, call: PlannedCall) -> str:
        # leapwork.md: re-run on agents / run flow by id (both PUT, never retried)
        headers = {"Accept": "text/plain"} if call.body is not None else None
        response = self.http.request(
            call.method,
            call.path,
            params=dict(call.params) or None,
            json_body=call.body,
            headers=headers,
        )
        return _run_id(response)

    def _with_fallback(self, method: str, first: str, second: str) -> Any:
        """Try the run/ path; a controller that does not serve it answers 404 or 405."""
        try:
            response = self.http.request(method, first)
        except (NotFound, BadRequest) as exc:
            if isinstance(exc, BadRequest) and exc.status_code != 405:
                raise
            response = self.http.request(method, second)
        return parse_json(response)


def _params(variables: Mapping[str, Any] | None) -> dict[str, str] | None:
    return {name: _text(value) for name, value in (variables or {}).items()} or None


def _rerun_on_agents_call(
    run_id: str, steps: Mapping[str, Any], variables: Mapping[str, Any]
) -> PlannedCall:
    # leapwork.md: re-run on agents
    body = {
        "Variables": [{"Name": name, "Value": _text(value)} for name, value in variables.items()],
        "Steps": [
            {
                "RunListStepId": step_id,
                "AgentIds": list(agent_ids),
                "EnvironmentParallelization": "runAllCases",
                "StartOrder": "defined",
            }
            for step_id, agent_ids in steps.items()
        ],
    }
    return PlannedCall("PUT", f"/api/v4/run/{path_segment(run_id)}/reRunOnAgents", {}, body)


def _run_flow_call(
    flow_id: str, agent_id: str, variables: Mapping[str, Any], *, is_delete: bool = True
) -> PlannedCall:
    # leapwork.md: run flow by id (isDelete first, then the variables)
    params = {"isDelete": "true" if is_delete else "false"}
    params.update({k: _text(v) for k, v in variables.items() if k.lower() != "isdelete"})
    return PlannedCall(
        "PUT", f"/api/v4/flows/{path_segment(flow_id)}/agent/{path_segment(agent_id)}", params
    )


def _flow_target(path: str) -> str:
    parts = path.strip("/").split("/")  # api v4 flows {flow} agent {agent}
    return f"{unquote(parts[3])}@{unquote(parts[5])}"


def _run_id(response: httpx.Response) -> str:
    """{"$id", "RunId"} as JSON, or the bare id as text (possibly quoted)."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    if isinstance(body, dict):
        body = body.get("RunId")
    if not isinstance(body, str) or not re.fullmatch(r"[0-9A-Za-z{}\-]+", body.strip()):
        raise ProtocolError(
            f"expected a RunId from {response.request.method} {response.request.url.path}, "
            f"got {text[:120]!r}",
            status_code=response.status_code,
        )
    return body.strip()


def log_excerpt(frames: list[Keyframe]) -> tuple[str, str]:
    """The failure message and a short log: failure lines and the warnings that led to them
    (retries, slow pages), else the last non-Trace lines."""
    lines = [f for f in frames if f.level.lower() != "trace" and f.message]
    failing = [
        f
        for f in lines
        if f.level.lower() in {"error", "fatal", "warning"}
        or leapwork_item_status(f.status).is_failure
    ]
    chosen = (failing or lines)[-LOG_LINES:]
    errors = [f for f in failing if f.level.lower() in {"error", "fatal"}]
    errors = errors or [f for f in failing if f.level.lower() != "warning"] or failing
    message = errors[0].message if errors else ""
    excerpt = "\n".join(
        f"[{f.level}] {f.block}: {f.message}" if f.block else f"[{f.level}] {f.message}"
        for f in chosen
    )
    return message, excerpt
