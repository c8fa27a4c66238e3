"""The SQL the ORM cannot write, in one place, each statement saying why.

Everything else goes through the ORM (bulk_create with update_conflicts for the upserts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connection

from runs.models import ExecutionResult


def advisory_xact_lock(*keys: int) -> None:
    """Hold a PostgreSQL advisory lock on `keys` until the transaction ends.

    The ORM has no advisory locks, and a row lock would need a row to exist. SQLite needs
    none: its IMMEDIATE transactions already serialize writers.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_xact_lock({', '.join(['%s'] * len(keys))})", keys)


def results_prune(run_pks: Sequence[int], keep: Sequence[tuple[int, str]]) -> int:
    """Delete the results of these runs that are not among `keep` (run pk, external id).

    One statement whatever the number of pairs: the pairs travel as ONE JSON parameter. The
    ORM can only say "not one of these pairs" as an OR of one clause per pair, a statement
    (and a parameter list) that grows with the batch.
    """
    if not run_pks:
        return 0
    quote = connection.ops.quote_name
    table = quote(ExecutionResult._meta.db_table)
    payload = json.dumps([{"run_id": pk, "external_id": ext} for pk, ext in keep])
    if connection.vendor == "postgresql":
        kept = (
            "SELECT k.run_id, k.external_id FROM jsonb_to_recordset(%s::jsonb) "
            "AS k(run_id bigint, external_id text)"
        )
    else:
        kept = "SELECT j.value ->> '$.run_id', j.value ->> '$.external_id' FROM json_each(%s) AS j"
    placeholders = ", ".join(["%s"] * len(run_pks))
    sql = (
        f"DELETE FROM {table} WHERE run_id IN ({placeholders}) "
        f"AND (run_id, external_id) NOT IN ({kept})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*run_pks, payload])
        return cursor.rowcount
