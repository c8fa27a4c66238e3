"""Every row of DESIGN.md's normalized status table."""

from __future__ import annotations

import pytest

from runs import status as s
from runs.status import Status

LEAPWORK_ITEMS = [
    ("NoStatus", Status.QUEUED),
    ("Initializing", Status.RUNNING),
    ("Connecting", Status.RUNNING),
    ("Connected", Status.RUNNING),
    ("Running", Status.RUNNING),
    ("IsProcessing", Status.RUNNING),
    ("Passed", Status.PASSED),
    ("Pass", Status.PASSED),
    ("Done", Status.PASSED),
    ("Failed", Status.FAILED),
    ("Error", Status.ERROR),
    ("Inconclusive", Status.ERROR),
    ("Timeout", Status.ERROR),
    ("Cancelled", Status.CANCELLED),
    ("Exploded", Status.UNKNOWN),
    (None, Status.UNKNOWN),
]


@pytest.mark.parametrize(("word", "expected"), LEAPWORK_ITEMS)
def test_it_maps_leapwork_items(word, expected):
    assert s.leapwork_item_status(word) == expected


@pytest.mark.parametrize(
    ("word", "items", "expected"),
    [
        ("Queued", [], Status.QUEUED),
        (None, [], Status.QUEUED),
        ("Executing", [Status.PASSED, Status.RUNNING], Status.RUNNING),
        ("Finished", [Status.PASSED, Status.PASSED], Status.PASSED),
        ("Finished", [Status.PASSED, Status.FAILED], Status.FAILED),
        ("Finished", [Status.PASSED, Status.ERROR], Status.FAILED),
        ("Finished", [Status.PASSED, Status.CANCELLED], Status.PASSED),
        ("Finished", [Status.PASSED, Status.RUNNING], Status.RUNNING),
        ("Finished", [Status.FAILED, Status.QUEUED], Status.RUNNING),
        ("Smouldering", [], Status.UNKNOWN),
    ],
)
def test_it_maps_leapwork_runs(word, items, expected):
    assert s.leapwork_run_status(word, items) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("RUNNING", Status.RUNNING),
        ("PAUSED", Status.RUNNING),
        ("COMPLETED", Status.PASSED),
        ("FAILED", Status.FAILED),
        ("TIMED_OUT", Status.ERROR),
        ("TERMINATED", Status.CANCELLED),
        ("ARCHIVED", Status.UNKNOWN),
    ],
)
def test_it_maps_conductor_workflows(word, expected):
    assert s.conductor_workflow_status(word) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("SCHEDULED", Status.QUEUED),
        ("IN_PROGRESS", Status.RUNNING),
        ("COMPLETED", Status.PASSED),
        ("COMPLETED_WITH_ERRORS", Status.PASSED),
        ("FAILED", Status.FAILED),
        ("FAILED_WITH_TERMINAL_ERROR", Status.FAILED),
        ("TIMED_OUT", Status.ERROR),
        ("CANCELED", Status.CANCELLED),
        ("SKIPPED", Status.SKIPPED),
        ("", Status.UNKNOWN),
    ],
)
def test_it_maps_conductor_tasks(word, expected):
    assert s.conductor_task_status(word) == expected


@pytest.mark.parametrize(
    ("status", "result", "expected"),
    [
        ("STATUS_CREATED", "QUEUED", Status.QUEUED),
        ("STATUS_QUEUED", "QUEUED", Status.QUEUED),
        ("STATUS_PRE_FLIGHT", "QUEUED", Status.QUEUED),
        ("STATUS_IN_PROGRESS", "QUEUED", Status.RUNNING),
        ("STATUS_COMPLETED", "SUCCESS", Status.PASSED),
        ("STATUS_COMPLETED", "PASSED", Status.PASSED),
        ("STATUS_COMPLETED", "FAILURE", Status.FAILED),
        ("STATUS_COMPLETED", "FAILED", Status.FAILED),
        ("STATUS_COMPLETED", "ABORTED", Status.ERROR),
        ("STATUS_COMPLETED", "STOPPED", Status.CANCELLED),
        ("STATUS_COMPLETED", "NOT_EXECUTED", Status.SKIPPED),
        ("STATUS_COMPLETED", "QUEUED", Status.QUEUED),
        ("STATUS_COMPLETED", "WHATEVER", Status.UNKNOWN),
        ("STATUS_SOMETHING", None, Status.UNKNOWN),
    ],
)
def test_it_maps_testsigma_runs(status, result, expected):
    assert s.testsigma_run_status(status, result) == expected


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("SUCCESS", Status.PASSED),
        ("PASSED", Status.PASSED),
        ("FAILURE", Status.FAILED),
        ("FAILED", Status.FAILED),
        ("ABORTED", Status.ERROR),
        ("STOPPED", Status.CANCELLED),
        ("NOT_EXECUTED", Status.SKIPPED),
        ("QUEUED", Status.QUEUED),
        ("MAYBE", Status.UNKNOWN),
    ],
)
def test_it_maps_testsigma_case_results(result, expected):
    assert s.testsigma_result_status(result) == expected


def test_it_keeps_the_testsigma_vendor_word():
    assert s.testsigma_vendor_word("STATUS_COMPLETED", "FAILURE") == "STATUS_COMPLETED/FAILURE"


def test_failed_only_means_failed_or_error():
    assert {status for status in Status if status.is_failure} == {Status.FAILED, Status.ERROR}
    assert {status for status in Status if not status.is_terminal} == {
        Status.QUEUED,
        Status.RUNNING,
    }
