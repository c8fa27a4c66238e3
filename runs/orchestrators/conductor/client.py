"""Conductor (conductor-oss or Orkes) over its REST API: shared/api/conductor.md.

A workflow definition is a Schedule (keyed by name), an execution is a Run, a task execution
is an ExecutionResult. Reruns, retries and restarts work in place: the workflowId stays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from runs.orchestrators.base import (
    AgentSnapshot,
    BadRequest,
    CallResult,
    Capabilities,
    NotFound,
    OrchestratorClient,
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
    Unauthorized,
)
from runs.orchestrators.http import Http, expect, parse_json, path_segment
from runs.status import Status, conductor_task_status, conductor_workflow_status

MAX_SEARCH_SIZE = 5000  # conductor.md: search size over 5000 is refused
# A lost call's activity counts from this long before the call was sent: the clocks may
# disagree a little. Kept short: a rerun keeps the workflowId, so time is the only evidence, and
# the attempt before the rerun (finished before anybody asked for the rerun) must not count.
CLOCK_SLACK = timedelta(seconds=5)
# Run now: at most this many executions of the definition started since are looked at (one
# search page), the earliest first.
FIND_RUNS = 50
ONGOING = frozenset({"RUNNING", "PAUSED"})  # conductor.md: the workflow statuses not terminal
# Where a worker's log may sit in a task's outputData (the worker decides), and how much to keep.
WORKER_LOG_KEYS = ("log", "logs")
LOG_LINES = 8


@dataclass(frozen=True)
class WorkflowSummary:
    """One search hit, its string times, serialized input/output and joined names parsed."""

    workflow_id: str
    workflow_type: str
    version: int
    status: Status
    vendor_status: str
    correlation_id: str = ""
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    execution_time: timedelta | None = None
    input: Mapping[str, Any] = field(default_factory=dict)
    output: Mapping[str, Any] = field(default_factory=dict)
    raw_input: str = ""  # when the server serialized the input as something other than JSON
    reason: str = ""
    failed_reference_task_names: tuple[str, ...] = ()
    failed_task_names: tuple[str, ...] = ()
    created_by: str = ""


class ConductorClient(OrchestratorClient):
    """conductor-oss (no auth) or Orkes (credential `keyId:keySecret`, exchanged for a token)."""

    kind: ClassVar[str] = "conductor"
    capabilities: ClassVar[Capabilities] = Capabilities(
        scopes=frozenset({Scope.ALL, Scope.FAILED, Scope.FROM_TASK}),
        agent_picker=False,
        workflow_input=True,
        task_input=True,
        run_now=True,
        run_now_variables=True,
        max_picked=1,
        picked_scope=Scope.FROM_TASK,
        run_now_input=True,
        reruns_in_place=True,
    )

    def __init__(self, client: httpx.Client, *, credential: str = "", concurrency: int = 8) -> None:
        self.client = client
        # One call per run (a workflow carries its tasks): nothing to fetch side by side.
        self.concurrency = concurrency
        self.http = Http(client)
        key_id, sep, secret = credential.partition(":")
        # keyId:keySecret is an Orkes application key; anything else is a ready-made token.
        self._key = (key_id, secret) if sep else None
        self._token = credential if credential and not sep else ""

    # Auth -----------------------------------------------------------------------------------

    def _fetch_token(self) -> str:
        assert self._key is not None
        key_id, secret = self._key
        # conductor.md: Orkes POST /api/token {keyId, keySecret} -> {token}
        body = self.http.json(
            "POST",
            "/api/token",
            json_body={"keyId": key_id, "keySecret": secret},
            idempotent=True,  # asking for a token twice does no harm
        )
        token = expect(body, dict, "token answer").get("token")
        self._token = expect(token, str, "token")
        if not self._token:
            raise ProtocolError("the token answer carried an empty token")
        return self._token

    def _headers(self) -> dict[str, str]:
        if self._key is not None and not self._token:
            self._fetch_token()
        return {"X-Authorization": self._token} if self._token else {}

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send with the token; when Orkes refuses it (expired), fetch a new one and retry once."""
        headers = self._headers()
        try:
            return self.http.request(
                method,
                path,
                params=params,
                json_body=json_body,
                headers=headers,
                idempotent=idempotent,
            )
        except Unauthorized:
            if self._key is None:
                raise
            self._token = ""
            self._fetch_token()
            # A refused request did nothing, so sending a write again is safe.
            return self.http.request(
                method,
                path,
                params=params,
                json_body=json_body,
                headers=self._headers(),
                idempotent=idempotent,
            )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return parse_json(self._request(method, path, **kwargs))

    def _text_id(self, response: httpx.Response, what: str) -> str:
        """Start and rerun answer the workflowId as text/plain (tolerate a JSON string too)."""
        text = response.text.strip()
        if text.startswith('"'):
            try:
                text = json.loads(text)
            except ValueError as exc:
                raise ProtocolError(f"{what}: unreadable workflow id {text[:80]!r}") from exc
        if not isinstance(text, str) or not text or any(c in text for c in "{}[] \n"):
            raise ProtocolError(f"{what}: expected a workflow id, got {response.text[:80]!r}")
        return text

    # The interface --------------------------------------------------------------------------

    def check(self) -> None:
        self.definitions()

    def definitions(self) -> list[ScheduleSnapshot]:
        """Workflow definitions by name: the latest version of each."""
        # conductor.md: definitions, GET /api/metadata/workflow
        body = expect(self._json("GET", "/api/metadata/workflow"), list, "workflow definitions")
        latest: dict[str, tuple[int, dict[str, Any]]] = {}
        for item in body:
            item = expect(item, dict, "workflow definition")
            name = expect(item.get("name"), str, "definition name")
            version = _int(item.get("version", 1), "definition version")
            if name not in latest or version > latest[name][0]:
                latest[name] = (version, item)
        schedules = []
        for name, (_version, item) in sorted(latest.items()):
            tasks = expect(item.get("tasks") or [], list, f"tasks of {name}")
            steps = []
            for index, task in enumerate(tasks):
                task = expect(task, dict, f"task of {name}")
                ref = expect(task.get("taskReferenceName"), str, "taskReferenceName")
                title = task.get("name") or ref
                steps.append(StepSnapshot(ref, expect(title, str, "task name"), index))
            schedules.append(
                ScheduleSnapshot(
                    external_id=name,
                    title=name,
                    description=_str(item.get("description")),
                    steps=tuple(steps),
                )
            )
        return schedules

    def list_schedules(self) -> list[ScheduleSnapshot]:
        return self.definitions()

    def list_agents(self) -> list[AgentSnapshot]:
        # conductor.md documents no worker list: workers are learned from tasks' workerId.
        return []

    def search(
        self,
        workflow_type: str,
        *,
        since: datetime | None = None,
        updated_since: datetime | None = None,
        status: str = "",
        limit: int = 200,
        page_size: int = 1000,
    ) -> list[WorkflowSummary]:
        """Executions of one definition, newest first, paged (`size` at most 5000).

        `updated_since` finds executions updated since then, newest update first: the new
        ones, and old ones rerun, retried or restarted in place since.
        """
        clauses = [f"workflowType = '{_quote(workflow_type)}'"]
        if status:
            clauses.append(f"status = '{_quote(status)}'")
        if since is not None:
            clauses.append(f"startTime > {int(since.timestamp() * 1000)}")
        if updated_since is not None:
            clauses.append(f"updateTime > {int(updated_since.timestamp() * 1000)}")
        sort = "updateTime:DESC" if updated_since is not None else "startTime:DESC"
        return self._search(" AND ".join(clauses), sort, limit=limit, page_size=page_size)

    def _search(
        self, query: str, sort: str, *, limit: int, page_size: int = 1000
    ) -> list[WorkflowSummary]:
        page_size = max(1, min(page_size, MAX_SEARCH_SIZE))
        found: list[WorkflowSummary] = []
        start = 0
        while len(found) < limit:
            size = min(page_size, limit - len(found))
            # conductor.md: search, GET /api/workflow/search
            body = self._json(
                "GET",
                "/api/workflow/search",
                params={
                    "start": start,
                    "size": size,
                    "sort": sort,
                    "freeText": "*",
                    "query": query,
                },
            )
            body = expect(body, dict, "search answer")
            results = expect(body.get("results") or [], list, "search results")
            total = _int(body.get("totalHits", 0), "totalHits")
            found.extend(self._summary(item) for item in results)
            start += len(results)
            if not results or start >= total:
                break
        return found[:limit]

    def list_runs(
        self,
        schedule_id: str,
        *,
        since: datetime | None = None,
        limit: int = 200,
        updated_since: datetime | None = None,
    ) -> list[RunRef]:
        """Runs started after `since`, or (incremental sync) updated after `updated_since`."""
        found = self.search(schedule_id, since=since, updated_since=updated_since, limit=limit)
        return [
            RunRef(summary.workflow_id, summary.started_at, summary.status, summary.updated_at)
            for summary in found
        ]

    def discover(
        self, schedule_ids: Sequence[str], *, since: datetime, incremental: bool, limit: int = 200
    ) -> list[str]:
        """A rerun, retry or restart works in place and keeps the old start time: after the
        first pass, only the update time says an execution changed."""
        found: dict[str, None] = {}
        for schedule_id in schedule_ids:
            if incremental:
                refs = self.list_runs(schedule_id, updated_since=since, limit=limit)
            else:
                refs = self.list_runs(schedule_id, since=since, limit=limit)
            found.update((ref.external_id, None) for ref in refs)
        return list(found)

    def get_run(self, run_id: str) -> RunSnapshot:
        """One execution with every task; tasks sharing a reference name are attempts of one
        case, and the one with the highest seq is its result."""
        # conductor.md: one execution, GET /api/workflow/{id}?includeTasks=true
        body = self._json(
            "GET", f"/api/workflow/{path_segment(run_id)}", params={"includeTasks": "true"}
        )
        return self._run(expect(body, dict, "workflow"))

    def tasks(
        self, run_id: str, *, status: str = "", workflow_name: str = "", page_size: int = 100
    ) -> list[ResultSnapshot]:
        """The tasks of one execution through the paged tasks endpoint."""
        results: list[ResultSnapshot] = []
        start = 0
        while True:
            params: dict[str, Any] = {"start": start, "count": page_size}
            if status:
                params["status"] = status
            # conductor.md: its tasks, GET /api/workflow/{id}/tasks
            body = expect(
                self._json("GET", f"/api/workflow/{path_segment(run_id)}/tasks", params=params),
                dict,
                "task list",
            )
            page = expect(body.get("results") or [], list, "task list results")
            total = _int(body.get("totalHits", 0), "totalHits")
            for item in page:
                item = expect(item, dict, "task")
                name = workflow_name or _str(item.get("workflowType"))
                results.append(self._result(item, name))
            start += len(page)
            if not page or start >= total:
                return sorted(results, key=lambda result: result.seq)

    def run_now(
        self,
        schedule_id: str,
        *,
        variables: Mapping[str, Any] | None = None,
        build: str = "",
        environment: str = "",
    ) -> str:
        body = {"name": schedule_id, "input": dict(variables or {})}
        # conductor.md: start, POST /api/workflow -> the workflowId as text/plain
        response = self._request("POST", "/api/workflow", json_body=body)
        return self._text_id(response, "start workflow")

    @classmethod
    def plan_rerun(cls, run_id: str, spec: RerunSpec, *, schedule_id: str) -> list[PlannedCall]:
        path = f"/api/workflow/{path_segment(run_id)}"
        if spec.scope == Scope.ALL:
            body: dict[str, Any] = {"reRunFromWorkflowId": run_id}
            if spec.workflow_input is not None:
                body["workflowInput"] = dict(spec.workflow_input)
            if spec.correlation_id is not None:
                body["correlationId"] = spec.correlation_id
            # conductor.md: rerun, POST /api/workflow/{id}/rerun (no reRunFromTaskId: from the start)
            return [PlannedCall("POST", f"{path}/rerun", {}, body)]
        if spec.scope == Scope.FAILED:
            # conductor.md: retry, POST /api/workflow/{id}/retry?resumeSubworkflowTasks=false
            return [PlannedCall("POST", f"{path}/retry", {"resumeSubworkflowTasks": "false"})]
        if spec.scope == Scope.FROM_TASK:
            task_id = spec.task_id
            if not task_id and len(spec.cases) == 1:
                task_id = spec.cases[0].result_id
            if not task_id or len(spec.cases) > 1:
                raise BadRequest("Conductor reruns from exactly one picked task")
            body = {"reRunFromWorkflowId": run_id, "reRunFromTaskId": task_id}
            if spec.task_input is not None:
                body["taskInput"] = dict(spec.task_input)
            # conductor.md: rerun, POST /api/workflow/{id}/rerun with reRunFromTaskId = a taskId
            return [PlannedCall("POST", f"{path}/rerun", {}, body)]
        raise BadRequest(f"Conductor cannot rerun with scope {spec.scope.value!r}")

    def rerun(self, run_id: str, spec: RerunSpec, *, schedule_id: str) -> RerunOutcome:
        calls = [
            CallResult(
                target=self.call_target(run_id, call), run_id=self.send_planned(run_id, call)
            )
            for call in self.plan_rerun(run_id, spec, schedule_id=schedule_id)
        ]
        return RerunOutcome(tuple(calls))

    def send_planned(self, run_id: str, call: PlannedCall) -> str:
        response = self._request(
            call.method,
            call.path,
            params=dict(call.params) or None,
            json_body=call.body,
            idempotent=False,
        )
        # Rerun answers the same workflowId; retry answers 204: it stays the same run.
        return self._text_id(response, "rerun") if response.content.strip() else run_id

    @classmethod
    def call_target(cls, run_id: str, call: PlannedCall) -> str:
        task_id = call.body.get("reRunFromTaskId") if isinstance(call.body, dict) else None
        return f"rerun from task {task_id}" if task_id else call.path.rsplit("/", 1)[-1]

    def find_started(self, run_id: str, call: PlannedCall, *, since: datetime) -> str | None:
        """Reruns and retries work in place: the call started `run_id` again if that execution
        shows activity begun since: running (or paused) and updated since, retried or
        restarted since, or a task scheduled or started since.

        It assumes the execution was over when the call was sent (conductor-oss refuses to
        rerun a running one): a running execution's own progress would look the same.
        """
        threshold = since - CLOCK_SLACK
        try:
            # conductor.md: one execution, GET /api/workflow/{id}?includeTasks=true
            body = self._json(
                "GET", f"/api/workflow/{path_segment(run_id)}", params={"includeTasks": "true"}
            )
        except NotFound:
            return None
        body = expect(body, dict, "workflow")
        moments = [
            _time(body.get("lastRetriedTime"), "lastRetriedTime"),
            _time(body.get("createTime"), "createTime"),  # restart sets it anew
        ]
        if _str(body.get("status")) in ONGOING:
            moments.append(_time(body.get("updateTime"), "updateTime"))
        for task in expect(body.get("tasks") or [], list, "tasks"):
            task = expect(task, dict, "task")
            moments.append(_time(task.get("scheduledTime"), "task scheduledTime"))
            moments.append(_time(task.get("startTime"), "task startTime"))
        if any(moment is not None and moment >= threshold for moment in moments):
            return run_id
        return None

    def find_run_now(
        self,
        schedule_id: str,
        *,
        since: datetime,
        variables: Mapping[str, Any] | None = None,
        known_run_id: str = "",
    ) -> str | None:
        """The earliest execution of the definition started since whose input holds these
        variables (a start sends them as the workflow input)."""
        after = int((since - CLOCK_SLACK).timestamp() * 1000) - 1
        query = f"workflowType = '{_quote(schedule_id)}' AND startTime > {after}"
        found = self._search(query, "startTime:ASC", limit=FIND_RUNS, page_size=FIND_RUNS)
        wanted = dict(variables or {})
        matching = [
            (summary.started_at, summary.workflow_id)
            for summary in found
            if summary.started_at is not None
            and all(key in summary.input and summary.input[key] == v for key, v in wanted.items())
        ]
        if not matching:
            return None
        # A start is made after it is sent: those started at or after `since` come first.
        return min(matching, key=lambda pair: (pair[0] < since, abs(pair[0] - since)))[1]

    def restart(self, run_id: str, *, use_latest_definitions: bool = False) -> None:
        """Run the whole execution again from scratch, in place, with the same input."""
        flag = "true" if use_latest_definitions else "false"
        # conductor.md: restart, POST /api/workflow/{id}/restart?useLatestDefinitions=
        self._request(
            "POST",
            f"/api/workflow/{path_segment(run_id)}/restart",
            params={"useLatestDefinitions": flag},
            idempotent=False,
        )

    def terminate(self, run_id: str, reason: str = "") -> None:
        # conductor.md: terminate, DELETE /api/workflow/{id}?reason=
        self._request(
            "DELETE",
            f"/api/workflow/{path_segment(run_id)}",
            params={"reason": reason},
            idempotent=False,
        )

    def stop_run(self, run_id: str) -> None:
        self.terminate(run_id, "Stopped from Runboard")

    def close(self) -> None:
        self.client.close()

    # Parsing --------------------------------------------------------------------------------

    def _summary(self, item: Any) -> WorkflowSummary:
        item = expect(item, dict, "search result")
        word = _str(item.get("status"))
        raw_input = _str(item.get("input"))
        started = _time(item.get("startTime"), "startTime")
        finished = _time(item.get("endTime"), "endTime")
        execution_ms = item.get("executionTime")
        failed_refs = item.get("failedReferenceTaskNames") or ""
        if isinstance(failed_refs, list):  # tolerate a server that sends the set as a list
            failed_refs = ",".join(str(ref) for ref in failed_refs)
        parsed_input = _serialized(raw_input)
        return WorkflowSummary(
            workflow_id=expect(item.get("workflowId"), str, "workflowId"),
            workflow_type=expect(item.get("workflowType"), str, "workflowType"),
            version=_int(item.get("version", 0), "version"),
            status=conductor_workflow_status(word),
            vendor_status=word,
            correlation_id=_str(item.get("correlationId")),
            started_at=started,
            updated_at=_time(item.get("updateTime"), "updateTime"),
            finished_at=finished,
            execution_time=(
                timedelta(milliseconds=_int(execution_ms, "executionTime"))
                if execution_ms
                else None
            ),
            input=parsed_input if parsed_input is not None else {},
            output=_serialized(_str(item.get("output"))) or {},
            raw_input="" if parsed_input is not None else raw_input,
            reason=_str(item.get("reasonForIncompletion")),
            failed_reference_task_names=tuple(
                ref.strip()
                for ref in expect(failed_refs, str, "failedReferenceTaskNames").split(",")
                if ref.strip()
            ),
            failed_task_names=tuple(
                _str(name)
                for name in expect(item.get("failedTaskNames") or [], list, "failedTaskNames")
            ),
            created_by=_str(item.get("createdBy")),
        )

    def _run(self, body: dict[str, Any]) -> RunSnapshot:
        workflow_id = expect(body.get("workflowId"), str, "workflowId")
        name = expect(body.get("workflowName"), str, "workflowName")
        word = _str(body.get("status"))
        started = _time(body.get("startTime"), "startTime")
        finished = _time(body.get("endTime"), "endTime")
        tasks = expect(body.get("tasks") or [], list, "tasks")
        results = sorted(
            (self._result(expect(task, dict, "task"), name) for task in tasks),
            key=lambda result: result.seq,
        )
        parent = _str(body.get("reRunFromWorkflowId")) or _str(body.get("parentWorkflowId"))
        created_by = _str(body.get("createdBy"))
        return RunSnapshot(
            external_id=workflow_id,
            schedule_id=name,
            schedule_title=name,
            status=conductor_workflow_status(word),
            vendor_status=word,
            started_at=started,
            finished_at=finished,
            duration=finished - started if started and finished else None,
            trigger="rerun"
            if body.get("reRunFromWorkflowId")
            else ("manual" if created_by else "scheduled"),
            triggered_by=created_by,
            variables=_mapping(body.get("input"), "workflow input"),
            version=str(body.get("workflowVersion") or ""),
            correlation_id=_str(body.get("correlationId")),
            message=_str(body.get("reasonForIncompletion")),
            parent_external_id=parent,
            results=tuple(results),
        )

    def _result(self, task: dict[str, Any], workflow_name: str) -> ResultSnapshot:
        ref = expect(task.get("referenceTaskName"), str, "referenceTaskName")
        word = _str(task.get("status"))
        started = _time(task.get("startTime"), "task startTime")
        finished = _time(task.get("endTime"), "task endTime")
        worker = _str(task.get("workerId"))
        def_name = _str(task.get("taskDefName"))
        status = conductor_task_status(word)
        return ResultSnapshot(
            external_id=expect(task.get("taskId"), str, "taskId"),
            case_key=ref,
            case_title=ref,
            status=status,
            vendor_status=word,
            # Two definitions may share a reference name: the test case is both.
            case_external_id=f"{workflow_name}/{ref}" if workflow_name else ref,
            suite=def_name if def_name != ref else "",
            agent_id=worker,
            agent_title=worker,
            scheduled_at=_time(task.get("scheduledTime"), "task scheduledTime"),
            started_at=started,
            finished_at=finished,
            duration=finished - started if started and finished else None,
            message=_str(task.get("reasonForIncompletion")),
            log_excerpt=_worker_log(task.get("outputData")) if status.is_failure else "",
            seq=_int(task.get("seq", 0), "seq"),
            retry_count=_int(task.get("retryCount", 0), "retryCount"),
            input=_mapping(task.get("inputData"), "task inputData"),
        )


