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

The emulator is one class put together from a module per concern: `estate` (the seeded
world, saved and resumed), `simulation` (the clock moving runs), `rerun` (what a rerun
picks), `api` (routes, auth, parsing), `shapes` (response bodies) and `overview`
(`/_emulator/state`, the banner); `model` holds the dataclasses and constants they share.
"""

from __future__ import annotations

from typing import Any

from runs.orchestrators.testsigma.emulator.api import TestsigmaApi
from runs.orchestrators.testsigma.emulator.estate import TestsigmaEstate
from runs.orchestrators.testsigma.emulator.overview import TestsigmaOverview
from runs.orchestrators.testsigma.emulator.rerun import TestsigmaReruns
from runs.orchestrators.testsigma.emulator.shapes import TestsigmaShapes
from runs.orchestrators.testsigma.emulator.simulation import TestsigmaSimulation

__all__ = ["TestsigmaEmulator"]


class TestsigmaEmulator(
    TestsigmaApi,
    TestsigmaShapes,
    TestsigmaReruns,
    TestsigmaOverview,
    TestsigmaSimulation,
    TestsigmaEstate,
):
    """Testsigma Cloud's API v1 with 3-5 test plans, their machines, environments and runs."""

    kind = "testsigma"
    __test__ = False  # not a pytest class, despite the name

    def __init__(self, *, prose_results: bool = False, **kwargs: Any) -> None:
        self.prose_results = prose_results
        super().__init__(**kwargs)
