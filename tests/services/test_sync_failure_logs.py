"""After a sync, failed results carry their failure message and log excerpt on every vendor."""

from __future__ import annotations

import pytest

from runs.models import ExecutionResult
from runs.orchestrators.failure_causes import cause_of
from runs.orchestrators.registry import KINDS
from runs.status import Status
from tests.emulated import synced

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", KINDS)
def test_failed_results_carry_a_message_and_a_log_excerpt_after_a_sync(kind):
    with synced(kind, history=3) as (_server, orchestrator):
        results = ExecutionResult.objects.filter(run__orchestrator=orchestrator)
        failed = list(results.filter(status=Status.FAILED))
        passed = list(results.filter(status=Status.PASSED))

    assert failed and passed
    for result in failed:
        assert cause_of(result.message), result.message
        lines = result.log_excerpt.splitlines()
        assert len(lines) >= 2 and any(result.message in line for line in lines)
    assert all(not r.log_excerpt and not cause_of(r.message) for r in passed)