# Helpers --------------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ProtocolError(f"expected text, got {value!r:.120}")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ProtocolError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ProtocolError(f"{what}: expected a number, got {value!r:.120}")


def _time(value: Any, what: str) -> datetime | None:
    """Epoch milliseconds (0: not yet) or, in search summaries, yyyy-MM-dd'T'HH:mm:ss.SSS'Z'."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ProtocolError(f"{what}: unreadable time {value!r:.80}") from exc
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    ms = _int(value, what)
    if ms <= 0:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ProtocolError(f"{what}: time out of range {value!r}") from exc


def _worker_log(output: Any) -> str:
    """The log a worker left in the task's outputData (conductor.md: a task field whose content
    the worker decides): the last lines of `log` or `logs`, a string or a list of lines."""
    if not isinstance(output, dict):
        return ""
    for key in WORKER_LOG_KEYS:
        value = output.get(key)
        if isinstance(value, str) and value.strip():
            lines = value.strip().splitlines()
        elif isinstance(value, list) and value:
            lines = [str(line) for line in value]
        else:
            continue
        return "\n".join(lines[-LOG_LINES:])
    return ""


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    return dict(expect(value, dict, what))


def _serialized(text: str) -> dict[str, Any] | None:
    """Summaries carry input/output serialized; older servers use Java's Map.toString()."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
