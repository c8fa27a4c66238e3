"""The Conductor HTTP API: routes, Orkes token auth, conductor-oss error bodies, request
parsing, and the definition, workflow and start endpoints.
"""

from __future__ import annotations

from typing import Any

from runs.orchestrators.conductor.emulator.model import (
    Execution,
    to_ms,
    without_nulls,
)
from runs.orchestrators.emulation import (
    BadJson,
    EmulatorApp,
    HttpError,
    Request,
    Response,
    json_response,
)


class ConductorApi(EmulatorApp):
    """Routes requests to handlers; part of ConductorEmulator."""

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
        if expires <= to_ms(self.now()):
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
        self.tokens[token] = to_ms(self.now()) + int(self.token_ttl * 1000)
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
        return without_nulls(
            {**execution.wf, "tasks": [without_nulls(dict(task)) for task in tasks]}
        )

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
        return json_response(
            {"totalHits": len(tasks), "results": [without_nulls(dict(t)) for t in page]}
        )

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
            at_ms=to_ms(self.now()),
            workflow_id=self._uuid("start", self._started),
            workflow_input=dict(workflow_input or {}),
            correlation_id=correlation_id,
            created_by=created_by if isinstance(created_by, str) else "",
            priority=priority or 0,
            task_to_domain=task_to_domain if isinstance(task_to_domain, dict) else None,
        )
        return Response(200, execution.id, {"Content-Type": "text/plain"})
