"""The SQL the ORM cannot write, in one place, each statement saying why.

Everything else goes through the ORM (bulk_create with update_conflicts for the upserts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS, connection, connections

from runs.models import Agent, ExecutionResult


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


def agent_counts_rebuild(*, failure_statuses: Sequence[str], using: str = DEFAULT_DB_ALIAS) -> int:
    """Recount every agent's runs, results, failures and newest result from scratch.

    One UPDATE … FROM one aggregate over all results: the ORM can only write one correlated
    subquery per counter, each walking every agent's results again (and COUNT(DISTINCT) per
    agent is the 500 MB sort this replaces). Agents without results join as zeros.
    """
    db = connections[using]
    quote = db.ops.quote_name
    agents = quote(Agent._meta.db_table)
    results = quote(ExecutionResult._meta.db_table)
    failed = ", ".join(["%s"] * len(failure_statuses)) or "NULL"
    sql = (
        f"UPDATE {agents} SET run_count = c.runs, result_count = c.results, "
        "failed_count = c.failed, last_seen_at = c.last "
        "FROM (SELECT a.id AS agent_id, COALESCE(t.runs, 0) AS runs, "
        "COALESCE(t.results, 0) AS results, COALESCE(t.failed, 0) AS failed, t.last AS last "
        f"FROM {agents} a LEFT JOIN (SELECT agent_id, COUNT(DISTINCT run_id) AS runs, "
        "COUNT(*) AS results, "
        f"SUM(CASE WHEN status IN ({failed}) THEN 1 ELSE 0 END) AS failed, "
        f"MAX(started_at) AS last FROM {results} WHERE agent_id IS NOT NULL "
        "GROUP BY agent_id) t ON t.agent_id = a.id) c "
        f"WHERE {agents}.id = c.agent_id"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, list(failure_statuses))
        return cursor.rowcount
