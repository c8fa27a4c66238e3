"""Sync's own share of an ingest against the floor: COPY of the same result rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench \
        .venv/bin/python bench/ingest_bench.py [--batches 5] [--runs 200] [--results 100]

Builds run snapshots in memory (what a vendor client hands sync, so no HTTP and no JSON
parsing is timed), then times `runs_store` writing them batch by batch into a fresh
orchestrator: classifying, building rows, the bulk statements and their indexes. The floor
is PostgreSQL's COPY of the rows sync stored into a table shaped like the results table, its
indexes and foreign keys included, commit timed as sync's is. Prints results per second of
each, and their ratio; medians of --repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from runs.models import ExecutionResult, Orchestrator  # noqa: E402
from runs.orchestrators.base import ResultSnapshot, RunSnapshot  # noqa: E402
from runs.services.sync import runs_store  # noqa: E402
from runs.status import Status  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)


def snapshots(batch: int, runs: int, results: int) -> list[RunSnapshot]:
    made = []
    for r in range(runs):
        started = START + timedelta(minutes=batch * runs + r)
        made.append(
            RunSnapshot(
                external_id=f"run-{batch}-{r}",
                schedule_id=f"schedule-{r % 15}",
                schedule_title=f"Schedule {r % 15}",
                status=Status.FAILED,
                started_at=started,
                finished_at=started + timedelta(minutes=5),
                duration=timedelta(minutes=5),
                results=tuple(
                    ResultSnapshot(
                        external_id=str(uuid.UUID(int=batch << 40 | r << 20 | i)),
                        case_key=f"case-{i}",
                        case_title=f"Checkout case {i}",
                        status=Status.FAILED if i % 9 == 0 else Status.PASSED,
                        agent_id=f"agent-{i % 8}",
                        agent_title=f"Agent {i % 8}",
                        started_at=started + timedelta(seconds=i),
                        finished_at=started + timedelta(seconds=i + 2),
                        duration=timedelta(seconds=2),
                        # As a vendor words it: the same few causes, each time with its own
                        # details (what sync's fingerprint reads).
                        message=(
                            f"Timeout after {10 + r % 20}s waiting for page "
                            f"https://staging.shop.example.com/orders/{batch}{r}{i} to load "
                            f"(agent 10.0.{r % 250}.{i})"
                            if i % 9 == 0
                            else ""
                        ),
                        seq=i,
                    )
                    for i in range(results)
                ),
            )
        )
    return made


def ingest(batches: list[list[RunSnapshot]]) -> tuple[float, float]:
    """Seconds runs_store takes for every batch into a fresh orchestrator, and seconds COPY
    takes for the very rows it stored (the floor)."""
    Orchestrator.objects.filter(name="ingest-bench").delete()
    orchestrator = Orchestrator.objects.create(
        kind="leapwork", name="ingest-bench", base_url="http://127.0.0.1:9"
    )
    begun = time.perf_counter()
    for batch in batches:
        runs_store(orchestrator=orchestrator, snapshots=batch)
    elapsed = time.perf_counter() - begun
    floor = copy_floor(orchestrator)
    orchestrator.delete()
    return elapsed, floor


COLUMNS = [f.column for f in ExecutionResult._meta.concrete_fields if not f.primary_key]


def copy_floor(orchestrator: Orchestrator) -> float:
    """Seconds COPY takes to write the rows sync stored into a table shaped like the results
    table: its indexes, and its foreign keys checked at commit as Django declares them; the
    commit is timed too, as sync's is."""
    stored = ExecutionResult.objects.filter(run__orchestrator=orchestrator).order_by("pk")
    # JSON values as text, ready for COPY (preparing rows is not timed).
    rows = [
        tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in row)
        for row in stored.values_list(*COLUMNS)
    ]
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS ingest_floor")  # left by an interrupted run
        cursor.execute(
            "CREATE TABLE ingest_floor (LIKE runs_executionresult INCLUDING DEFAULTS "
            "INCLUDING IDENTITY INCLUDING INDEXES INCLUDING CONSTRAINTS)"
        )
        for column, target in (
            ("run_id", "runs_run"),
            ("test_case_id", "runs_testcase"),
            ("agent_id", "runs_agent"),
        ):
            cursor.execute(
                f"ALTER TABLE ingest_floor ADD FOREIGN KEY ({column}) REFERENCES {target} (id) "
                "DEFERRABLE INITIALLY DEFERRED"
            )
    begun = time.perf_counter()
    copy_sql = f"COPY ingest_floor ({', '.join(COLUMNS)}) FROM STDIN"
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(copy_sql) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    elapsed = time.perf_counter() - begun
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE ingest_floor")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200, help="runs per batch")
    parser.add_argument("--results", type=int, default=100, help="results per run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("The COPY floor needs PostgreSQL: set DATABASE_URL.")
    batches = [snapshots(b, args.runs, args.results) for b in range(args.batches)]
    total = args.batches * args.runs * args.results
    sync_rates, copy_rates = [], []
    print("| round | sync results/s | COPY rows/s | sync ÷ COPY |")
    print("|---|---:|---:|---:|")
    for round_ in range(1, args.repeat + 1):
        sync_seconds, copy_seconds = ingest(batches)
        sync_rates.append(total / sync_seconds)
        copy_rates.append(total / copy_seconds)
        ratio = sync_rates[-1] / copy_rates[-1]
        print(f"| {round_} | {sync_rates[-1]:,.0f} | {copy_rates[-1]:,.0f} | {ratio:.2f} |")
    sync, copy = statistics.median(sync_rates), statistics.median(copy_rates)
    print(f"| median | {sync:,.0f} | {copy:,.0f} | {sync / copy:.2f} |")
    print(f"\n{total:,} results in {args.batches} batches of {args.runs} runs.")


if __name__ == "__main__":
    main()
