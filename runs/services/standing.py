"""The one rule for "the result that stands", and the counts made from it.

Of a case's several tries in a run, the latest stands. A case is its case key (else the
result's own id), and also its agent where the vendor runs a case once on each agent
(`Capabilities.results_per_agent`, Leapwork). Sync counts with it; reruns pick with it.
Works on snapshots and on stored ExecutionResults alike: pure, no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol

from runs.status import Status


class _Result(Protocol):
    external_id: str
    case_key: str
    seq: int
    status: str

    @property
    def agent_id(self) -> object: ...


def case_of(result: _Result) -> str:
    """Which case a result is a try of: its case key, else its own id (CASE in
    runs.services.rerun_plan says the same in SQL)."""
    return result.case_key or result.external_id


def results_standing[R: _Result](results: Iterable[R], *, per_agent: bool) -> list[R]:
    """The result of each case that stands: its latest try (by seq, then as stored)."""
    last: dict[tuple[str, object], R] = {}
    for result in sorted(results, key=lambda r: (r.seq, getattr(r, "pk", 0) or 0)):
        agent = (result.agent_id or "") if per_agent else ""
        last[(case_of(result), agent)] = result
    return list(last.values())


class RunCounts(NamedTuple):
    """A run's cases by where they stand: total = passed + failed + other + queued + running."""

    total: int
    passed: int
    failed: int
    other: int
    queued: int
    running: int


def run_counts(results: Iterable[_Result], *, per_agent: bool) -> RunCounts:
    """A run's counts over the results that stand. Queued and running cases are not done:
    they are neither "other" nor part of the progress."""
    statuses = [Status(r.status) for r in results_standing(results, per_agent=per_agent)]
    passed = sum(1 for s in statuses if s == Status.PASSED)
    failed = sum(1 for s in statuses if s.is_failure)
    queued = sum(1 for s in statuses if s == Status.QUEUED)
    running = sum(1 for s in statuses if s == Status.RUNNING)
    other = len(statuses) - passed - failed - queued - running
    return RunCounts(len(statuses), passed, failed, other, queued, running)
