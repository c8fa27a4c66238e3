"""A local Conductor server (conductor-oss semantics; Orkes token auth and rerun answers on demand).

Facts from /work/shared/api/conductor.md. Workflow definitions are sequential pipelines of
SIMPLE tasks, each task a test case that a worker runs in `pace` seconds. Executions move on
the emulator clock, lazily, when a request arrives.

A failing task says why in `reasonForIncompletion` and leaves its worker's log in
`outputData.log` (workers write what they like into outputData): the cause comes from the shared
catalogue (failure_causes.py). Flaky tasks fail on some first attempts; worker-bound ones on
one worker; now and then a service is down for an execution's first pass.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from runs.orchestrators import failure_causes
from runs.orchestrators.emulation import (
    BadJson,
    Clock,
    EmulatorApp,
    HttpError,
    Request,
    Response,
    json_response,
    seeded_uuid,
)

MAX_SEARCH_SIZE = 5000
SUCCESSFUL = frozenset({"COMPLETED", "COMPLETED_WITH_ERRORS", "SKIPPED"})
UNSUCCESSFUL = frozenset({"FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT", "CANCELED"})
ONGOING = frozenset({"RUNNING", "PAUSED"})

WORKERS = ("worker-eu-1", "worker-eu-2", "worker-us-1", "worker-us-2", "worker-ap-1", "worker-ap-2")

# name, description, the test cases it can draw from (setup/login/teardown are shared references)
CATALOG: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "checkout_regression",
        "Checkout regression: cart, payment and order confirmation",
        ("cart", "coupon", "payment_card", "payment_paypal", "shipping", "order", "invoice"),
    ),
    (
        "login_smoke",
        "Login smoke tests on every deploy",
        ("password", "sso", "mfa", "session", "lockout"),
    ),
    (
        "payments_e2e",
        "Payments end to end against the sandbox PSP",
        ("authorize", "capture", "refund", "chargeback", "payout", "ledger"),
    ),
    (
        "search_nightly",
        "Nightly search relevance and filters",
        ("query", "facets", "sorting", "typo", "synonyms", "autocomplete", "pagination"),
    ),
    (
        "api_contract_suite",
        "Public API contract tests",
        ("orders_api", "users_api", "catalog_api", "webhooks", "rate_limits", "auth_api"),
    ),
    (
        "mobile_onboarding",
        "Mobile onboarding flows on device farm",
        ("signup", "consent", "profile", "push_optin", "tutorial"),
    ),
)
CHECKS = (
    "opens",
    "validates_input",
    "happy_path",
    "empty_state",
    "error_message",
    "permissions",
    "persists",
    "audit_log",
)
TIMEOUT_MESSAGE = (
    "Task timed out after 60 seconds. Timeout configured as 60 seconds. "
    "Timeout policy configured to TIME_OUT_WF"
)
FLAKY_RATE = 0.15  # chance a flaky task fails on its first attempt in an execution
TIMEOUT_RATE = 0.06  # executions where one task times out on its first attempt
TERMINATE_RATE = 0.05  # history executions somebody terminated
OUTAGE_RATE = 0.05  # executions whose first pass meets a service that is down
USERS = ("maria.lopez@example.com", "dev.ops@example.com", "qa.lead@example.com")


@dataclass
class TaskPlan:
    """One task of a definition and how it behaves when a worker runs it."""

    name: str
    ref: str
    behaviour: str = "pass"  # pass | flaky | worker | broken
    bad_worker: str = ""
    cause: str = ""  # failure_causes key, for tasks that can fail


@dataclass
class Definition:
    name: str
    version: int
    description: str
    tasks: list[TaskPlan]
    create_ms: int

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "tasks": [
                {
                    "name": task.name,
                    "taskReferenceName": task.ref,
                    "type": "SIMPLE",
                    "inputParameters": {"env": "${workflow.input.env}", "case": task.name},
                    "optional": False,
                    "startDelay": 0,
                }
                for task in self.tasks
            ],
            "inputParameters": ["env", "browser", "build"],
            "outputParameters": {},
            "schemaVersion": 2,
            "restartable": True,
            "workflowStatusListenerEnabled": False,
            "ownerEmail": "qa@example.com",
            "timeoutPolicy": "ALERT_ONLY",
            "timeoutSeconds": 0,
            "variables": {},
            "createTime": self.create_ms,
        }


@dataclass
class Execution:
    """A workflow execution: `wf` is its JSON (without tasks), `tasks` its task JSONs."""

    wf: dict[str, Any]
    tasks: list[dict[str, Any]]
    plan: list[TaskPlan]
    resume_ms: int  # when the next task may be scheduled (start, rerun, restart, resume)
    barrier: int = 0  # tasks with seq <= barrier are kept history (Orkes), not the live attempt
    created: int = 0  # task ids made so far, for deterministic ids
    runs: Counter[str] = field(default_factory=Counter)  # attempts started per reference name
    timeout_ref: str = ""  # the task that times out on its first attempt, if any
    outage: str = ""  # the service that is down until somebody reruns, retries or restarts

    @property
    def id(self) -> str:
        return self.wf["workflowId"]

    def live(self) -> list[dict[str, Any]]:
        return [task for task in self.tasks if task["seq"] > self.barrier]

    def max_seq(self) -> int:
        return max((task["seq"] for task in self.tasks), default=0)


def iso_ms(ms: int | None) -> str | None:
    """Search summaries' time format: yyyy-MM-dd'T'HH:mm:ss.SSS'Z'."""
    if not ms:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _clock_ms(ms: int) -> str:
    """A worker log's time of day: HH:MM:SS.mmm (UTC)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%H:%M:%S.") + f"{ms % 1000:03d}"


def _reopen(wf: dict[str, Any], now_ms: int, **changes: Any) -> None:
    """Back to RUNNING with the failure fields cleared (rerun, retry and restart all do it)."""
    wf.update(
        status="RUNNING",
        reasonForIncompletion=None,
        failedTaskId=None,
        failedReferenceTaskNames=[],
        failedTaskNames=[],
        endTime=0,
        updateTime=now_ms,
        **changes,
    )


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    """Conductor's ObjectMapper leaves null fields out."""
    return {key: value for key, value in body.items() if value is not None}


