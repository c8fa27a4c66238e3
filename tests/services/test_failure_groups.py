"""Issue 15: every failure gets a fingerprint at sync time, in the statements sync already
makes, and the same cause on several orchestrators is one failure group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from runs import tasks
from runs.models import ExecutionResult, FailureGroup
from runs.services import failure_groups, fingerprints, sql
from runs.services.failure_groups import fingerprints_refresh
from runs.services.fingerprints import FINGERPRINT_VERSION, failure_fingerprint
from runs.services.sync.classify import RESULT_COLUMNS, failure_groups_seen
from runs.status import FAILURES
from runs.tasks import sync_cycle_ensure
from tests.emulated import synced
from tests.factories import make_result, make_run
from tests.test_tasks import waiting

pytestmark = pytest.mark.django_db

FAILED = [status.value for status in FAILURES]


def test_sync_fingerprints_every_failure_and_nothing_else():
    with synced("leapwork"):
        pass
    failures = ExecutionResult.objects.filter(status__in=FAILED)
    assert failures.exists()
    for result in failures:
        expected = failure_fingerprint(result.message, result.log_excerpt)[0]
        assert result.fingerprint == expected
        assert result.fingerprint_version == (FINGERPRINT_VERSION if expected else 0)
    others = ExecutionResult.objects.exclude(status__in=FAILED)
    assert not others.exclude(fingerprint="").exists()
    # Each cause is a group, with what was hashed and when it was seen.
    seen = set(failures.exclude(fingerprint="").values_list("fingerprint", flat=True))
    groups = FailureGroup.objects.filter(fingerprint__in=seen)
    assert groups.count() == len(seen) == FailureGroup.objects.count()
    for group in groups:
        mine = failures.filter(fingerprint=group.fingerprint)
        assert failure_fingerprint(group.normalized)[0] == group.fingerprint
        assert group.first_seen_at == min(r.started_at for r in mine if r.started_at)
        assert group.last_seen_at == max(r.started_at for r in mine if r.started_at)


def test_the_same_cause_on_two_orchestrators_is_one_group():
    with synced("leapwork"), synced("testsigma"), synced("conductor"):
        pass
    shared = (
        ExecutionResult.objects.exclude(fingerprint="")
        .values("fingerprint")
        .annotate(orchestrators=Count("run__orchestrator", distinct=True))
        .filter(orchestrators__gt=1)
    )
    assert shared.exists(), "the emulators' failures share causes across vendors"


def test_fingerprinting_adds_no_query_per_result():
    with CaptureQueriesContext(connection) as queries, synced("leapwork", history=3):
        pass
    statements = [q["sql"] for q in queries.captured_queries]
    failures = ExecutionResult.objects.exclude(fingerprint="").count()
    groups = [sql for sql in statements if "runs_failuregroup" in sql]
    batches = [
        sql
        for sql in statements
        if "runs_executionresult" in sql and sql.startswith(("INSERT", "COPY", "WITH"))
    ]
    # One statement for the causes of each batch of results, whatever the number of failures.
    assert failures > 50
    assert 1 <= len(groups) <= len(batches)
    assert all(sql.startswith("INSERT") for sql in groups)


def test_a_batch_names_each_cause_once_with_the_span_it_was_seen_in():
    early = datetime(2026, 11, 1, tzinfo=UTC)

    def row(message: str, started: datetime | None) -> tuple:
        values = dict.fromkeys(RESULT_COLUMNS)
        values.update(
            message=message,
            log_excerpt="",
            started_at=started,
            fingerprint=failure_fingerprint(message)[0],
        )
        return tuple(values[name] for name in RESULT_COLUMNS)

    rows = [
        row("Timeout after 30s waiting for #pay", early + timedelta(hours=2)),
        row("Timeout after 12s waiting for #pay", early),
        row("Timeout after 5s waiting for #pay", None),
        row("Element #login not found", early + timedelta(days=1)),
    ]
    seen = {fp: rest for fp, *rest in failure_groups_seen(rows)}
    timeout = failure_fingerprint("Timeout after 1s waiting for #pay")[0]
    assert len(seen) == 2
    assert seen[timeout] == [
        FINGERPRINT_VERSION,
        "Timeout after <duration> waiting for #pay",
        early,
        early + timedelta(hours=2),
    ]


def test_a_cause_seen_again_earlier_or_later_widens_its_span():
    fp, text = failure_fingerprint("Element #pay not found")
    day = datetime(2026, 11, 10, tzinfo=UTC)
    sql.failure_groups_upsert([(fp, FINGERPRINT_VERSION, text, day, day)])
    sql.failure_groups_upsert([(fp, FINGERPRINT_VERSION, text, day - timedelta(days=3), day)])
    sql.failure_groups_upsert([(fp, FINGERPRINT_VERSION, text, None, None)])
    sql.failure_groups_upsert([(fp, FINGERPRINT_VERSION, text, day, day + timedelta(days=2))])
    group = FailureGroup.objects.get()
    assert group.first_seen_at == day - timedelta(days=3)
    assert group.last_seen_at == day + timedelta(days=2)
    assert group.normalized == text and group.version == FINGERPRINT_VERSION


def test_a_new_version_fingerprints_the_stored_failures_again(monkeypatch):
    run = make_run(status="failed")
    failed = make_result(run, status="failed", message="Timeout after 30s on #pay")
    passed = make_result(run, status="passed", message="")
    assert fingerprints_refresh() == 1  # made before fingerprints: none yet
    failed.refresh_from_db()
    first = failed.fingerprint
    assert first and failed.fingerprint_version == FINGERPRINT_VERSION
    assert fingerprints_refresh() == 0  # nothing stale

    monkeypatch.setattr(fingerprints, "FINGERPRINT_VERSION", FINGERPRINT_VERSION + 1)
    monkeypatch.setattr(failure_groups, "FINGERPRINT_VERSION", FINGERPRINT_VERSION + 1)
    assert fingerprints_refresh() == 1
    failed.refresh_from_db()
    passed.refresh_from_db()
    assert failed.fingerprint != first and failed.fingerprint_version == FINGERPRINT_VERSION + 1
    assert passed.fingerprint == "" and passed.fingerprint_version == 0
    assert FailureGroup.objects.filter(fingerprint=failed.fingerprint).exists()


@pytest.mark.django_db(transaction=True)  # the worker closes the connection it used
def test_starting_the_periodic_sync_fingerprints_stored_failures_in_the_background():
    run = make_run(status="failed")
    failed = make_result(run, status="failed", message="Element #pay not found")
    sync_cycle_ensure()
    sync_cycle_ensure()  # once is enough: a job already waiting is not enqueued again
    assert len(waiting(tasks.fingerprints_refresh)) == 1
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)
    failed.refresh_from_db()
    assert failed.fingerprint and FailureGroup.objects.filter(fingerprint=failed.fingerprint)
