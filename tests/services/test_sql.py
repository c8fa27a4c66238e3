"""The SQL the ORM cannot write (runs.services.sql), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from runs.models import ExecutionResult
from runs.services.sql import advisory_xact_lock, results_prune
from tests.factories import make_result, make_run

pytestmark = pytest.mark.django_db


def test_it_prunes_the_results_not_kept_in_one_statement():
    run, other = make_run(), make_run()
    kept = [make_result(run, external_id=f"keep-{n}") for n in range(3)]
    make_result(run, external_id="gone")
    untouched = make_result(other, external_id="gone")

    with CaptureQueriesContext(connection) as queries:
        results_prune([run.pk], [(run.pk, r.external_id) for r in kept])

    assert len(queries.captured_queries) == 1
    assert set(run.results.values_list("external_id", flat=True)) == {r.external_id for r in kept}
    assert ExecutionResult.objects.filter(pk=untouched.pk).exists()


def test_it_keeps_a_pair_only_for_its_own_run():
    run, other = make_run(), make_run()
    make_result(run, external_id="same")
    make_result(other, external_id="same")

    results_prune([run.pk, other.pk], [(other.pk, "same")])

    assert not run.results.exists() and other.results.count() == 1


def test_it_prunes_nothing_without_runs():
    with CaptureQueriesContext(connection) as queries:
        results_prune([], [])
    assert queries.captured_queries == []


def test_the_advisory_lock_holds_inside_a_transaction_and_is_a_no_op_on_sqlite():
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        advisory_xact_lock(1, 2)
        advisory_xact_lock(3)
    expected = 2 if connection.vendor == "postgresql" else 0
    assert len(queries.captured_queries) == expected
