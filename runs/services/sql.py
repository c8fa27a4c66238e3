"""The SQL the ORM cannot write, in one place, each statement saying why.

Everything else goes through the ORM (bulk_create with update_conflicts for the upserts).
Here: the advisory lock a sync batch holds, pruning results gone upstream, recounting every
agent in one statement (agent_counts_rebuild) and every run's results (run_counts_rebuild),
writing a batch's runs' counts (run_counts_write) and agents (run_agents_write, and their
repair run_agents_rebuild), a batch's results on PostgreSQL, which COPY streams
(results_upsert), and the failure groups a batch saw (failure_groups_upsert).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone
from psycopg.types.json import JsonbDumper

from runs.models import Agent, ExecutionResult, FailureGroup, Run, RunAgent


def advisory_xact_lock(*keys: int) -> None:
    """Hold a PostgreSQL advisory lock on `keys` until the transaction ends.

    The ORM has no advisory locks, and a row lock would need a row to exist. SQLite needs
    none: its IMMEDIATE transactions already serialize writers.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_xact_lock({', '.join(['%s'] * len(keys))})", keys)


def _json_rows(**columns: str) -> str:
    """A SELECT of the rows ONE JSON parameter holds (a list of objects), a column per key
    with its PostgreSQL type: jsonb_to_recordset there, json_each on SQLite (where a jsonb
    column stays JSON text). What lets a batch travel as one parameter, not one per value."""
    if connection.vendor == "postgresql":
        types = ", ".join(f"{name} {pg_type}" for name, pg_type in columns.items())
        return f"SELECT {', '.join(columns)} FROM jsonb_to_recordset(%s::jsonb) AS k({types})"
    picked = ", ".join(
        f"j.value {'->' if pg_type == 'jsonb' else '->>'} '$.{name}' AS {name}"
        for name, pg_type in columns.items()
    )
    return f"SELECT {picked} FROM json_each(%s) AS j"


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
    kept = _json_rows(run_id="bigint", external_id="text")
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


def run_counts_rebuild(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Count every run's results by agent and status anew (Run.result_counts, which sync keeps
    for the runs it writes): a repair, and the first fill of runs stored before it was kept.

    One UPDATE of every run from one aggregate: the ORM cannot build a JSON array per group.
    """
    db = connections[using]
    quote = db.ops.quote_name
    runs, results = quote(Run._meta.db_table), quote(ExecutionResult._meta.db_table)
    grouped = (
        "SELECT agent_id, status, COUNT(*) AS n, "
        "SUM(CASE WHEN is_data_driven THEN 1 ELSE 0 END) AS dd "
        f"FROM {results} WHERE run_id = {runs}.id GROUP BY agent_id, status"
    )
    if db.vendor == "postgresql":
        counts = (
            "SELECT COALESCE(jsonb_agg(jsonb_build_array(status, agent_id, n, dd) "
            f"ORDER BY COALESCE(agent_id, 0), status), '[]'::jsonb) FROM ({grouped}) g"
        )
    else:
        counts = (
            "SELECT json_group_array(json_array(status, agent_id, n, dd)) FROM "
            f"({grouped} ORDER BY COALESCE(agent_id, 0), status) g"
        )
    with db.cursor() as cursor:
        cursor.execute(f"UPDATE {runs} SET result_counts = ({counts})")
        return cursor.rowcount


def run_counts_write(counts: Mapping[int, list[list[Any]]]) -> int:
    """Write these runs' result_counts (agent_counts.run_counts), a batch's in one statement.

    The runs and their counts travel as ONE JSON parameter. The ORM's bulk_update says it as a
    CASE with a branch and two parameters per run, a statement that grows with the batch:
    44-52 ms to compile and run for a batch of 200 runs, against 19 ms for this one.
    """
    if not counts:
        return 0
    quote = connection.ops.quote_name
    runs = quote(Run._meta.db_table)
    payload = json.dumps([{"id": pk, "counts": rows} for pk, rows in counts.items()])
    given = _json_rows(id="bigint", counts="jsonb")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {runs} SET result_counts = given.counts FROM ({given}) AS given "
            f"WHERE {runs}.id = given.id",
            [payload],
        )
        return cursor.rowcount


def run_agents_write(pairs: Collection[tuple[int, int]], *, stored_runs: Collection[int]) -> None:
    """Keep RunAgent for a batch: `pairs` (run pk, agent pk) are every agent the batch's runs'
    results ran on, `stored_runs` those of its runs stored before (whose old pairs go first).
    Each row takes its run's start from the run. Two statements at most, the pairs as ONE
    JSON parameter (bulk_create makes an instance and a parameter per value of each pair)."""
    quote = connection.ops.quote_name
    table, runs = quote(RunAgent._meta.db_table), quote(Run._meta.db_table)
    with connection.cursor() as cursor:
        if stored_runs:
            placeholders = ", ".join(["%s"] * len(stored_runs))
            cursor.execute(f"DELETE FROM {table} WHERE run_id IN ({placeholders})", [*stored_runs])
        if not pairs:
            return
        payload = json.dumps([{"run": run, "agent": agent} for run, agent in sorted(pairs)])
        given = _json_rows(run="bigint", agent="bigint")
        cursor.execute(
            f"INSERT INTO {table} (run_id, agent_id, started_at) "
            f"SELECT given.run, given.agent, {runs}.started_at FROM ({given}) AS given "
            f"INNER JOIN {runs} ON {runs}.id = given.run",
            [payload],
        )


def run_agents_rebuild(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Every run's agents anew from its results (RunAgent, which sync keeps for the runs it
    writes): a repair. One DELETE and one INSERT ... SELECT DISTINCT over the results."""
    db = connections[using]
    quote = db.ops.quote_name
    table = quote(RunAgent._meta.db_table)
    runs, results = quote(Run._meta.db_table), quote(ExecutionResult._meta.db_table)
    with db.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
        cursor.execute(
            f"INSERT INTO {table} (run_id, agent_id, started_at) "
            f"SELECT DISTINCT res.run_id, res.agent_id, ran.started_at FROM {results} res "
            f"INNER JOIN {runs} ran ON ran.id = res.run_id WHERE res.agent_id IS NOT NULL"
        )
        return cursor.rowcount


