"""The shared catalogue of failure causes, and the realistic estates the three emulators draw
from it: failures that fit their case, the same cause on several vendors, counts that vary."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime

import httpx
import pytest

from runs.orchestrators.base import OrchestratorClient, ResultSnapshot, RunSnapshot
from runs.orchestrators.emulation import Clock, EmulatorApp
from runs.orchestrators.failure_causes import (
    AGENT,
    ALWAYS,
    CAUSES,
    TRANSIENT,
    cause_of,
    causes,
    failure,
    subject_of,
)
from runs.orchestrators.registry import client_for, emulator_class
from runs.status import Status

KEYS = {"leapwork": "leap-key", "conductor": "", "testsigma": "ts-key"}
SEEDS = {"leapwork": 11, "conductor": 12, "testsigma": 13}  # the demo's seeds
PATHS = {"leapwork": "", "conductor": "", "testsigma": "/api/v1"}  # the clients' base paths


# The catalogue -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cause", sorted(CAUSES))
def test_it_renders_each_cause_with_details_that_vary(cause: str) -> None:
    seen = set()
    for number in range(5):
        found = failure(cause, "Apply discount code #07", random.Random(number), agent="Edge-02")
        assert cause_of(found.message) == cause
        assert found.log[-1].text == found.message and found.log[-1].level == "error"
        assert len(found.log) >= 3
        seen.add(found.message)
    assert len(seen) > 1, "every occurrence draws its own ids, numbers and timings"


def test_it_fits_a_failure_to_its_case() -> None:
    subject = subject_of("Checkout with saved card #12")
    assert (subject.service, subject.page, subject.element) == (
        "payments-api",
        "/checkout",
        "checkout-saved-card",
    )
    assert subject_of("search_facets_opens").service == "search-api"
    assert subject_of("Zzz").service == "web-frontend"
    rng = random.Random(1)
    assert "payments-api.qa:" in failure("env-outage", "Pay with invoice", rng, env="qa").message
    locator = failure("locator-changed", "Apply a discount code", rng).message
    assert "[@data-test='apply-discount-code']" in locator
    crash = failure("browser-crash", "Log out", rng, agent="Safari 18 on macOS Sequoia")
    assert "on Safari 18 on macOS Sequoia:" in crash.message
    assert cause_of("Something else entirely") is None


def test_it_has_causes_of_every_kind() -> None:
    assert len(causes(ALWAYS)) >= 3 and len(causes(TRANSIENT)) >= 3 and len(causes(AGENT)) >= 1


# The emulated estates --------------------------------------------------------------------------


def paused(at: datetime) -> Clock:
    clock = Clock(start=at)
    clock.paused = True
    return clock


def client(app: EmulatorApp) -> OrchestratorClient:
    transport = httpx.WSGITransport(app=app)
    return client_for(
        app.kind, f"http://emulator{PATHS[app.kind]}", KEYS[app.kind], transport=transport
    )


def all_runs(kind: str) -> list[RunSnapshot]:
    """Every run of a demo-seeded estate, as Runboard's client reads it."""
    app = emulator_class(kind)(
        seed=SEEDS[kind],
        credential=KEYS[kind],
        history=8,
        clock=paused(datetime(2026, 6, 1, 9, 0, tzinfo=UTC)),
    )
    reader = client(app)
    ids = [
        ref.external_id
        for schedule in reader.list_schedules()
        for ref in reader.list_runs(schedule.external_id, limit=50)
    ]
    # Testsigma lists no runs (Runboard follows the ids it is given): take the estate's own.
    ids = ids or [str(run["id"]) for run in app.state()["runs"]]
    return [reader.get_run(run_id) for run_id in ids]


@pytest.fixture(scope="module")
def estates() -> dict[str, list[RunSnapshot]]:
    return {kind: all_runs(kind) for kind in SEEDS}


def failures(runs: list[RunSnapshot]) -> list[ResultSnapshot]:
    return [r for run in runs for r in run.results if r.status == Status.FAILED]


def fits(result: ResultSnapshot, cause: str) -> bool:
    subject = subject_of(result.case_title)
    expected = {
        "env-outage": subject.service,
        "auth-expired": subject.service,
        "locator-changed": f"'{subject.element}'",
        "page-timeout": subject.page,
        "browser-crash": result.agent_title,
        "disk-full": result.agent_title,
    }.get(cause, "")
    return expected in result.message


def test_it_gives_every_failure_a_fitting_message_and_a_log(estates) -> None:
    for kind, runs in estates.items():
        failed = failures(runs)
        assert failed, kind
        for result in failed:
            cause = cause_of(result.message)
            assert cause, f"{kind}: {result.message!r} is from no cause"
            assert fits(result, cause), f"{kind}: {result.message!r} for {result.case_title!r}"
            lines = result.log_excerpt.splitlines()
            assert len(lines) >= 2 and result.message in lines[-1] + lines[-2], (kind, lines)


def test_it_shows_the_same_cause_on_several_vendors_with_varying_details(estates) -> None:
    messages: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for kind, runs in estates.items():
        for result in failures(runs):
            messages[cause_of(result.message) or ""][kind].add(result.message)
    shared = {cause: kinds for cause, kinds in messages.items() if len(kinds) >= 2}
    assert shared, {cause: sorted(kinds) for cause, kinds in messages.items()}
    for kinds in shared.values():
        assert len(set().union(*kinds.values())) > 1  # not one message copied everywhere


def test_it_varies_the_counts_of_one_schedules_runs(estates) -> None:
    for kind, runs in estates.items():
        counts = defaultdict(set)
        for run in runs:
            if run.trigger != "rerun" and run.status in (Status.PASSED, Status.FAILED):
                failed = sum(r.status.is_failure for r in run.results)
                counts[run.schedule_id].add((len(run.results), failed))
        assert any(len(seen) > 1 for seen in counts.values()), (kind, dict(counts))
