"""A faithful local Testsigma Cloud API v1 (api/testsigma.md): test plans, their results, reruns.

Everything is served under `/api/v1` (the client's base URL is `<served url>/api/v1`), in
camelCase JSON with epoch-millisecond times, behind `Authorization: Bearer <credential>`.

Choices where testsigma.md leaves room (each kept in one place below):
- Unknown ids answer 404 everywhere: a run, a test plan (`executionId`), a rerun's
  `executionResultId`, an `environmentId`. A rerun of a run that belongs to another test plan,
  or a USER_PICKED naming case results (or iterations) that are not in that run, answers 400.
- What each reRunType reruns: ALL_TESTS every case; ONLY_FAILED_TESTS and ALL_ITERATIONS the
  failed cases with every iteration; ONLY_FAILED_ITERATIONS (and the Community Edition's
  ONLY_FAILED_ITERATIONS_IN_FAILED_TESTS) the failed cases, data-driven ones with only their
  failed iterations; USER_PICKED the named case results, iterations per iterationReRunType
  (ALL by default). A rerun that would run nothing answers 400.
- A rerun is a new result (new id) on the same machines as the cases it reruns, with the
  source's buildNo and environmentId; runtimeData is only sent with a trigger.
- `result` words are SUCCESS / FAILURE (what the API answers); `prose_results=True` answers
  the docs' prose PASSED / FAILED instead, so the client is tested against both.
- A failed case result's `message` says why (a cause from the shared catalogue,
  failure_causes.py, that fits the case); its log lines are the body of its `<failure>` in the
  JUnit report. Now and then a service is down for a whole run (not a rerun).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from runs.orchestrators import failure_causes
from runs.orchestrators.emulation import (
    BadJson,
    Clock,
    EmulatorApp,
    HttpError,
    Refs,
    Request,
    Response,
    epoch_ms,
    from_plain,
    json_response,
    to_plain,
)

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


def _id_of(thing: Any) -> int:
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


class TestsigmaEmulator(EmulatorApp):
    """Testsigma Cloud's API v1 with 3-5 test plans, their machines, environments and runs."""

    kind = "testsigma"
    __test__ = False  # not a pytest class, despite the name

    def __init__(
        self,
        *,
        seed: int = 1,
        credential: str = "",
        history: int = 20,
        pace: float = 2.0,
        autorun: float = 0.0,
        clock: Clock | None = None,
        prose_results: bool = False,
    ) -> None:
        self.prose_results = prose_results
        super().__init__(
            seed=seed,
            credential=credential,
            history=history,
            pace=pace,
            autorun=autorun,
            clock=clock,
        )

    # The estate ------------------------------------------------------------------------------

    def build(self) -> None:
        rng = self.rng
        now = self.now()
        self.plans: dict[int, Plan] = {}
        self.runs: dict[int, PlanRun] = {}
        self._active: dict[int, PlanRun] = {}
        self._next_run_id = 5001
        self._next_case_result_id = 70001
        self._next_iteration_id = 900001
        self.machines = [Machine(id_, title) for id_, title in MACHINES]
        self.environments = [
            {
                "id": id_,
                "name": name,
                "description": description,
                "variables": [
                    {"key": "baseUrl", "value": url, "isEncrypted": False},
                    {"key": "adminUser", "value": "qa-admin", "isEncrypted": False},
                    {"key": "adminPassword", "value": "********", "isEncrypted": True},
                ],
            }
            for id_, name, description, url in ENVIRONMENTS
        ]
        next_case_id = 3001
        next_suite_id = 201
        for index, (name, description) in enumerate(PLAN_NAMES[: rng.randint(3, 5)]):
            plan_id = 101 + index
            suite_names = rng.sample(sorted(SUITES), rng.randint(2, 5))
            cases: list[Case] = []
            for suite_index, suite_name in enumerate(suite_names):
                titles = rng.sample(SUITES[suite_name], rng.randint(4, 8))
                for title in titles:
                    cases.append(Case(next_case_id, title, next_suite_id, suite_name, suite_index))
                    next_case_id += 1
                next_suite_id += 1
            machines = rng.sample(self.machines, rng.randint(2, 3))
            self._assign_outcomes(cases, machines, every_kind=index == 0)
            plan = Plan(
                id=plan_id,
                name=name,
                description=description,
                owner=rng.choice(USERS),
                schedule_id=plan_id * 10 + 1,
                machines=machines,
                cases=cases,
            )
            if self.autorun > 0:
                plan.next_auto = now + timedelta(seconds=self.autorun * self._jitter(plan, 0))
            self.plans[plan_id] = plan
        self._build_history(now)

    def _assign_outcomes(
        self, cases: list[Case], machines: list[Machine], *, every_kind: bool
    ) -> None:
        """Most cases pass; a few always fail, fail on one machine, are flaky, or are data-driven
        with a failing iteration. The first plan holds one case of every kind (tests use it)."""
        rng = self.rng
        kinds = ("fail", "machine", "flaky", "iteration", "iteration_flaky", "data_driven")
        forced = (
            dict(zip(rng.sample(range(len(cases)), len(kinds)), kinds, strict=True))
            if every_kind
            else {}
        )
        for index, case in enumerate(cases):
            outcome = forced.get(index)
            if outcome is None:
                draw = rng.random()
                outcome = (
                    "fail"
                    if draw < 0.03
                    else "flaky"
                    if draw < 0.08
                    else "machine"
                    if draw < 0.11
                    else "data_driven"
                    if draw < 0.21
                    else "pass"
                )
            if outcome in ("iteration", "iteration_flaky", "data_driven"):
                case.sets = tuple(rng.sample(rng.choice(DATA_SETS), rng.randint(2, 5)))
                if outcome == "data_driven":
                    outcome = (
                        "pass" if every_kind else rng.choice(("pass", "pass", "iteration_flaky"))
                    )
                if outcome != "pass":
                    case.bad_set = rng.choice(case.sets)
            if outcome == "machine":
                case.bad_machine_id = rng.choice(machines).id
            case.outcome = outcome
            # Cases once drew a message here: the same draw keeps every seed's estate as it was.
            rng.choice(range(4))
            if outcome in CAUSE_KINDS:
                # A generator of its own: causes leave the rest of the estate as it was.
                draw = random.Random(f"{self.seed}:cause:{case.id}")
                case.cause = failure_causes.pick_cause(draw, CAUSE_KINDS[outcome])

    def _jitter(self, plan: Plan, k: int) -> float:
        """A factor around 1 for the k-th automatic run of a plan, the same for every seed run."""
        return 0.5 + random.Random(f"{self.seed}:{plan.id}:{k}").random()

    def _build_history(self, now: datetime) -> None:
        """`history` finished runs per plan over the last days, oldest first, ids increasing."""
        if self.history <= 0:
            return
        rng = self.rng
        spacing = min(timedelta(hours=20), timedelta(days=28) / self.history)
        slots: list[tuple[datetime, int]] = []
        for plan in self.plans.values():
            longest = timedelta(seconds=self.pace * (len(plan.cases) + 1) + 60)
            for k in range(self.history):
                moment = now - spacing * (self.history - k) + spacing * rng.uniform(0, 0.3)
                slots.append((min(moment, now - longest), plan.id))
        slots.sort(key=lambda slot: (slot[0], slot[1]))
        for moment, plan_id in slots:
            plan = self.plans[plan_id]
            previous = self.runs[plan.runs[-1]] if plan.runs else None
            if previous is not None:
                self._settle(previous, moment)
            failed = previous is not None and any(c.result in FAILED_WORDS for c in previous.cases)
            if previous is not None and previous.done and failed and rng.random() < 0.25:
                picks = self._select(previous, "ONLY_FAILED_TESTS")
                run = self._start_rerun(previous, "ONLY_FAILED_TESTS", picks, moment)
                run.triggered_type = "MANUAL"
                run.executed_by = rng.choice(USERS)
            else:
                draw = rng.random()
                if draw < 0.6:
                    run = self._start(plan, moment, triggered_type="SCHEDULED")
                elif draw < 0.85:
                    run = self._start(
                        plan,
                        moment,
                        triggered_type="API",
                        executed_by=plan.owner,
                        build_no=f"build-{rng.randint(1000, 9999)}",
                        environment_id=rng.choice(ENVIRONMENTS)[0],
                    )
                else:
                    run = self._start(
                        plan, moment, triggered_type="MANUAL", executed_by=rng.choice(USERS)
                    )
            self._settle(run, now)

    # Runs ------------------------------------------------------------------------------------

    def _new_run_id(self) -> int:
        self._next_run_id += 1
        return self._next_run_id - 1

    def _new_case_result_id(self) -> int:
        self._next_case_result_id += 1
        return self._next_case_result_id - 1

    def _new_iteration_id(self) -> int:
        self._next_iteration_id += 1
        return self._next_iteration_id - 1

    def _case_run(
        self, case: Case, machine: Machine, attempt: int, sets: dict[str, int], down: str = ""
    ) -> CaseRun:
        """A case result; `sets` maps each iteration to run onto its attempt number; `down` is
        the service that is down for its run, if any."""
        result_id = self._new_case_result_id()
        iterations = []
        for name, set_attempt in sets.items():
            iteration_id = self._new_iteration_id()
            fails = name == case.bad_set and (
                case.outcome == "iteration" or self._flakes(iteration_id, set_attempt)
            )
            iterations.append(IterationRun(iteration_id, name, set_attempt, fails))
        cause = case.cause
        if case.is_data_driven:
            fails = any(iteration.fails for iteration in iterations)
        elif down and failure_causes.subject_of(case.name).service == down:
            fails, cause = True, "env-outage"
        elif case.outcome == "fail":
            fails = True
        elif case.outcome == "machine":
            fails = machine.id == case.bad_machine_id
        elif case.outcome == "flaky":
            fails = self._flakes(result_id, attempt)
        else:
            fails = False
        return CaseRun(
            id=result_id,
            case=case,
            machine=machine,
            attempt=attempt,
            fails=fails,
            iterations=iterations,
            cause=cause if fails else "",
        )

    def _flakes(self, result_id: int, attempt: int) -> bool:
        """A flaky case fails on most first attempts (decided by its result id) and passes
        whenever it is run again."""
        return attempt == 1 and random.Random(f"{self.seed}:{result_id}").random() < 0.6

    def _add(self, run: PlanRun) -> PlanRun:
        self.runs[run.id] = run
        self._active[run.id] = run
        run.plan.runs.append(run.id)
        return run

    def _start(
        self,
        plan: Plan,
        moment: datetime,
        *,
        triggered_type: str,
        executed_by: str | None = None,
        build_no: str | None = None,
        environment_id: int | None = None,
        runtime_data: dict[str, Any] | None = None,
    ) -> PlanRun:
        """A fresh run of every case; suites rotate over the plan's machines run by run."""
        machines = plan.machines
        run_id = self._new_run_id()
        down = self._down(plan, run_id)
        cases = [
            self._case_run(
                case,
                machines[(case.suite_index + plan.fresh_runs) % len(machines)],
                1,
                dict.fromkeys(case.sets, 1),
                down,
            )
            for case in plan.cases
        ]
        plan.fresh_runs += 1
        return self._add(
            PlanRun(
                id=run_id,
                plan=plan,
                created_at=moment,
                cases=cases,
                triggered_type=triggered_type,
                executed_by=executed_by,
                scheduled_id=plan.schedule_id if triggered_type == "SCHEDULED" else None,
                build_no=build_no,
                environment_id=environment_id,
                runtime_data=runtime_data,
            )
        )

    def _down(self, plan: Plan, run_id: int) -> str:
        """The service that is down for a whole run, now and then ("": none)."""
        draw = random.Random(f"{self.seed}:outage:{run_id}")
        if draw.random() >= OUTAGE_RATE:
            return ""
        return draw.choice(sorted({failure_causes.subject_of(c.name).service for c in plan.cases}))

    def failure(self, case_run: CaseRun) -> failure_causes.Failure:
        """What went wrong in a failed case result: its cause, with this occurrence's details."""
        return failure_causes.failure(
            case_run.cause or "assertion-value",
            case_run.case.name,
            random.Random(f"{self.seed}:failure:{case_run.id}"),
            agent=case_run.machine.title,
            browser=case_run.machine.title.split(" ")[0],
        )

    def _select(
        self, source: PlanRun, re_run_type: str, requests: list[dict[str, Any]] | None = None
    ) -> list[tuple[CaseRun, list[str]]]:
        """The case results a rerun runs again, each with the iterations (set names) it reruns."""
        picks: list[tuple[CaseRun, list[str]]] = []
        if re_run_type == "USER_PICKED":
            by_id = {case_run.id: case_run for case_run in source.cases}
            for request in requests or []:
                case_run = by_id[request["id"]]
                kind = request.get("iterationReRunType") or "ALL"
                if not case_run.case.is_data_driven or kind == "ALL":
                    sets = list(case_run.case.sets)
                elif kind == "USER_PICKED":
                    wanted = set(request["iterationResultIds"])
                    sets = [i.set_name for i in case_run.iterations if i.id in wanted]
                elif kind == "FAILED":
                    sets = [i.set_name for i in case_run.iterations if i.result in FAILED_WORDS]
                else:
                    sets = [i.set_name for i in case_run.iterations if i.result == SUCCESS]
                if sets or not case_run.case.is_data_driven:
                    picks.append((case_run, sets))
            return picks
        for case_run in source.cases:
            if re_run_type != "ALL_TESTS" and case_run.result not in FAILED_WORDS:
                continue
            sets = list(case_run.case.sets)
            if re_run_type in ("ONLY_FAILED_ITERATIONS", "ONLY_FAILED_ITERATIONS_IN_FAILED_TESTS"):
                failed_sets = [i.set_name for i in case_run.iterations if i.result in FAILED_WORDS]
                sets = failed_sets or sets
            picks.append((case_run, sets))
        return picks

    def _start_rerun(
        self,
        source: PlanRun,
        re_run_type: str,
        picks: list[tuple[CaseRun, list[str]]],
        moment: datetime,
    ) -> PlanRun:
        cases = []
        for case_run, sets in picks:
            before = {i.set_name: i.attempt for i in case_run.iterations}
            attempts = {name: before.get(name, case_run.attempt) + 1 for name in sets}
            cases.append(
                self._case_run(case_run.case, case_run.machine, case_run.attempt + 1, attempts)
            )
        return self._add(
            PlanRun(
                id=self._new_run_id(),
                plan=source.plan,
                created_at=moment,
                cases=cases,
                triggered_type="API",
                executed_by=source.executed_by,
                build_no=source.build_no,
                environment_id=source.environment_id,
                re_run_parent_id=source.id,
                re_run_type=re_run_type,
            )
        )

    # The clock -------------------------------------------------------------------------------

    def advance(self, now: datetime) -> None:
        if self.autorun > 0:
            for plan in self.plans.values():
                while plan.next_auto is not None and plan.next_auto <= now:
                    self._start(plan, plan.next_auto, triggered_type="SCHEDULED")
                    self.mark_changed()
                    plan.autos += 1
                    step = self.autorun * self._jitter(plan, plan.autos)
                    plan.next_auto += timedelta(seconds=step)
        for run in list(self._active.values()):
            self._settle(run, now)

    # Saving and resuming ----------------------------------------------------------------------

    def _refs(self, *kinds: type) -> Refs:
        """Runs point at their plan, cases and machines, plans at machines: saved by id."""
        cases = {case.id: case for plan in self.plans.values() for case in plan.cases}
        machines = {machine.id: machine for machine in self.machines}
        lookups: dict[type, Any] = {
            Plan: self.plans.__getitem__,
            Case: cases.__getitem__,
            Machine: machines.__getitem__,
        }
        return {kind: (_id_of, lookups[kind]) for kind in kinds}

    def estate(self) -> dict[str, Any]:
        return {
            "machines": to_plain(self.machines),
            "environments": to_plain(self.environments),
            "plans": to_plain(self.plans, self._refs(Machine)),
            "runs": to_plain(self.runs, self._refs(Plan, Case, Machine)),
            "active": sorted(self._active),
            "next_ids": [self._next_run_id, self._next_case_result_id, self._next_iteration_id],
        }

    def restore(self, estate: dict[str, Any]) -> None:
        self.machines = from_plain(list[Machine], estate["machines"])
        self.environments = estate["environments"]
        self.plans = from_plain(dict[int, Plan], estate["plans"], self._refs(Machine))
        self.runs = from_plain(dict[int, PlanRun], estate["runs"], self._refs(Plan, Case, Machine))
        self._active = {run_id: self.runs[run_id] for run_id in estate["active"]}
        self._next_run_id, self._next_case_result_id, self._next_iteration_id = estate["next_ids"]

    def resumed(self, now: datetime) -> None:
        # The account was off while no emulator ran: its plans were not triggered meanwhile.
        # Runs in flight keep their timeline and have finished if it has passed.
        if self.autorun <= 0:
            return
        for plan in self.plans.values():
            if plan.next_auto is None or plan.next_auto <= now:
                step = self.autorun * self._jitter(plan, plan.autos)
                plan.next_auto = now + timedelta(seconds=step)

    def describe(self) -> str:
        return f"{len(self.runs)} runs, {len(self._active)} in flight"

    def _settle(self, run: PlanRun, now: datetime) -> None:
        """Move a run to where the clock says it is: a short queue, then one case per `pace`."""
        if run.done:
            self._active.pop(run.id, None)
            return
        pace = timedelta(seconds=self.pace)
        elapsed = now - run.created_at
        begins = run.created_at + pace
        for index, case_run in enumerate(run.cases):
            start = begins + pace * index
            end = start + pace
            if now < start:
                case_run.status = CREATED if elapsed < pace else STATUS_QUEUED
                continue
            case_run.start = start
            if now < end:
                case_run.status = IN_PROGRESS
                count = len(case_run.iterations)
                for number, iteration in enumerate(case_run.iterations, start=1):
                    if now >= start + pace * (number / count):
                        iteration.result = FAILURE if iteration.fails else SUCCESS
                continue
            for iteration in case_run.iterations:
                iteration.result = FAILURE if iteration.fails else SUCCESS
            case_run.status = COMPLETED
            case_run.end = end
            case_run.result = FAILURE if case_run.fails else SUCCESS
            case_run.message = "Test case passed"
            if case_run.fails:
                found = self.failure(case_run)
                case_run.message = found.message
                case_run.log = [f"{line.level.upper()}: {line.text}" for line in found.log]
        if elapsed < pace / 3:
            run.status = CREATED
        elif elapsed < pace * 2 / 3:
            run.status = STATUS_QUEUED
        elif elapsed < pace:
            run.status = PRE_FLIGHT
        elif now < begins + pace * len(run.cases):
            run.status = IN_PROGRESS
        else:
            self._complete(run, begins + pace * len(run.cases))

    def _complete(self, run: PlanRun, moment: datetime) -> None:
        words = [case_run.result for case_run in run.cases]
        failed = sum(word == FAILURE for word in words)
        if STOPPED in words:
            run.result = STOPPED
            run.message = "Test plan execution was stopped"
        elif failed:
            run.result = FAILURE
            run.message = f"{failed} of {len(words)} test cases failed"
        elif ABORTED in words:
            run.result = ABORTED
            run.message = "Test plan execution was aborted"
        else:
            run.result = SUCCESS
            run.message = "All test cases passed"
        run.status = COMPLETED
        run.end_time = moment
        run.done = True
        self._active.pop(run.id, None)

    def _stop(self, run: PlanRun, now: datetime) -> None:
        self._settle(run, now)
        if run.done:
            return
        for case_run in run.cases:
            if case_run.status == COMPLETED:
                continue
            case_run.status = COMPLETED
            case_run.result = STOPPED
            case_run.message = "Stopped by the user"
            case_run.end = now if case_run.start else None
            for iteration in case_run.iterations:
                if iteration.result == QUEUED:
                    iteration.result = STOPPED
        self._complete(run, now)

    # HTTP ------------------------------------------------------------------------------------

    def authorize(self, request: Request) -> None:
        if not self.credential:
            return
        scheme, _, key = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.credential:
            raise HttpError(
                self.error(401, "Full authentication is required to access this resource")
            )

    def error(self, status: int, message: str) -> Response:
        # A Spring Boot error body, as Testsigma's server answers.
        reason = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}.get(status, "Error")
        return json_response(
            {
                "timestamp": epoch_ms(self.now()),
                "status": status,
                "error": reason,
                "message": message,
            },
            status,
        )

    def malformed_body(self) -> bytes:
        return b'{"id": 5001, "result": "SUCC'

    def routes(self) -> list[tuple[str, str, Any]]:
        run = rf"{PREFIX}/execution_results/(?P<run_id>[^/]+)"
        return [
            ("POST", rf"{PREFIX}/execution_results", self.post_execution_results),
            ("GET", run, self.get_execution_result),
            ("PUT", run, self.put_execution_result),
            ("GET", rf"{run}/test_case_results", self.get_test_case_results),
            ("GET", rf"{PREFIX}/reports/junit/(?P<run_id>[^/]+)", self.get_junit),
            ("GET", rf"{PREFIX}/environments", self.get_environments),
        ]

    def _fail(self, status: int, message: str) -> HttpError:
        return HttpError(self.error(status, message))

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except BadJson as exc:
            raise self._fail(400, f"Malformed JSON request: {exc}") from exc
        if not isinstance(body, dict):
            raise self._fail(400, "Malformed JSON request: expected an object")
        return body

    def _int(self, value: Any, name: str, *, required: bool = True) -> int | None:
        """A Long field as Jackson reads it: a number or a string of digits."""
        if value is None:
            if required:
                raise self._fail(400, f"{name} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self._fail(400, f"{name} must be a number")
        if isinstance(value, str):
            if not value.strip().isdigit():
                raise self._fail(400, f"{name} must be a number, not {value!r}")
            return int(value)
        return value

    def _run(self, run_id: str) -> PlanRun:
        run = self.runs.get(int(run_id)) if run_id.isdigit() else None
        if run is None:
            raise self._fail(404, f"Execution result with id {run_id} not found")
        return run

    def _plan(self, plan_id: int) -> Plan:
        plan = self.plans.get(plan_id)
        if plan is None:
            raise self._fail(404, f"Test plan with id {plan_id} not found")
        return plan

    # testsigma.md: trigger a test plan / rerun, both `POST /execution_results`.
    def post_execution_results(self, request: Request) -> Response:
        body = self._body(request)
        plan = self._plan(self._int(body.get("executionId"), "executionId"))
        is_rerun = body.get("isReRun", False)
        if not isinstance(is_rerun, bool):
            raise self._fail(400, "isReRun must be true or false")
        now = self.now()
        if is_rerun:
            run = self._post_rerun(plan, body, now)
        else:
            environment_id = self._int(body.get("environmentId"), "environmentId", required=False)
            if environment_id is not None and environment_id not in {e[0] for e in ENVIRONMENTS}:
                raise self._fail(404, f"Environment with id {environment_id} not found")
            build_no = body.get("buildNo")
            if build_no is not None and not isinstance(build_no, str | int):
                raise self._fail(400, "buildNo must be a string")
            runtime_data = body.get("runtimeData")
            if runtime_data is not None and not isinstance(runtime_data, dict):
                raise self._fail(400, "runtimeData must be an object")
            run = self._start(
                plan,
                now,
                triggered_type="API",
                executed_by=plan.owner,
                build_no=None if build_no is None else str(build_no),
                environment_id=environment_id,
                runtime_data=runtime_data,
            )
        self._settle(run, now)
        # testsigma.md: `execution` is null right after a trigger.
        return json_response(self._render(run, with_execution=False))

    def _post_rerun(self, plan: Plan, body: dict[str, Any], now: datetime) -> PlanRun:
        source = self._run(str(self._int(body.get("executionResultId"), "executionResultId")))
        if source.plan is not plan:
            raise self._fail(
                400, f"Execution result {source.id} does not belong to test plan {plan.id}"
            )
        re_run_type = body.get("reRunType")
        if re_run_type not in RE_RUN_TYPES:
            raise self._fail(
                400,
                f"reRunType must be one of {', '.join(RE_RUN_TYPES)}; got {re_run_type!r}",
            )
        requests = self._case_requests(source, body.get("testCaseResultRequests"), re_run_type)
        self._settle(source, now)
        picks = self._select(source, re_run_type, requests)
        if not picks:
            raise self._fail(
                400, f"There are no test cases to rerun for {re_run_type} in result {source.id}"
            )
        return self._start_rerun(source, re_run_type, picks, now)

    def _case_requests(self, source: PlanRun, value: Any, re_run_type: str) -> list[dict[str, Any]]:
        if value is None:
            value = []
        if not isinstance(value, list):
            raise self._fail(400, "testCaseResultRequests must be a list")
        if re_run_type == "USER_PICKED" and not value:
            raise self._fail(400, "USER_PICKED needs at least one entry in testCaseResultRequests")
        by_id = {case_run.id: case_run for case_run in source.cases}
        requests: list[dict[str, Any]] = []
        seen: set[int] = set()
        for item in value:
            if not isinstance(item, dict):
                raise self._fail(400, "each testCaseResultRequests entry must be an object")
            result_id = self._int(item.get("id"), "testCaseResultRequests[].id")
            kind = item.get("iterationReRunType")
            if kind is not None and kind not in ITERATION_RE_RUN_TYPES:
                raise self._fail(
                    400,
                    f"iterationReRunType must be one of {', '.join(ITERATION_RE_RUN_TYPES)}; "
                    f"got {kind!r}",
                )
            ids = item.get("iterationResultIds")
            if ids is not None and not isinstance(ids, list):
                raise self._fail(400, "iterationResultIds must be a list")
            iteration_ids = [self._int(i, "iterationResultIds[]") for i in ids or []]
            case_run = by_id.get(result_id)
            if case_run is None:
                raise self._fail(
                    400, f"Test case result {result_id} is not part of execution result {source.id}"
                )
            if kind == "USER_PICKED":
                if not iteration_ids:
                    raise self._fail(400, "iterationReRunType USER_PICKED needs iterationResultIds")
                known = {iteration.id for iteration in case_run.iterations}
                strangers = [i for i in iteration_ids if i not in known]
                if strangers:
                    raise self._fail(
                        400,
                        f"Iteration results {strangers} are not part of test case result "
                        f"{result_id}",
                    )
            if result_id in seen:
                continue
            seen.add(result_id)
            requests.append(
                {"id": result_id, "iterationReRunType": kind, "iterationResultIds": iteration_ids}
            )
        return requests

    # testsigma.md: poll.
    def get_execution_result(self, request: Request, run_id: str) -> Response:
        return json_response(self._render(self._run(run_id)))

    # testsigma.md: stop.
    def put_execution_result(self, request: Request, run_id: str) -> Response:
        run = self._run(run_id)
        body = self._body(request)
        if body.get("result") != STOPPED:
            raise self._fail(400, "Only result STOPPED can be set on an execution result")
        can_stop_all = body.get("canStopAll", True)
        if not isinstance(can_stop_all, bool):
            raise self._fail(400, "canStopAll must be true or false")
        self._stop(run, self.now())
        return json_response(self._render(run))

    # testsigma.md: case results.
    def get_test_case_results(self, request: Request, run_id: str) -> Response:
        run = self._run(run_id)
        return json_response(
            {
                "executionId": run.plan.id,
                "executionResultId": run.id,
                "result": self._word(run.result),
                "status": run.status,
                "testCases": [self._render_case(case_run) for case_run in run.cases],
            }
        )

    # testsigma.md: JUnit report.
    def get_junit(self, request: Request, run_id: str) -> Response:
        run = self._run(run_id)
        suites: dict[str, list[CaseRun]] = {}
        for case_run in run.cases:
            suites.setdefault(case_run.case.suite_name, []).append(case_run)
        lines = ['<?xml version="1.0" encoding="UTF-8"?>']
        lines.append(f'<testsuites name={quoteattr(run.plan.name)} tests="{len(run.cases)}">')
        for suite, case_runs in suites.items():
            failures = sum(c.result in FAILED_WORDS for c in case_runs)
            lines.append(
                f'  <testsuite name={quoteattr(suite)} tests="{len(case_runs)}" '
                f'failures="{failures}">'
            )
            for case_run in case_runs:
                seconds = (
                    (case_run.end - case_run.start).total_seconds()
                    if case_run.start and case_run.end
                    else 0.0
                )
                opening = (
                    f"    <testcase name={quoteattr(case_run.case.name)} "
                    f'classname={quoteattr(suite)} time="{seconds:.3f}"'
                )
                if case_run.result in FAILED_WORDS:
                    lines.append(opening + ">")
                    log = escape("\n".join(case_run.log))
                    lines.append(
                        f"      <failure message={quoteattr(case_run.message)}>{log}</failure>"
                    )
                    lines.append("    </testcase>")
                elif case_run.result in (STOPPED, NOT_EXECUTED, QUEUED):
                    lines.append(opening + "><skipped/></testcase>")
                else:
                    lines.append(opening + "/>")
            lines.append("  </testsuite>")
        lines.append("</testsuites>")
        return Response(200, "\n".join(lines) + "\n", {"Content-Type": "application/xml"})

    # testsigma.md: environments.
    def get_environments(self, request: Request) -> Response:
        return json_response(self.environments)

    # Rendering -------------------------------------------------------------------------------

    def _word(self, result: str) -> str:
        return PROSE.get(result, result) if self.prose_results else result

    def _execution(self, plan: Plan) -> dict[str, Any]:
        return {
            "id": plan.id,
            "name": plan.name,
            "description": plan.description,
            "reRunType": None,
            "executionType": "CROSS_BROWSER",
            "lastRunId": plan.runs[-1] if plan.runs else None,
            "matchBrowserVersion": False,
            "elementTimeOut": 30,
            "pageTimeOut": 30,
            "screenshot": "ALL_TYPES",
        }

    def _render(self, run: PlanRun, *, with_execution: bool = True) -> dict[str, Any]:
        words = [case_run.result for case_run in run.cases]
        running = sum(case_run.status == IN_PROGRESS for case_run in run.cases)
        queued = sum(
            case_run.result == QUEUED and case_run.status != IN_PROGRESS for case_run in run.cases
        )
        end = run.end_time
        duration = ((end or self.now()) - run.created_at).total_seconds() * 1000
        return {
            "id": run.id,
            "executionId": run.plan.id,
            "execution": self._execution(run.plan) if with_execution else None,
            "startTime": epoch_ms(run.created_at),
            "endTime": epoch_ms(end),
            "duration": int(duration),
            "result": self._word(run.result),
            "status": run.status,
            "message": run.message,
            "executedBy": run.executed_by,
            "buildNo": run.build_no,
            "environmentId": run.environment_id,
            "runtimeData": run.runtime_data,
            "totalCount": len(run.cases),
            "failedCount": words.count(FAILURE),
            "passedCount": words.count(SUCCESS),
            "abortedCount": words.count(ABORTED),
            "stoppedCount": words.count(STOPPED),
            "notExecutedCount": words.count(NOT_EXECUTED),
            "preRequisiteFailedCount": 0,
            "queuedCount": queued,
            "runningCount": running,
            "totalRunningCount": running,
            "totalQueuedCount": queued,
            "reRunParentId": run.re_run_parent_id,
            "reRunType": run.re_run_type,
            "triggeredType": run.triggered_type,
            "executionDetails": {
                "page_timeout": 30,
                "element_timeout": 30,
                "recovery_action": "Run_Next_Testcase",
                "on_aborted_action": "Reuse_Session",
            },
            "consolidatedResult": self._word(run.result),
            "consolidatedStatus": run.status,
            "resultType": "ORIGINAL",
            "consolidatedDuration": int(duration),
            "isReRunEnabled": True,
            "runTestCasesInParallel": False,
            "runTestSuitesInParallel": False,
            "scheduledId": run.scheduled_id,
        }

    def _render_case(self, case_run: CaseRun) -> dict[str, Any]:
        case = case_run.case
        duration = (
            int((case_run.end - case_run.start).total_seconds() * 1000)
            if case_run.start and case_run.end
            else None
        )
        return {
            "testCaseId": case.id,
            "testCaseName": case.name,
            "testCaseResultId": case_run.id,
            "result": self._word(case_run.result),
            "status": case_run.status,
            "message": case_run.message,
            "startTime": epoch_ms(case_run.start),
            "endTime": epoch_ms(case_run.end),
            "duration": duration,
            "isDataDrivenCase": case.is_data_driven,
            "iterationResults": [
                {
                    "iterationResultId": iteration.id,
                    "setName": iteration.set_name,
                    "result": self._word(iteration.result),
                }
                for iteration in case_run.iterations
            ],
            "testSuiteId": case.suite_id,
            "testSuiteName": case.suite_name,
            "machineId": case_run.machine.id,
            "machineTitle": case_run.machine.title,
        }

    # The emulator's own view -----------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Plans with their cases' outcomes, machines ("agents"), environments and every run."""
        with self.lock:
            self.advance(self.now())
            return self._state()

    def _state(self) -> dict[str, Any]:
        return {
            "test_plans": [
                {
                    "id": plan.id,
                    "name": plan.name,
                    "machine_ids": [machine.id for machine in plan.machines],
                    "last_run_id": plan.runs[-1] if plan.runs else None,
                    "run_ids": list(plan.runs),
                    "cases": [
                        {
                            "id": case.id,
                            "name": case.name,
                            "suite": case.suite_name,
                            "outcome": case.outcome,
                            "bad_machine_id": case.bad_machine_id,
                            "sets": list(case.sets),
                            "bad_set": case.bad_set,
                        }
                        for case in plan.cases
                    ],
                }
                for plan in self.plans.values()
            ],
            "agents": [{"id": m.id, "title": m.title} for m in self.machines],
            "environments": [{"id": e["id"], "name": e["name"]} for e in self.environments],
            "runs": [self._run_state(run) for run in self.runs.values()],
        }

    def _run_state(self, run: PlanRun) -> dict[str, Any]:
        words = [case_run.result for case_run in run.cases]
        passed = words.count(SUCCESS)
        failed = sum(word in FAILED_WORDS for word in words)
        return {
            "id": run.id,
            "plan_id": run.plan.id,
            "status": run.status,
            "result": run.result,
            "rerun_parent_id": run.re_run_parent_id,
            "rerun_type": run.re_run_type,
            "triggered_type": run.triggered_type,
            "build_no": run.build_no,
            "environment_id": run.environment_id,
            "counts": {
                "total": len(words),
                "passed": passed,
                "failed": failed,
                "other": len(words) - passed - failed,
            },
            "case_results": [
                {
                    "id": case_run.id,
                    "test_case_id": case_run.case.id,
                    "result": case_run.result,
                    "machine_id": case_run.machine.id,
                    "attempt": case_run.attempt,
                    "iterations": [
                        {"id": i.id, "set_name": i.set_name, "result": i.result}
                        for i in case_run.iterations
                    ],
                }
                for case_run in run.cases
            ],
        }

    def banner(self) -> list[str]:
        base = self.served_at or "http://127.0.0.1:<port>"
        lines = [
            f"Client base URL: {base}{PREFIX}"
            + (" (Authorization: Bearer <credential>)" if self.credential else ""),
            "Test plans (executionId):",
        ]
        for plan in self.plans.values():
            last = plan.runs[-1] if plan.runs else "none"
            lines.append(f"  {plan.id}  {plan.name}  ({len(plan.cases)} cases, last run {last})")
        return lines
