"""What a Testsigma estate is made of: machines, test cases, test plans, plan runs with
their case and iteration runs, the words Testsigma answers with, and the catalogue the
estate is seeded from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runs.orchestrators import failure_causes

PREFIX = "/api/v1"

# testsigma.md: the reRunType and iterationReRunType enums (every value documented).
RE_RUN_TYPES = (
    "ALL_TESTS",
    "ONLY_FAILED_TESTS",
    "ALL_ITERATIONS",
    "ONLY_FAILED_ITERATIONS",
    "USER_PICKED",
    "ONLY_FAILED_ITERATIONS_IN_FAILED_TESTS",
)
ITERATION_RE_RUN_TYPES = ("ALL", "FAILED", "PASSED", "USER_PICKED")

QUEUED = "QUEUED"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
ABORTED = "ABORTED"
STOPPED = "STOPPED"
NOT_EXECUTED = "NOT_EXECUTED"
FAILED_WORDS = frozenset({FAILURE, ABORTED})
PROSE = {SUCCESS: "PASSED", FAILURE: "FAILED"}

CREATED = "STATUS_CREATED"
STATUS_QUEUED = "STATUS_QUEUED"
PRE_FLIGHT = "STATUS_PRE_FLIGHT"
IN_PROGRESS = "STATUS_IN_PROGRESS"
COMPLETED = "STATUS_COMPLETED"

# The estate's vocabulary ------------------------------------------------------------------

PLAN_NAMES = (
    ("Checkout regression", "Cart, checkout and payment flows before each release."),
    ("Smoke: login and search", "Fast checks run after every deploy."),
    ("Nightly cross-browser", "The full web suite on every supported browser."),
    ("Account settings", "Profile, notifications and privacy settings."),
    ("Orders and returns", "Order history, tracking, returns and refunds."),
)

SUITES = {
    "Login": (
        "Log in with valid credentials",
        "Reject a wrong password",
        "Lock the account after five failures",
        "Reset the password by email",
        "Log out from the header menu",
        "Remember me keeps the session",
        "Log in with single sign-on",
        "Show a captcha after repeated failures",
    ),
    "Search": (
        "Search by product name",
        "Filter results by price",
        "Sort results by rating",
        "Suggest terms while typing",
        "Show a message when nothing matches",
        "Keep filters after paging",
        "Search within a category",
        "Open a result in a new tab",
    ),
    "Cart": (
        "Add an item to the cart",
        "Change the quantity of an item",
        "Remove an item from the cart",
        "Apply a discount code",
        "Reject an expired discount code",
        "Keep the cart after logging in",
        "Show the cart total with tax",
        "Save an item for later",
    ),
    "Checkout": (
        "Check out as a guest",
        "Check out with a saved address",
        "Choose express delivery",
        "Pay with a stored card",
        "Decline a card with insufficient funds",
        "Show the order confirmation",
        "Send the confirmation email",
        "Check out with a gift card",
    ),
    "Profile": (
        "Change the display name",
        "Upload an avatar",
        "Change the email address",
        "Change the password",
        "Add a delivery address",
        "Delete a delivery address",
        "Download personal data",
        "Close the account",
    ),
    "Notifications": (
        "Turn off marketing emails",
        "Turn on order updates by SMS",
        "Show unread notifications",
        "Mark all notifications read",
        "Mute notifications for a week",
        "Subscribe to price alerts",
        "Unsubscribe from a link in an email",
        "Show notification preferences",
    ),
    "Orders": (
        "List past orders",
        "Open an order's details",
        "Track a shipment",
        "Cancel an unshipped order",
        "Reorder a past order",
        "Download an invoice",
        "Filter orders by year",
        "Show an order's payment method",
    ),
    "Returns": (
        "Start a return",
        "Print a return label",
        "Choose a refund method",
        "Refuse a return after 30 days",
        "Track a return",
        "Exchange for another size",
        "Show the refund status",
        "Cancel a return",
    ),
}

DATA_SETS = (
    ("visa", "mastercard", "amex", "discover", "maestro"),
    ("en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"),
    ("admin", "editor", "viewer", "guest", "auditor"),
    ("small cart", "large cart", "mixed currency", "coupon", "gift card"),
)

MACHINES = (
    (11, "Chrome 131 on Windows 11"),
    (12, "Firefox 133 on Windows 11"),
    (13, "Edge 131 on Windows 10"),
    (14, "Safari 18 on macOS Sequoia"),
    (15, "Chrome 131 on macOS Sonoma"),
)

ENVIRONMENTS = (
    (21, "Staging", "The staging stack, refreshed nightly.", "https://staging.shop.example"),
    (22, "QA", "The QA stack with seeded test data.", "https://qa.shop.example"),
    (23, "Pre-production", "Production data, masked.", "https://preprod.shop.example"),
)

USERS = ("priya.sharma@example.com", "marco.rossi@example.com", "lena.fischer@example.com")

# The catalogue's kind of cause for each way a case can fail.
CAUSE_KINDS = {
    "fail": failure_causes.ALWAYS,
    "iteration": failure_causes.ALWAYS,
    "machine": failure_causes.AGENT,
    "flaky": failure_causes.TRANSIENT,
    "iteration_flaky": failure_causes.TRANSIENT,
}
OUTAGE_RATE = 0.06  # chance a service is down for a whole run (reruns come later: never)


# The estate ---------------------------------------------------------------------------------


def id_of(thing: Any) -> int:
    return thing.id


@dataclass
class Machine:
    id: int
    title: str


@dataclass
class Case:
    id: int
    name: str
    suite_id: int
    suite_name: str
    suite_index: int
    # pass | fail | machine | flaky | iteration | iteration_flaky
    outcome: str = "pass"
    bad_machine_id: int | None = None
    sets: tuple[str, ...] = ()
    bad_set: str = ""
    cause: str = ""  # failure_causes key, for cases that can fail

    @property
    def is_data_driven(self) -> bool:
        return bool(self.sets)


@dataclass
class Plan:
    id: int
    name: str
    description: str
    owner: str
    schedule_id: int
    machines: list[Machine]
    cases: list[Case]
    runs: list[int] = field(default_factory=list)
    fresh_runs: int = 0  # runs started afresh (not reruns): rotates the suites over machines
    next_auto: datetime | None = None
    autos: int = 0


@dataclass
class IterationRun:
    id: int
    set_name: str
    attempt: int
    fails: bool
    result: str = QUEUED


@dataclass
class CaseRun:
    id: int
    case: Case
    machine: Machine
    attempt: int
    fails: bool
    iterations: list[IterationRun]
    result: str = QUEUED
    status: str = CREATED
    start: datetime | None = None
    end: datetime | None = None
    message: str = ""
    cause: str = ""  # why it fails, when it does
    log: list[str] = field(default_factory=list)  # the lines that led to its failure


@dataclass
class PlanRun:
    id: int
    plan: Plan
    created_at: datetime
    cases: list[CaseRun]
    triggered_type: str = "API"
    executed_by: str | None = None
    scheduled_id: int | None = None
    build_no: str | None = None
    environment_id: int | None = None
    runtime_data: dict[str, Any] | None = None
    re_run_parent_id: int | None = None
    re_run_type: str | None = None
    status: str = CREATED
    result: str = QUEUED
    end_time: datetime | None = None
    message: str = ""
    done: bool = False
