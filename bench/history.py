"""Generate a long history straight into the database, set-based: 100k runs in about a minute.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench \
        .venv/bin/python bench/history.py --runs 100000

The shape of issue 13: three orchestrators (one per kind), 150 schedules, 40 agents, 5,000 test
cases, `--runs` runs of 20 results each plus 12 big runs of 10,000 results, statuses mostly
passed with a tail of failures whose messages come from a small catalogue of five causes
(`--causes N` spreads them over N causes instead: a few common, a long tail seen a handful of
times). Runs start `--every` 37 seconds back from now (100k runs span 43 days; `--every 300`
makes 10k runs span 35 days, so that 10x the runs is 10x the days, with the failures pages'
30-day window full at both sizes). Every row is written by `INSERT … SELECT` over a number
series (no Python loop per row), then each run's counts are set from its results in one
`UPDATE … FROM`. Works on PostgreSQL and SQLite. Everything mirrored is deleted first; users,
sessions and tasks are kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from runs.models import Orchestrator, OrchestratorKind  # noqa: E402
from runs.services.agent_counts import agent_counts_rebuild  # noqa: E402
from runs.services.fingerprints import FINGERPRINT_VERSION, failure_fingerprint  # noqa: E402
from runs.services.sync import schedules_touch  # noqa: E402

KINDS = list(OrchestratorKind.values)
# Failure messages shared across vendors, so grouping by cause has something to find.
FAILURES = [
    "Element not found: #checkout-button after 30000 ms",
    "Timeout waiting for page load of https://shop.example.com/cart (45 s)",
    "Assertion failed: expected total 104.50 but was 0.00",
    "Connection refused: db-7.internal:5432",
    "HTTP 503 from payments-api /v2/charge (request 8f3a-22c1)",
]


def series(n: int) -> str:
    """A FROM item yielding i = 1..n."""
    if connection.vendor == "postgresql":
        return f"generate_series(1, {int(n)}) AS g(i)"
    return (
        f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {int(n)}) "
        "SELECT i FROM s) AS g"
    )


def ago(seconds: str) -> str:
    """A timestamp `seconds` (an SQL expression) before the parameter %(now)s."""
    if connection.vendor == "postgresql":
        return f"(%(now)s::timestamptz - make_interval(secs => ({seconds})))"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', %(now)s, '-' || ({seconds}) || ' seconds')"


def after(timestamp: str, seconds: str) -> str:
    if connection.vendor == "postgresql":
        return f"({timestamp} + make_interval(secs => ({seconds})))"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {timestamp}, '+' || ({seconds}) || ' seconds')"


def duration(seconds: str) -> str:
    if connection.vendor == "postgresql":
        return f"make_interval(secs => ({seconds}))"
    return f"(({seconds}) * 1000000)"


def status_of(hash_: str) -> str:
    """Three runs in ten have failures: 85% passed, 10% failed, 3% error, 2% cancelled."""
    return (
        f"CASE WHEN r.id %% 10 >= 3 OR {hash_} < 85 THEN 'passed' WHEN {hash_} < 95 THEN 'failed' "
        f"WHEN {hash_} < 98 THEN 'error' ELSE 'cancelled' END"
    )


def execute(sql: str, params: dict) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def clear() -> None:
    # Schedules and runs name each other (a run's schedule, a schedule's latest run).
    execute("UPDATE runs_schedule SET latest_run_id = NULL", {})
    for table in (
        "runs_executionresult",
        "runs_runagent",
        "runs_run",
        "runs_failuregroup",
        "runs_rerunrequest",
        "runs_testcase",
        "runs_agent",
        "runs_schedule",
        "runs_orchestrator",
    ):
        execute(f"DELETE FROM {table}", {})


def seed_estate(*, schedules: int, agents: int, cases: int, now: datetime) -> list[int]:
    orchestrators = [
        Orchestrator.objects.create(
            kind=kind, name=f"bench-{kind}", base_url=f"http://127.0.0.1:9/{kind}"
        ).pk
        for kind in KINDS
    ]
    ids = ", ".join(map(str, orchestrators))
    pick = f"(ARRAY[{ids}])[1 + i %% 3]" if connection.vendor == "postgresql" else None
    if pick is None:  # SQLite has no arrays: a CASE over the three ids.
        pick = f"CASE i %% 3 {' '.join(f'WHEN {n} THEN {pk}' for n, pk in enumerate(orchestrators))} END"
    params = {"now": now}
    execute(
        "INSERT INTO runs_schedule (orchestrator_id, external_id, title, description, is_enabled,"
        " is_temporary, steps, last_run_at)"
        f" SELECT {pick}, 'schedule-' || i, 'Schedule ' || i || ' nightly', '', true, false,"
        f" '[]', NULL FROM {series(schedules)}",
        params,
    )
    execute(
        "INSERT INTO runs_agent (orchestrator_id, external_id, title, host)"
        f" SELECT {pick}, 'agent-' || i, 'Agent ' || i, 'host-' || i || '.lab'"
        f" FROM {series(agents)}",
        params,
    )
    execute(
        "INSERT INTO runs_testcase (orchestrator_id, external_id, title, suite)"
        f" SELECT {pick}, 'case-' || i, 'Checkout case ' || i, 'Suite ' || (i %% 40)"
        f" FROM {series(cases)}",
        params,
    )
    return orchestrators


def seed_runs(*, runs: int, big_runs: int, every_s: int, now: datetime) -> None:
    """Runs one every `every_s` seconds back from now; the big ones spread among them."""
    every = max(runs // max(big_runs, 1), 1)
    execute(
        "INSERT INTO runs_run (orchestrator_id, schedule_id, vendor_schedule_id, external_id,"
        " attempt, status, vendor_status, started_at, finished_at, duration, variables, trigger,"
        " vendor_triggered_by, build, environment, version, correlation_id, message,"
        " total_count, passed_count, failed_count, other_count, queued_count, running_count,"
        " parent_external_id, latest_sibling_id, fingerprint, is_frozen, synced_at)"
        " SELECT s.orchestrator_id, s.id, NULL, 'run-' || i, 1, 'passed', 'Finished',"
        f" {ago(f'i * {every_s}')}, {ago(f'i * {every_s} - 20 - i %% 600')},"
        f" {duration('20 + i %% 600')},"
        " '{}', CASE WHEN i %% 10 = 0 THEN 'manual' ELSE 'scheduled' END, '',"
        " 'build-' || (i / 50), 'staging', '1.' || (i %% 7), '', '', 0, 0, 0, 0, 0, 0,"
        f" '', '', '', false, %(now)s FROM {series(runs + big_runs)}"
        " JOIN runs_schedule s ON s.external_id = 'schedule-' || (1 + i %% 150)",
        {"now": now},
    )
    # Mark which runs are big: every `every`-th run, up to big_runs of them.
    execute(
        "UPDATE runs_run SET environment = 'big' WHERE external_id IN ("
        f" SELECT 'run-' || (i * {every}) FROM {series(big_runs)})",
        {},
    )


def seed_messages(*, causes: int) -> None:
    """The failure messages, numbered, with each one's cause as sync fingerprints it: the
    catalogue's five, or `causes` variants of them (a step's name tells each apart). A
    temporary table, read by seed_results and seed_fingerprints."""
    texts = (
        FAILURES
        if not causes
        else [f"{FAILURES[k % len(FAILURES)]} in step {letters(k)}" for k in range(causes)]
    )
    execute(
        "CREATE TEMP TABLE bench_message (k integer PRIMARY KEY, message text,"
        " fingerprint varchar(16), normalized text)",
        {},
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO bench_message VALUES (%s, %s, %s, %s)",
            [(k, text, *failure_fingerprint(text)) for k, text in enumerate(texts)],
        )


def letters(k: int) -> str:
    """k in letters (aaa, baa, ...): numbers would be normalized away."""
    return "".join(chr(97 + k // 26**n % 26) for n in range(3))


def message_pick(causes: int) -> str:
    """Which message a result's failure has (an SQL expression of r.id and i): the catalogue's
    in turn, or skewed over `causes` (the cube of a uniform draw: the first causes are
    common, most are seldom seen)."""
    if not causes:
        return f"(r.id + i) %% {len(FAILURES)}"
    draw = "((r.id * 7919 + i * 104729) %% 1000)"
    return f"({draw} * {draw} * {draw} * {int(causes)}) / 1000000000"


def seed_results(
    *, per_run: int, big_size: int, cases: int, agents: int, causes: int, now: datetime
) -> None:
    hash_ = "((r.id * 7 + i * 13) %% 100)"
    failed = f"r.id %% 10 < 3 AND {hash_} >= 85"  # a message; a cause unless cancelled
    for size, which in ((per_run, "<>"), (big_size, "=")):
        execute(
            "INSERT INTO runs_executionresult (run_id, test_case_id, agent_id, external_id,"
            " case_key, status, vendor_status, started_at, finished_at, duration, message,"
            " log_excerpt, seq, retry_count, input, is_data_driven, iterations, fingerprint,"
            " fingerprint_version)"
            f" SELECT r.id, c.id, a.id, 'item-' || i, c.external_id, {status_of(hash_)}, '',"
            f" {after('r.started_at', 'i')}, {after('r.started_at', 'i + 3')}, {duration('3')},"
            f" CASE WHEN {failed} THEN m.message ELSE '' END, '', i, 0, '{{}}', false, '[]',"
            f" CASE WHEN {failed} AND {hash_} < 98 THEN m.fingerprint ELSE '' END,"
            f" CASE WHEN {failed} AND {hash_} < 98 THEN {FINGERPRINT_VERSION} ELSE 0 END"
            f" FROM runs_run r CROSS JOIN {series(size)}"
            f" JOIN runs_testcase c ON c.external_id = 'case-' || (1 + (r.id * 31 + i) %% {cases})"
            f" JOIN runs_agent a ON a.external_id = 'agent-' || (1 + (r.id + i / 25) %% {agents})"
            f" JOIN bench_message m ON m.k = {message_pick(causes)}"
            f" WHERE r.environment {which} 'big'",
            {"now": now},
        )


def seed_counts() -> None:
    """Each run's counts and status from its results, in one statement."""
    execute(
        "UPDATE runs_run SET total_count = agg.total, passed_count = agg.passed,"
        " failed_count = agg.failed, other_count = agg.other,"
        " status = CASE WHEN agg.failed > 0 THEN 'failed' ELSE 'passed' END"
        " FROM (SELECT run_id,"
        " COUNT(*) AS total,"
        " SUM(CASE WHEN status = 'passed' THEN 1 ELSE 0 END) AS passed,"
        " SUM(CASE WHEN status IN ('failed', 'error') THEN 1 ELSE 0 END) AS failed,"
        " SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) AS other"
        " FROM runs_executionresult GROUP BY run_id) AS agg"
        " WHERE runs_run.id = agg.run_id",
        {},
    )
    schedules_touch()  # each schedule's newest run, as the run writer keeps it