RESULT_KEY = ("run_id", "external_id")


def results_upsert(
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    update: Sequence[str],
    new_runs: Collection[int] = (),
) -> int:
    """Insert or update results by (run, external id); return how many rows were written.

    `rows` are tuples in `columns` order (attnames; the key among them), values as the ORM
    takes them. On PostgreSQL the rows are streamed by COPY: the ORM has no COPY, and its
    bulk_create builds a model instance per row, prepares every value in Python and compiles
    one statement with a parameter per value (seconds for a batch of 20,000 results). The
    results of `new_runs` (runs this batch created: nothing of theirs can be stored yet) go
    straight into the table; the others into a staging table, merged by one INSERT ... SELECT
    ... ON CONFLICT. Elsewhere (SQLite) it is the ORM's upsert. A row repeated by key: the
    last one stands, as with the ORM.
    """
    key = [columns.index(name) for name in RESULT_KEY]
    by_key = {(row[key[0]], row[key[1]]): row for row in rows}
    if not by_key:
        return 0
    if connection.vendor != "postgresql":
        from runs.services.sync.catalog import upsert

        dicts = (dict(zip(columns, row, strict=True)) for row in by_key.values())
        return upsert(ExecutionResult, dicts, unique=RESULT_KEY, update=update)
    fresh = [row for row in by_key.values() if row[key[0]] in new_runs]
    stored = [row for row in by_key.values() if row[key[0]] not in new_runs]
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        written = _copy(cursor, _quoted_table(), columns, fresh) if fresh else 0
        if stored:
            written += _results_copy_merge(cursor, columns, stored, update)
    return written


def _quoted_table() -> str:
    return connection.ops.quote_name(ExecutionResult._meta.db_table)


