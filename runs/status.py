"""The normalized status of runs and results, and each vendor's mapping to it.

Plain Python (no Django) so the vendor clients can normalize at their boundary. The tables
are DESIGN.md's "Normalized status"; a word nobody documented maps to UNKNOWN, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def is_terminal(self) -> bool:
        return self not in IN_PROGRESS

    @property
    def is_failure(self) -> bool:
        """ "Failed only" means failed or error."""
        return self in FAILURES

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(status.value, status.label) for status in cls]


IN_PROGRESS = frozenset({Status.QUEUED, Status.RUNNING})
FAILURES = frozenset({Status.FAILED, Status.ERROR})
# In one order everywhere: SQLite uses a partial index over `status IN (...)` only when the
# query spells its list as the index does.
FAILURE_VALUES = sorted(status.value for status in FAILURES)


def _lookup(table: dict[str, Status], word: str | None) -> Status:
    return table.get((word or "").strip().upper(), Status.UNKNOWN)


# Leapwork ---------------------------------------------------------------------------------

LEAPWORK_ITEM = {
    "NOSTATUS": Status.QUEUED,
    "INITIALIZING": Status.RUNNING,
    "CONNECTING": Status.RUNNING,
    "CONNECTED": Status.RUNNING,
    "RUNNING": Status.RUNNING,
    "ISPROCESSING": Status.RUNNING,
    "PASSED": Status.PASSED,
    "PASS": Status.PASSED,
    "DONE": Status.PASSED,
    "FAILED": Status.FAILED,
    "ERROR": Status.ERROR,
    "INCONCLUSIVE": Status.ERROR,
    "TIMEOUT": Status.ERROR,
    "CANCELLED": Status.CANCELLED,
}


def leapwork_item_status(word: str | None) -> Status:
    return _lookup(LEAPWORK_ITEM, word)


def leapwork_run_status(word: str | None, item_statuses: Iterable[Status]) -> Status:
    """A run is over when it is Finished and every item is terminal; a missing word is Queued."""
    run_word = (word or "Queued").strip().upper()
    if run_word == "QUEUED":
        return Status.QUEUED
    if run_word == "EXECUTING":
        return Status.RUNNING
    if run_word != "FINISHED":
        return Status.UNKNOWN
    items = list(item_statuses)
    if any(not status.is_terminal for status in items):
        return Status.RUNNING
    return Status.FAILED if any(status.is_failure for status in items) else Status.PASSED


# Conductor --------------------------------------------------------------------------------

CONDUCTOR_WORKFLOW = {
    "RUNNING": Status.RUNNING,
    "PAUSED": Status.RUNNING,
    "COMPLETED": Status.PASSED,
    "FAILED": Status.FAILED,
    "TIMED_OUT": Status.ERROR,
    "TERMINATED": Status.CANCELLED,
}

CONDUCTOR_TASK = {
    "SCHEDULED": Status.QUEUED,
    "IN_PROGRESS": Status.RUNNING,
    "COMPLETED": Status.PASSED,
    "COMPLETED_WITH_ERRORS": Status.PASSED,
    "FAILED": Status.FAILED,
    "FAILED_WITH_TERMINAL_ERROR": Status.FAILED,
    "TIMED_OUT": Status.ERROR,
    "CANCELED": Status.CANCELLED,
    "SKIPPED": Status.SKIPPED,
}


def conductor_workflow_status(word: str | None) -> Status:
    return _lookup(CONDUCTOR_WORKFLOW, word)


def conductor_task_status(word: str | None) -> Status:
    return _lookup(CONDUCTOR_TASK, word)


# Testsigma --------------------------------------------------------------------------------

TESTSIGMA_STATUS = {
    "STATUS_CREATED": Status.QUEUED,
    "STATUS_QUEUED": Status.QUEUED,
    "STATUS_PRE_FLIGHT": Status.QUEUED,
    "STATUS_IN_PROGRESS": Status.RUNNING,
}

TESTSIGMA_RESULT = {
    "SUCCESS": Status.PASSED,
    "PASSED": Status.PASSED,
    "FAILURE": Status.FAILED,
    "FAILED": Status.FAILED,
    "ABORTED": Status.ERROR,
    "STOPPED": Status.CANCELLED,
    "NOT_EXECUTED": Status.SKIPPED,
    "QUEUED": Status.QUEUED,
}


def testsigma_result_status(result: str | None) -> Status:
    """A case or iteration result, or a completed run's result."""
    return _lookup(TESTSIGMA_RESULT, result)


def testsigma_run_status(status: str | None, result: str | None) -> Status:
    """Poll while not STATUS_COMPLETED, then read `result`."""
    word = (status or "").strip().upper()
    if word == "STATUS_COMPLETED":
        return testsigma_result_status(result)
    return _lookup(TESTSIGMA_STATUS, word)


def testsigma_vendor_word(status: str | None, result: str | None) -> str:
    """The vendor's own word as Runboard shows it: `status/result`."""
    return f"{status or ''}/{result or ''}"