def seed_fingerprints() -> None:
    """Each cause's group with the span its failures were seen in, in one statement (the
    failures got their fingerprints as they were written, as sync writes them)."""
    execute(
        "INSERT INTO runs_failuregroup (fingerprint, version, normalized, first_seen_at,"
        " last_seen_at, created_at) SELECT m.fingerprint, %(version)s, m.normalized,"
        " MIN(r.started_at), MAX(r.started_at), %(now)s"
        " FROM runs_executionresult r JOIN bench_message m ON m.fingerprint = r.fingerprint"
        " WHERE r.fingerprint <> '' GROUP BY m.fingerprint, m.normalized",
        {"version": FINGERPRINT_VERSION, "now": datetime.now(UTC)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs of --per-run results")
    parser.add_argument("--per-run", type=int, default=20)
    parser.add_argument("--big-runs", type=int, default=12)
    parser.add_argument("--big-size", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=5_000)
    parser.add_argument("--schedules", type=int, default=150)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument(
        "--causes", type=int, default=0, help="causes of failure (0: the catalogue's five)"
    )
    parser.add_argument(
        "--every",
        type=int,
        default=37,
        help="seconds between runs: 37 packs 100k runs into 43 days; 300 spreads 10k over 35",
    )
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    steps = [
        ("clear", clear),
        (
            "estate",
            lambda: seed_estate(
                schedules=args.schedules, agents=args.agents, cases=args.cases, now=now
            ),
        ),
        ("messages", lambda: seed_messages(causes=args.causes)),
        (
            "runs",
            lambda: seed_runs(runs=args.runs, big_runs=args.big_runs, every_s=args.every, now=now),
        ),
        (
            "results",
            lambda: seed_results(
                per_run=args.per_run,
                big_size=args.big_size,
                cases=args.cases,
                agents=args.agents,
                causes=args.causes,
                now=now,
            ),
        ),
        ("counts", seed_counts),
        ("fingerprints", seed_fingerprints),
        # The rows were written by SQL, not sync: the agents' counters are recounted once.
        ("agent counts", agent_counts_rebuild),
    ]
    for name, step in steps:
        begun = time.perf_counter()
        with transaction.atomic():
            step()
        print(f"{name}: {time.perf_counter() - begun:.1f} s", flush=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"total: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
