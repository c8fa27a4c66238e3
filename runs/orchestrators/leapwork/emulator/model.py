"""What a Leapwork estate is made of: agents, flows, schedules with their steps, runs and
run items, the titles it is seeded from, and Leapwork's id and time formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from runs.orchestrators import failure_causes

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


def iso7(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}0"