def _copy(cursor: Any, target: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
    """COPY `rows` into `target`: one statement, logged like any other."""
    names = ", ".join(connection.ops.quote_name(name) for name in columns)
    copy_sql = f"COPY {target} ({names}) FROM STDIN"
    raw = cursor.cursor
    raw.adapters.register_dumper(dict, _JsonObjectDumper)
    raw.adapters.register_dumper(list, _JsonArrayDumper)
    written = 0
    with _logged(cursor, copy_sql), connection.wrap_database_errors, raw.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def _results_copy_merge(
    cursor: Any, columns: Sequence[str], rows: Iterable[tuple[Any, ...]], update: Sequence[str]
) -> int:
    """Three statements whatever the number of rows: make sure of the staging table, COPY,
    merge. The merge empties the staging table as it reads it, so a second batch in one
    transaction starts from nothing; at commit PostgreSQL truncates it anyway."""
    quote = connection.ops.quote_name
    table = _quoted_table()
    names = ", ".join(quote(name) for name in columns)
    # Named by its columns: a connection kept across a deploy never reuses a stale shape.
    digest = hashlib.sha1(names.encode(), usedforsecurity=False).hexdigest()[:10]
    stage = quote(f"runboard_results_stage_{digest}")
    sets = ", ".join(f"{quote(name)} = EXCLUDED.{quote(name)}" for name in update)
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS "
        f"AS SELECT {names} FROM {table} WITH NO DATA"
    )
    _copy(cursor, stage, columns, rows)
    key = ", ".join(quote(name) for name in RESULT_KEY)
    cursor.execute(
        f"WITH staged AS (DELETE FROM {stage} RETURNING {names}) "
        f"INSERT INTO {table} ({names}) SELECT {names} FROM staged ORDER BY {key} "
        f"ON CONFLICT ({key}) DO {'UPDATE SET ' + sets if sets else 'NOTHING'}"
    )
    return cursor.rowcount


class _JsonObjectDumper(JsonbDumper):
    """A dict goes to a jsonb column as JSON text (json.dumps, as the ORM sends it); most
    results carry an empty one, which costs nothing."""

    empty = b"{}"

    def dump(self, obj: Any) -> bytes | None:
        return json.dumps(obj).encode() if obj else self.empty


class _JsonArrayDumper(_JsonObjectDumper):
    empty = b"[]"


def _logged(cursor: Any, sql: str) -> contextlib.AbstractContextManager[None]:
    """Django logs what its cursor executes; COPY goes to the driver's cursor, so it is
    logged here (query counts and budgets see it like any statement)."""
    debug_sql = getattr(cursor, "debug_sql", None)
    return debug_sql(sql) if debug_sql else contextlib.nullcontext()


def failure_groups_upsert(groups: Sequence[tuple[str, int, str, Any, Any]]) -> dict[str, int]:
    """Insert the failure groups (fingerprint, version, normalized, first, last seen) a batch
    saw, or widen the span they were seen in: one statement (per thousand). The ORM's upsert can only
    overwrite a column, not keep the earlier of two times (a run synced late may be older).
    Returns {fingerprint: pk} of the groups this made (causes never seen before)."""
    created: dict[str, int] = {}
    for start in range(0, len(groups), GROUPS_PER_STATEMENT):
        created.update(_failure_groups_upsert(groups[start : start + GROUPS_PER_STATEMENT]))
    return created


# Six parameters a group: well under SQLite's limit of 32,766 per statement.
GROUPS_PER_STATEMENT = 1000


def _failure_groups_upsert(groups: Sequence[tuple[str, int, str, Any, Any]]) -> dict[str, int]:
    quote = connection.ops.quote_name
    table = quote(FailureGroup._meta.db_table)
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    first, last = quote("first_seen_at"), quote("last_seen_at")
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(groups))
    when = connection.ops.adapt_datetimefield_value
    now = when(timezone.now())
    params = [
        value
        for fingerprint, version, normalized, first_at, last_at in sorted(groups)
        for value in (fingerprint, version, normalized, when(first_at), when(last_at), now)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (fingerprint, version, normalized, {first}, {last}, created_at) "
            f"VALUES {rows} ON CONFLICT (fingerprint) DO UPDATE SET "
            f"{first} = {least}(COALESCE({table}.{first}, EXCLUDED.{first}), "
            f"COALESCE(EXCLUDED.{first}, {table}.{first})), "
            f"{last} = {greatest}(COALESCE({table}.{last}, EXCLUDED.{last}), "
            f"COALESCE(EXCLUDED.{last}, {table}.{last})) "
            # An update keeps created_at: a row stamped with this statement's `now` is new.
            "RETURNING id, fingerprint, created_at",
            params,
        )
        rows = cursor.fetchall()
    # SQLite's driver hands the time back parsed (naive): compare it as it was sent.
    return {fingerprint: pk for pk, fingerprint, at in rows if at == now or when(at) == now}
