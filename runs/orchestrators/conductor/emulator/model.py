"""What a Conductor estate is made of: statuses, the catalogue it is seeded from, task
plans, workflow definitions, executions, and Conductor's time formats.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def clock_ms(ms: int) -> str:
    """A worker log's time of day: HH:MM:SS.mmm (UTC)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%H:%M:%S.") + f"{ms % 1000:03d}"


def reopen(wf: dict[str, Any], now_ms: int, **changes: Any) -> None:
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


def without_nulls(body: dict[str, Any]) -> dict[str, Any]:
    """Conductor's ObjectMapper leaves null fields out."""
    return {key: value for key, value in body.items() if value is not None}