class ConductorEmulator(EmulatorApp):
    """conductor-oss semantics; `orkes=True` answers reruns as Orkes does (CANCELED attempts kept,
    ongoing workflows rerun). A credential `keyId:keySecret` turns on Orkes token auth."""

    kind = "conductor"
    estate_types: ClassVar[dict[str, Any]] = {
        "built_ms": int,
        "workers": list[str],
        "definitions": list[Definition],
        "executions": dict[str, Execution],
        "_active": set[str],
        "_order": list[str],
        "_started": int,
        "tokens": dict[str, int],
        "_issued": int,
        "_auto_next": dict[str, int],
        "_auto_count": Counter[str],
    }

    def __init__(
        self,
        *,
        seed: int = 1,
        credential: str = "",
        history: int = 20,
        pace: float = 2.0,
        autorun: float = 0.0,
        clock: Clock | None = None,
        orkes: bool = False,
        token_ttl: float = 3600.0,
    ) -> None:
        self.orkes = orkes
        self.token_ttl = token_ttl
        super().__init__(
            seed=seed,
            credential=credential,
            history=history,
            pace=pace,
            autorun=autorun,
            clock=clock,
        )

    # Estate ---------------------------------------------------------------------------------

    def _draw(self, *parts: Any) -> random.Random:
        """A generator for one decision, so outcomes do not depend on request timing."""
        return random.Random("/".join(str(part) for part in (self.seed, *parts)))

    def _uuid(self, *parts: Any) -> str:
        return seeded_uuid(self._draw(*parts))

    @property
    def _poll_ms(self) -> int:
        return int(self.pace * 200)

    @property
    def _work_ms(self) -> int:
        return max(1, int(self.pace * 1000) - self._poll_ms)

    def build(self) -> None:
        rng = self.rng
        now_ms = _ms(self.now())
        self.built_ms = now_ms
        self.workers = sorted(rng.sample(WORKERS, rng.randint(4, 6)))
        self.definitions: list[Definition] = []
        self.executions: dict[str, Execution] = {}
        self._active: set[str] = set()
        self._order: list[str] = []  # workflow ids in creation order
        self._started = 0
        self.tokens: dict[str, int] = {}  # Orkes token -> expiry (epoch ms on the clock)
        self._issued = 0

        catalog = sorted(rng.sample(CATALOG, rng.randint(4, 6)))
        for index, (name, description, areas) in enumerate(catalog):
            count = rng.randint(5, 40) if index else rng.randint(5, 8)
            plan = self._plan(rng, areas, count)
            created = now_ms - int(timedelta(days=40).total_seconds() * 1000)
            self.definitions.append(Definition(name, 1, description, plan, created))
            if index == 0:
                # Version 2 adds a check that is broken since it shipped: a regression.
                check = f"{areas[0]}_schema_v2"
                broken = TaskPlan(check, check, "broken", "", "assertion-value")
                plan2 = [*plan[:-1], broken, plan[-1]]
                since = now_ms - int(timedelta(days=2).total_seconds() * 1000)
                self.definitions.append(Definition(name, 2, description, plan2, since))

        for definition in self.latest_definitions():
            self._build_history(definition.name, now_ms)
        self._auto_next: dict[str, int] = {}
        self._auto_count: Counter[str] = Counter()
        if self.autorun > 0:
            for definition in self.latest_definitions():
                self._auto_next[definition.name] = now_ms + self._auto_gap(definition.name, 0)

    def _plan(self, rng: random.Random, areas: tuple[str, ...], count: int) -> list[TaskPlan]:
        names = [f"{area}_{check}" for area in areas for check in CHECKS]
        middle = sorted(rng.sample(names, count - 3), key=names.index)
        plan = [TaskPlan(name, name) for name in ("setup_env", "login", *middle, "teardown")]
        for task in rng.sample(plan[2:-1], min(2, len(plan) - 3)):
            task.behaviour = "flaky"
            task.cause = failure_causes.pick_cause(rng, failure_causes.TRANSIENT)
        if rng.random() < 0.6:
            candidates = [task for task in plan[2:-1] if task.behaviour == "pass"]
            if candidates:
                task = rng.choice(candidates)
                task.behaviour = "worker"
                task.bad_worker = rng.choice(self.workers)
                task.cause = failure_causes.pick_cause(rng, failure_causes.AGENT)
        return plan

    def _build_history(self, name: str, now_ms: int) -> None:
        rng = self.rng
        day = 24 * 3600 * 1000
        spacing = min(day // 3, (29 * day) // max(1, self.history))
        start = now_ms - self.history * spacing
        for number in range(self.history):
            at = start + number * spacing + rng.randint(0, spacing // 2)
            definition = self.definition(name, self._version_at(name, at))
            duration = (len(definition.tasks) + 2) * int(self.pace * 1000)
            at = min(at, now_ms - duration - 60_000)
            environment = rng.choice(["staging", "qa", "preprod"])
            payload = {
                "env": environment,
                "browser": rng.choice(["chrome", "firefox", "webkit"]),
                "build": f"2.{rng.randint(10, 40)}.{rng.randint(0, 999)}",
            }
            manual = rng.random() < 0.2
            execution = self._create(
                definition,
                at_ms=at,
                workflow_id=self._uuid("history", name, number),
                workflow_input=payload,
                correlation_id=f"{environment}-{name}-{number}",
                created_by=rng.choice(USERS) if manual else "",
            )
            if rng.random() < TERMINATE_RATE:
                stop_at = at + rng.randint(1, len(definition.tasks)) * int(self.pace * 1000)
                self._progress(execution, stop_at)
                if execution.wf["status"] in ONGOING:
                    self._terminate(execution, "Terminated by the release manager", stop_at)
            self._progress(execution, now_ms)
            if execution.wf["status"] not in ONGOING:
                self._active.discard(execution.id)

    def _version_at(self, name: str, at_ms: int) -> int:
        versions = [d.version for d in self.definitions if d.name == name and d.create_ms <= at_ms]
        return max(versions, default=1)

    def _auto_gap(self, name: str, number: int) -> int:
        factor = 0.5 + self._draw("autorun", name, number).random()
        return max(1000, int(self.autorun * factor * 1000))

    def definition(self, name: str, version: int | None = None) -> Definition:
        matches = [d for d in self.definitions if d.name == name]
        if version is not None:
            matches = [d for d in matches if d.version == version]
        if not matches:
            raise self._error(404, f"No such workflow found by name: {name}, version: {version}")
        return max(matches, key=lambda d: d.version)

    def latest_definitions(self) -> list[Definition]:
        names = dict.fromkeys(d.name for d in self.definitions)
        return [self.definition(name) for name in names]

    # Executions -----------------------------------------------------------------------------

    def _create(
        self,
        definition: Definition,
        *,
        at_ms: int,
        workflow_id: str,
        workflow_input: dict[str, Any],
        correlation_id: str | None,
        created_by: str,
        priority: int = 0,
        task_to_domain: dict[str, Any] | None = None,
    ) -> Execution:
        wf: dict[str, Any] = {
            "workflowId": workflow_id,
            "workflowName": definition.name,
            "workflowVersion": definition.version,
            "status": "RUNNING",
            "input": workflow_input,
            "output": {},
            "correlationId": correlation_id,
            "reasonForIncompletion": None,
            "failedReferenceTaskNames": [],
            "failedTaskNames": [],
            "failedTaskId": None,
            "createTime": at_ms,
            "updateTime": at_ms,
            "startTime": at_ms,
            "endTime": 0,
            "lastRetriedTime": 0,
            "parentWorkflowId": None,
            "reRunFromWorkflowId": None,
            "priority": priority,
            "variables": {},
            "taskToDomain": task_to_domain or {},
            "createdBy": created_by or None,
            "ownerApp": "",
        }
        execution = Execution(wf=wf, tasks=[], plan=definition.tasks, resume_ms=at_ms)
        if self._draw("timeout", workflow_id).random() < TIMEOUT_RATE:
            execution.timeout_ref = (
                self._draw("timeout-ref", workflow_id).choice(definition.tasks).ref
            )
        outage = self._draw("outage", workflow_id)
        if outage.random() < OUTAGE_RATE:
            services = sorted({failure_causes.subject_of(t.name).service for t in definition.tasks})
            execution.outage = outage.choice(services)
        self.executions[workflow_id] = execution
        self._order.append(workflow_id)
        self._active.add(workflow_id)
        return execution

    def _task_id(self, execution: Execution) -> str:
        execution.created += 1
        return self._uuid(execution.id, "task", execution.created)

    def _schedule(self, execution: Execution, plan: TaskPlan, at_ms: int) -> dict[str, Any]:
        wf = execution.wf
        task: dict[str, Any] = {
            "taskId": self._task_id(execution),
            "taskType": "SIMPLE",
            "taskDefName": plan.name,
            "referenceTaskName": plan.ref,
            "status": "SCHEDULED",
            "inputData": {"env": wf["input"].get("env"), "case": plan.name},
            "outputData": {},
            "seq": execution.max_seq() + 1,
            "retryCount": 0,
            "retried": False,
            "retriedTaskId": None,
            "executed": False,
            "pollCount": 0,
            "scheduledTime": at_ms,
            "startTime": 0,
            "endTime": 0,
            "updateTime": at_ms,
            "reasonForIncompletion": None,
            "workerId": None,
            "domain": None,
            "iteration": 0,
            "subWorkflowId": None,
            "correlationId": wf.get("correlationId"),
            "workflowInstanceId": wf["workflowId"],
            "workflowType": wf["workflowName"],
            "workflowPriority": wf.get("priority", 0),
            "startDelayInSeconds": 0,
            "callbackAfterSeconds": 0,
            "responseTimeoutSeconds": 600,
        }
        execution.tasks.append(task)
        wf["updateTime"] = at_ms
        return task

    def _plan_for(self, execution: Execution, ref: str) -> TaskPlan | None:
        return next((plan for plan in execution.plan if plan.ref == ref), None)

    def _start_task(self, execution: Execution, task: dict[str, Any], at_ms: int) -> None:
        ref = task["referenceTaskName"]
        execution.runs[ref] += 1
        attempt = execution.runs[ref]
        task.update(
            status="IN_PROGRESS",
            startTime=at_ms,
            updateTime=at_ms,
            pollCount=task["pollCount"] + 1,
            workerId=self._draw("worker", execution.id, ref, attempt).choice(self.workers),
        )

    def _outcome(self, execution: Execution, task: dict[str, Any]) -> tuple[str, str]:
        """(status, cause) of the attempt a worker just finished; TIMEOUT: Conductor's own."""
        ref = task["referenceTaskName"]
        attempt = execution.runs[ref]
        plan = self._plan_for(execution, ref)
        if ref == execution.timeout_ref and attempt == 1:
            return "TIMED_OUT", "TIMEOUT"
        if plan is None:
            return "COMPLETED", ""
        if plan.behaviour == "broken":
            return "FAILED", plan.cause
        if plan.behaviour == "worker":
            failed = task["workerId"] == plan.bad_worker
            return ("FAILED", plan.cause) if failed else ("COMPLETED", "")
        if execution.outage and failure_causes.subject_of(plan.name).service == execution.outage:
            return "FAILED", "env-outage"
        # flaky: only ever the first attempt in an execution, and not every time
        flaky = plan.behaviour == "flaky" and attempt == 1
        if flaky and self._draw("flaky", execution.id, ref).random() < FLAKY_RATE:
            return "FAILED", plan.cause
        return "COMPLETED", ""

    def failure(self, task: dict[str, Any], cause: str) -> failure_causes.Failure:
        """This occurrence of a task's failure cause: its details drawn from the task id."""
        return failure_causes.failure(
            cause or "assertion-value",
            task["taskDefName"],
            self._draw("failure", task["taskId"]),
            env=str(task["inputData"].get("env") or "staging"),
            agent=task.get("workerId") or "",
        )

    def _finish_task(self, execution: Execution, task: dict[str, Any], at_ms: int) -> None:
        status, cause = self._outcome(execution, task)
        task.update(status=status, endTime=at_ms, updateTime=at_ms, executed=True)
        execution.wf["updateTime"] = at_ms
        if status == "COMPLETED":
            task["outputData"] = {"passed": True, "assertions": 3 + len(task["taskDefName"]) % 7}
            return
        if status == "TIMED_OUT":  # the server gave up on the worker: no output, no log
            task["reasonForIncompletion"] = TIMEOUT_MESSAGE
            return
        found = self.failure(task, cause)
        span = max(1, at_ms - task["startTime"])
        log = [
            f"{_clock_ms(task['startTime'] + span * (n + 1) // len(found.log))} "
            f"{line.level.upper():<7} {line.text}"
            for n, line in enumerate(found.log)
        ]
        task["reasonForIncompletion"] = found.message
        # Workers write their own output; these log lines are what Runboard shows as excerpt.
        task["outputData"] = {"passed": False, "error": found.message, "log": log}

    def _progress(self, execution: Execution, now_ms: int) -> None:
        """Move one execution along to `now_ms`; every step happens at its own time."""
        wf = execution.wf
        while wf["status"] in ONGOING:
            live = execution.live()
            last = max(live, key=lambda task: task["seq"]) if live else None
            if last is None or last["status"] in SUCCESSFUL:
                if wf["status"] == "PAUSED":
                    return
                refs = [plan.ref for plan in execution.plan]
                if last is None:
                    index, at = 0, execution.resume_ms
                else:
                    ref = last["referenceTaskName"]
                    index = refs.index(ref) + 1 if ref in refs else len(refs)
                    at = max(last["endTime"], execution.resume_ms)
                if at > now_ms:
                    return
                if index >= len(refs):
                    self._complete(execution, at)
                    return
                self._schedule(execution, execution.plan[index], at)
            elif last["status"] == "SCHEDULED":
                at = last["scheduledTime"] + self._poll_ms
                if at > now_ms:
                    return
                self._start_task(execution, last, at)
            elif last["status"] == "IN_PROGRESS":
                at = last["startTime"] + self._work_ms
                if at > now_ms:
                    return
                self._finish_task(execution, last, at)
            else:
                self._fail(execution, last)
                return

    def _complete(self, execution: Execution, at_ms: int) -> None:
        wf = execution.wf
        passed = sum(1 for task in execution.live() if task["status"] in SUCCESSFUL)
        wf.update(
            status="COMPLETED",
            endTime=at_ms,
            updateTime=at_ms,
            output={"result": "passed", "casesRun": passed},
        )

    def _fail(self, execution: Execution, task: dict[str, Any]) -> None:
        wf = execution.wf
        at = task["endTime"] or task["updateTime"]
        status = "TIMED_OUT" if task["status"] == "TIMED_OUT" else "FAILED"
        wf.update(
            status=status,
            endTime=at,
            updateTime=at,
            reasonForIncompletion=(
                f"Task {task['taskId']} failed with status: {task['status']} and reason: "
                f"'{task['reasonForIncompletion'] or ''}'"
            ),
            failedReferenceTaskNames=[task["referenceTaskName"]],
            failedTaskNames=[task["taskDefName"]],
            failedTaskId=task["taskId"],
            output={"result": "failed", "failedCase": task["referenceTaskName"]},
        )

    def _terminate(self, execution: Execution, reason: str, at_ms: int) -> None:
        for task in execution.tasks:
            if task["status"] in ("SCHEDULED", "IN_PROGRESS"):
                task.update(status="CANCELED", endTime=at_ms, updateTime=at_ms)
        execution.wf.update(
            status="TERMINATED", endTime=at_ms, updateTime=at_ms, reasonForIncompletion=reason
        )

    def advance(self, now: datetime) -> None:
        now_ms = _ms(now)
        if self.autorun > 0:
            self._autorun(now_ms)
        for workflow_id in sorted(self._active):
            execution = self.executions[workflow_id]
            self._progress(execution, now_ms)
            if execution.wf["status"] not in ONGOING:
                self._active.discard(workflow_id)

    def _autorun(self, now_ms: int) -> None:
        for name, due in list(self._auto_next.items()):
            started = 0
            while due <= now_ms:
                number = self._auto_count[name]
                if started < 20:  # after a long clock jump, start a few, not thousands
                    definition = self.definition(name)
                    self._create(
                        definition,
                        at_ms=due,
                        workflow_id=self._uuid("autorun", name, number),
                        workflow_input={"env": "staging", "browser": "chrome", "build": "nightly"},
                        correlation_id=f"scheduled-{name}-{number}",
                        created_by="",
                    )
                    self.mark_changed()
                    started += 1
                self._auto_count[name] += 1
                due += self._auto_gap(name, number + 1)
            self._auto_next[name] = due

    def resumed(self, now: datetime) -> None:
        # The cluster was off while no emulator ran: nothing was started on schedule meanwhile.
        # Executions in flight carry on from where they were and finish as the clock says.
        if self.autorun <= 0:
            return
        now_ms = _ms(now)
        for definition in self.latest_definitions():
            name = definition.name
            if self._auto_next.get(name, 0) <= now_ms:
                self._auto_next[name] = now_ms + self._auto_gap(name, self._auto_count[name])

    def describe(self) -> str:
        return f"{len(self.executions)} executions, {len(self._active)} running"

    # Auth and errors ------------------------------------------------------------------------

    @property
    def _key(self) -> tuple[str, str] | None:
        key_id, sep, secret = self.credential.partition(":")
        return (key_id, secret) if sep else None

    def authorize(self, request: Request) -> None:
        if not self.credential or request.path == "/api/token":
            return
        token = request.header("X-Authorization") or ""
        if self._key is None:
            # A bare credential is a pre-issued token.
            if token != self.credential:
                raise self._error(401, "Invalid token")
            return
        expires = self.tokens.get(token)
        if expires is None:
            raise self._error(401, "Invalid token")
        if expires <= _ms(self.now()):
            raise self._error(401, "Token expired")

    def error(
        self, status: int, message: str, validation_errors: list[dict[str, Any]] | None = None
    ) -> Response:
        # conductor-oss ErrorResponse
        return json_response(
            {
                "status": status,
                "code": {
                    400: "INVALID_INPUT",
                    401: "UNAUTHORIZED",
                    403: "FORBIDDEN",
                    404: "NOT_FOUND",
                    409: "CONFLICT",
                }.get(status, "INTERNAL_ERROR"),
                "message": message,
                "instance": "conductor-emulator",
                "retryable": status >= 500,
                "validationErrors": validation_errors or [],
            },
            status,
        )

    def _error(
        self, status: int, message: str, validation_errors: list[dict[str, Any]] | None = None
    ) -> HttpError:
        return HttpError(self.error(status, message, validation_errors))

    def malformed_body(self) -> bytes:
        return b'{"workflowId": "truncated'

    def _record(self, request: Request) -> None:
        # The token exchange carries the key secret in its body: never keep it in the log.
        with self.lock:
            super()._record(request)
            entry = self.log[-1]
            if isinstance(entry.get("body"), dict) and "keySecret" in entry["body"]:
                entry["body"] = {**entry["body"], "keySecret": "***"}

    def _body(self, request: Request, *, required: bool = True) -> Any:
        if not request.body:
            if required:
                raise self._error(400, "Required request body is missing")
            return None
        try:
            return request.json()
        except BadJson as exc:
            raise self._error(400, f"JSON parse error: {exc}") from exc

    def _execution(self, workflow_id: str) -> Execution:
        execution = self.executions.get(workflow_id)
        if execution is None:
            raise self._error(404, f"No such workflow found by id: {workflow_id}")
        return execution

    # Routes ---------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, Any]]:
        wid = r"(?P<workflow_id>[^/]+)"
        return [
            ("POST", r"/api/token", self.token),
            ("GET", r"/api/metadata/workflow", self.list_definitions),
            ("GET", r"/api/metadata/workflow/(?P<name>[^/]+)", self.get_definition),
            ("GET", r"/api/workflow/search", self.search),
            ("POST", r"/api/workflow", self.start),
            # One pattern for both: the route table dispatches by pattern, then by method.
            ("POST", rf"/api/workflow/{wid}", self.start_by_name),
            ("GET", rf"/api/workflow/{wid}", self.get_workflow),
            ("DELETE", rf"/api/workflow/{wid}", self.terminate),
            ("GET", rf"/api/workflow/{wid}/tasks", self.tasks),
            ("POST", rf"/api/workflow/{wid}/rerun", self.rerun),
            ("POST", rf"/api/workflow/{wid}/retry", self.retry),
            ("POST", rf"/api/workflow/{wid}/restart", self.restart),
            ("PUT", rf"/api/workflow/{wid}/pause", self.pause),
            ("PUT", rf"/api/workflow/{wid}/resume", self.resume),
        ]

    # Orkes: POST /api/token
    def token(self, request: Request) -> Response:
        body = self._body(request)
        key = self._key
        if not isinstance(body, dict) or key is None:
            raise self._error(401, "Invalid credentials")
        if (body.get("keyId"), body.get("keySecret")) != key:
            raise self._error(401, "Invalid credentials")
        self._issued += 1
        token = "orkes." + self._uuid("token", self._issued).replace("-", "")
        self.tokens[token] = _ms(self.now()) + int(self.token_ttl * 1000)
        return json_response({"token": token})

    # GET /api/metadata/workflow
    def list_definitions(self, request: Request) -> Response:
        return json_response([definition.as_json() for definition in self.definitions])

    # GET /api/metadata/workflow/{name}?version=
    def get_definition(self, request: Request, name: str) -> Response:
        version = (
            self._int(request.query.get("version"), "version")
            if request.query.get("version")
            else None
        )
        return json_response(self.definition(name, version).as_json())

    def _int(self, value: str | None, name: str, default: int = 0) -> int:
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError as exc:
            raise self._error(400, f"Invalid value for {name}: {value}") from exc

    # GET /api/workflow/{id}?includeTasks=true
    def get_workflow(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        include = request.query.get("includeTasks", "true").lower() != "false"
        return json_response(self.workflow_json(execution, include_tasks=include))

    def workflow_json(self, execution: Execution, *, include_tasks: bool = True) -> dict[str, Any]:
        tasks = sorted(execution.tasks, key=lambda task: task["seq"]) if include_tasks else []
        return _clean({**execution.wf, "tasks": [_clean(dict(task)) for task in tasks]})

    # GET /api/workflow/{id}/tasks?start=0&count=15&status=
    def tasks(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        start = self._int(request.query.get("start"), "start", 0)
        count = self._int(request.query.get("count"), "count", 15)
        statuses = {value for key, value in request.query_pairs if key == "status" and value}
        tasks = sorted(execution.tasks, key=lambda task: task["seq"])
        if statuses:
            tasks = [task for task in tasks if task["status"] in statuses]
        page = tasks[start : start + count]
        return json_response({"totalHits": len(tasks), "results": [_clean(dict(t)) for t in page]})

    # POST /api/workflow
    def start(self, request: Request) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise self._error(400, "Invalid request body: expected a StartWorkflowRequest")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise self._error(
                400,
                "Validation failed, check below errors for detail.",
                [
                    {
                        "path": "startWorkflow.request.name",
                        "message": "Workflow name cannot be null or empty",
                    }
                ],
            )
        return self._start_request(
            name,
            version=body.get("version"),
            workflow_input=body.get("input"),
            correlation_id=body.get("correlationId"),
            priority=body.get("priority"),
            task_to_domain=body.get("taskToDomain"),
            created_by=body.get("createdBy"),
        )

    # POST /api/workflow/{name}?version=&correlationId=&priority= (body: the input)
    def start_by_name(self, request: Request, workflow_id: str) -> Response:
        name = workflow_id  # the path segment names a definition here
        body = self._body(request, required=False)
        query = request.query
        version = self._int(query.get("version"), "version") if query.get("version") else None
        return self._start_request(
            name,
            version=version,
            workflow_input=body,
            correlation_id=query.get("correlationId") or None,
            priority=self._int(query.get("priority"), "priority", 0),
            task_to_domain=None,
            created_by=None,
        )

    def _start_request(
        self,
        name: str,
        *,
        version: Any,
        workflow_input: Any,
        correlation_id: Any,
        priority: Any,
        task_to_domain: Any,
        created_by: Any,
    ) -> Response:
        if version is not None and not isinstance(version, int):
            raise self._error(400, f"Invalid version: {version!r}")
        if workflow_input is not None and not isinstance(workflow_input, dict):
            raise self._error(400, "input must be a JSON object")
        if correlation_id is not None and not isinstance(correlation_id, str):
            raise self._error(400, "correlationId must be a string")
        if priority is not None and (not isinstance(priority, int) or not 0 <= priority <= 99):
            raise self._error(400, "priority: Priority must be between 0 and 99")
        definition = self.definition(name, version)
        self._started += 1
        if not created_by and self._key is not None:
            created_by = self._key[0]
        execution = self._create(
            definition,
            at_ms=_ms(self.now()),
            workflow_id=self._uuid("start", self._started),
            workflow_input=dict(workflow_input or {}),
            correlation_id=correlation_id,
            created_by=created_by if isinstance(created_by, str) else "",
            priority=priority or 0,
            task_to_domain=task_to_domain if isinstance(task_to_domain, dict) else None,
        )
        return Response(200, execution.id, {"Content-Type": "text/plain"})

    # GET /api/workflow/search?start&size&sort&freeText&query
    def search(self, request: Request) -> Response:
        query = request.query
        start = self._int(query.get("start"), "start", 0)
        size = self._int(query.get("size"), "size", 100)
        if size > MAX_SEARCH_SIZE:
            raise self._error(
                400, f"Cannot return more than {MAX_SEARCH_SIZE} workflows. Please use pagination."
            )
        if start < 0 or size < 0:
            raise self._error(400, "start and size must not be negative")
        matcher = self._parse_query(query.get("query", ""))
        free_text = query.get("freeText", "*").strip()
        found = [
            self.executions[workflow_id]
            for workflow_id in self._order
            if matcher(self.executions[workflow_id].wf)
        ]
        if free_text and free_text != "*":
            found = [e for e in found if free_text.lower() in json.dumps(e.wf).lower()]
        for key, descending in reversed(self._parse_sort(query.get("sort", ""))):
            found.sort(key=lambda e, key=key: _sort_key(e.wf.get(key)), reverse=descending)
        page = found[start : start + size]
        return json_response({"totalHits": len(found), "results": [self.summary(e) for e in page]})

    def summary(self, execution: Execution) -> dict[str, Any]:
        wf = execution.wf
        end = wf["endTime"]
        return _clean(
            {
                "workflowType": wf["workflowName"],
                "version": wf["workflowVersion"],
                "workflowId": wf["workflowId"],
                "correlationId": wf.get("correlationId"),
                "startTime": iso_ms(wf["startTime"]),
                "updateTime": iso_ms(wf["updateTime"]),
                "endTime": iso_ms(end),
                "status": wf["status"],
                "input": json.dumps(wf["input"]),
                "output": json.dumps(wf["output"]),
                "reasonForIncompletion": wf.get("reasonForIncompletion"),
                "executionTime": end - wf["startTime"] if end else 0,
                "event": "",
                "failedReferenceTaskNames": ",".join(wf["failedReferenceTaskNames"]),
                "failedTaskNames": list(wf["failedTaskNames"]),
                "priority": wf.get("priority", 0),
                "createdBy": wf.get("createdBy"),
            }
        )

    _CLAUSE = re.compile(
        r"^\s*(?P<field>[A-Za-z]+)\s*(?P<op>=|!=|>=|<=|>|<|\s+IN\s+)\s*(?P<value>.+?)\s*$",
        re.IGNORECASE,
    )
    _FIELDS = {
        "workflowType": "workflowName",
        "workflowId": "workflowId",
        "status": "status",
        "correlationId": "correlationId",
        "version": "workflowVersion",
        "startTime": "startTime",
        "endTime": "endTime",
        "updateTime": "updateTime",
        "createdBy": "createdBy",
    }

    def _parse_query(self, text: str) -> Any:
        """`a = 'x' AND b > 1 OR c IN ('y','z')`: AND binds tighter than OR, no parentheses."""
        if not text.strip():
            return lambda wf: True
        alternatives = []
        for part in re.split(r"\s+OR\s+", text.strip(), flags=re.IGNORECASE):
            clauses = [self._clause(c) for c in re.split(r"\s+AND\s+", part, flags=re.IGNORECASE)]
            alternatives.append(clauses)
        return lambda wf: any(all(c(wf) for c in clauses) for clauses in alternatives)

    def _clause(self, text: str) -> Any:
        match = self._CLAUSE.match(text)
        if not match or match["field"] not in self._FIELDS:
            raise self._error(400, f"Invalid query: cannot parse '{text.strip()}'")
        key = self._FIELDS[match["field"]]
        op = match["op"].strip().upper()
        if op == "IN":
            inner = match["value"].strip()
            if not (inner.startswith("(") and inner.endswith(")")):
                raise self._error(400, f"Invalid query: cannot parse '{text.strip()}'")
            values = {self._literal(v, text) for v in inner[1:-1].split(",")}
            return lambda wf: wf.get(key) in values
        value = self._literal(match["value"], text)

        def test(wf: dict[str, Any]) -> bool:
            actual = wf.get(key)
            if op == "=":
                return actual == value
            if op == "!=":
                return actual != value
            if actual is None or type(actual) is not type(value):
                return False
            return {
                ">": actual > value,
                "<": actual < value,
                ">=": actual >= value,
                "<=": actual <= value,
            }[op]

        return test

    def _literal(self, raw: str, clause: str) -> Any:
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            return raw[1:-1]
        try:
            return int(raw)
        except ValueError as exc:
            raise self._error(400, f"Invalid query: cannot parse '{clause.strip()}'") from exc

    def _parse_sort(self, text: str) -> list[tuple[str, bool]]:
        keys = []
        for item in filter(None, (part.strip() for part in text.split(";"))):
            name, _, direction = item.partition(":")
            key = self._FIELDS.get(name.strip(), name.strip())
            if direction.strip().upper() not in ("", "ASC", "DESC"):
                raise self._error(400, f"Invalid sort order: {item}")
            keys.append((key, direction.strip().upper() == "DESC"))
        return keys

    # POST /api/workflow/{id}/rerun
    def rerun(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        body = self._body(request)
        if not isinstance(body, dict):
            raise self._error(400, "Invalid request body: expected a RerunWorkflowRequest")
        workflow_input = body.get("workflowInput")
        task_input = body.get("taskInput")
        correlation_id = body.get("correlationId")
        task_id = body.get("reRunFromTaskId")
        for name, value, kind in (
            ("workflowInput", workflow_input, dict),
            ("taskInput", task_input, dict),
            ("correlationId", correlation_id, str),
            ("reRunFromTaskId", task_id, str),
        ):
            if value is not None and not isinstance(value, kind):
                raise self._error(400, f"Invalid value for {name}")
        wf = execution.wf
        if wf["status"] in ONGOING and not self.orkes:
            raise self._error(
                409, f"Workflow: {workflow_id} is not in terminal state, unable to rerun."
            )
        now_ms = _ms(self.now())
        target = None
        if task_id:
            target = next((t for t in execution.tasks if t["taskId"] == task_id), None)
            if target is None:
                raise self._error(400, f"Task {task_id} not found")
        if wf["status"] in ONGOING:  # Orkes reruns ongoing workflows: stop what runs first
            for task in execution.live():
                if task["status"] in ("SCHEDULED", "IN_PROGRESS"):
                    task.update(status="CANCELED", endTime=now_ms, updateTime=now_ms)
        _reopen(wf, now_ms)
        execution.outage = ""  # whoever reruns it, the outage is over by then
        self._active.add(workflow_id)
        if target is None:
            if self.orkes:
                for task in execution.tasks:
                    if task["status"] != "CANCELED":
                        task.update(status="CANCELED", updateTime=now_ms)
                execution.barrier = execution.max_seq()
            else:
                execution.tasks.clear()
                execution.barrier = 0
            if correlation_id is not None:
                wf["correlationId"] = correlation_id
            if workflow_input is not None:
                wf["input"] = workflow_input
            execution.resume_ms = now_ms
        elif self.orkes:
            # Orkes keeps the earlier attempts, CANCELED, and runs the task again as a new task.
            for task in execution.tasks:
                if task["seq"] >= target["seq"] and task["status"] != "CANCELED":
                    task.update(status="CANCELED", updateTime=now_ms)
            execution.barrier = execution.max_seq()
            fresh = self._schedule(
                execution,
                self._plan_for(execution, target["referenceTaskName"])
                or TaskPlan(target["taskDefName"], target["referenceTaskName"]),
                now_ms,
            )
            fresh.update(
                inputData=task_input if task_input is not None else dict(target["inputData"]),
                retryCount=target["retryCount"],
            )
            execution.resume_ms = now_ms
        else:
            execution.tasks[:] = [t for t in execution.tasks if t["seq"] <= target["seq"]]
            target.update(
                status="SCHEDULED",
                scheduledTime=now_ms,
                startTime=0,
                endTime=0,
                updateTime=now_ms,
                outputData={},
                retried=False,
                executed=False,
                reasonForIncompletion=None,
            )
            if task_input is not None:
                target["inputData"] = task_input
            execution.resume_ms = now_ms
        return Response(200, workflow_id, {"Content-Type": "text/plain"})

    # POST /api/workflow/{id}/retry?resumeSubworkflowTasks=false
    def retry(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        wf = execution.wf
        if wf["status"] in ONGOING:
            raise self._error(404, f"Workflow is still running.  status={wf['status']}")
        live = execution.live()
        if not live:
            raise self._error(409, "Workflow has not started yet")
        retriable: dict[str, dict[str, Any]] = {}
        for task in sorted(live, key=lambda t: t["seq"]):
            if task["status"] in UNSUCCESSFUL:
                retriable[task["referenceTaskName"]] = task
            else:
                retriable.pop(task["referenceTaskName"], None)
        if not retriable:
            raise self._error(
                409,
                "There are no retryable tasks! Use restart if you want to attempt entire "
                "workflow execution again.",
            )
        now_ms = _ms(self.now())
        _reopen(wf, now_ms, lastRetriedTime=now_ms)
        execution.outage = ""
        for old in sorted(retriable.values(), key=lambda t: t["seq"]):
            old["retried"] = True
            copy = dict(old)
            copy.update(
                taskId=self._task_id(execution),
                status="SCHEDULED",
                retryCount=old["retryCount"] + 1,
                retriedTaskId=old["taskId"],
                retried=False,
                executed=False,
                pollCount=0,
                seq=execution.max_seq() + 1,
                inputData=dict(old["inputData"]),
                outputData={},
                reasonForIncompletion=None,
                workerId=None,
                scheduledTime=now_ms,
                startTime=0,
                endTime=0,
                updateTime=now_ms,
            )
            execution.tasks.append(copy)
        execution.resume_ms = now_ms
        self._active.add(workflow_id)
        return Response(204)

    # POST /api/workflow/{id}/restart?useLatestDefinitions=false
    def restart(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        wf = execution.wf
        if wf["status"] in ONGOING:
            raise self._error(
                409, f"Workflow {workflow_id} is not in terminal state, status={wf['status']}"
            )
        if request.query.get("useLatestDefinitions", "false").lower() == "true":
            latest = self.definition(wf["workflowName"])
            execution.plan = latest.tasks
            wf["workflowVersion"] = latest.version
        now_ms = _ms(self.now())
        execution.tasks.clear()
        execution.barrier = 0
        _reopen(wf, now_ms, createTime=now_ms, lastRetriedTime=0, output={})
        execution.outage = ""
        execution.resume_ms = now_ms
        self._active.add(workflow_id)
        return Response(204)

    # DELETE /api/workflow/{id}?reason=
    def terminate(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        if execution.wf["status"] == "COMPLETED":
            raise self._error(409, "Cannot terminate a COMPLETED workflow.")
        self._terminate(execution, request.query.get("reason", ""), _ms(self.now()))
        self._active.discard(workflow_id)
        return Response(200)

    # PUT /api/workflow/{id}/pause
    def pause(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        status = execution.wf["status"]
        if status != "RUNNING" and status != "PAUSED":
            raise self._error(409, f"Workflow: {workflow_id} has ended, status cannot be updated.")
        execution.wf.update(status="PAUSED", updateTime=_ms(self.now()))
        return Response(200)

    # PUT /api/workflow/{id}/resume
    def resume(self, request: Request, workflow_id: str) -> Response:
        execution = self._execution(workflow_id)
        if execution.wf["status"] != "PAUSED":
            raise self._error(409, f"The workflow {workflow_id} is not PAUSED so cannot resume.")
        now_ms = _ms(self.now())
        execution.wf.update(status="RUNNING", updateTime=now_ms)
        execution.resume_ms = max(execution.resume_ms, now_ms)
        return Response(200)

    # State for tests and the demo ------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        workflows = []
        counts: Counter[str] = Counter()
        for workflow_id in self._order:
            execution = self.executions[workflow_id]
            wf = execution.wf
            counts[wf["status"]] += 1
            tasks = sorted(execution.tasks, key=lambda t: t["seq"])
            workflows.append(
                {
                    "workflowId": workflow_id,
                    "workflowName": wf["workflowName"],
                    "workflowVersion": wf["workflowVersion"],
                    "status": wf["status"],
                    "startTime": wf["startTime"],
                    "taskIds": [t["taskId"] for t in tasks],
                    "tasks": [
                        {
                            "taskId": t["taskId"],
                            "referenceTaskName": t["referenceTaskName"],
                            "status": t["status"],
                            "seq": t["seq"],
                            "workerId": t.get("workerId"),
                        }
                        for t in tasks
                    ],
                }
            )
        return {
            "orkes": self.orkes,
            "tokenAuth": self._key is not None,
            "definitions": [
                {
                    "name": d.name,
                    "version": d.version,
                    "tasks": [
                        {
                            "name": t.name,
                            "taskReferenceName": t.ref,
                            "behaviour": t.behaviour,
                            "badWorker": t.bad_worker,
                        }
                        for t in d.tasks
                    ],
                }
                for d in self.definitions
            ],
            "workers": list(self.workers),
            "workflows": workflows,
            "counts": {
                "definitions": len(self.latest_definitions()),
                "workflows": len(workflows),
                "tasks": sum(len(w["tasks"]) for w in workflows),
                "byStatus": dict(sorted(counts.items())),
            },
        }

    def banner(self) -> list[str]:
        lines = ["workflow definitions:"]
        for definition in self.latest_definitions():
            lines.append(
                f"  {definition.name} (version {definition.version}, {len(definition.tasks)} tasks)"
            )
        if self._key is not None:
            lines.append("Orkes token auth: POST /api/token with keyId and keySecret")
        return lines


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))
