"""Time one first sync pass of an emulated history, split into emulator time and Runboard time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench .venv/bin/python bench/sync_bench.py

Serves a Conductor and a Leapwork emulator on loopback (`manage.py emulate`, each in its own
process, fixed seed), and runs one first `orchestrator_sync` of each, at two history sizes. Time spent inside
the vendor client's calls (HTTP to the emulator and reading its JSON) is "emulator"; the rest of
the pass is "Runboard" (comparing, upserting, the database). It counts the SQL queries of each
pass and rewrites its own section of bench/RESULTS.md. The database's mirrored rows are deleted before each size.

    .venv/bin/python bench/sync_bench.py --latency 0.1 [--kind leapwork] [--history 60] [--repeat 3]

instead times a first sync of one emulator (Leapwork unless --kind says) with that many
seconds of emulated latency on every call (the emulator's fault switch: POST
/_emulator/faults {"path": ".*", "latency": 0.1}), its runs and their items fetched one at a
time (RUNBOARD_FETCH_CONCURRENCY=1) and then side by side (the default), and prints the table
(medians, ratios from the same round); RESULTS.md is left as is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "sync-bench-only")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.rounds import side_by_side_rounds  # noqa: E402
from runs.models import ExecutionResult, Orchestrator, Run  # noqa: E402
from runs.orchestrators.base import OrchestratorClient  # noqa: E402
from runs.services.session import orchestrator_client  # noqa: E402
from runs.services.sync import orchestrator_sync  # noqa: E402

CLIENT_CALLS = ("check", "list_schedules", "list_agents", "list_runs", "get_run")
# (label, {kind: history runs per schedule}); the large size is the one the issue asks for.
SIZES = {
    "small": {"conductor": 210, "leapwork": 10},
    "large": {"conductor": 840, "leapwork": 60},
}


READING = [
    "Reading: a pass writes each batch of up to 200 runs with a fixed number of statements (the "
    "results of a batch travel as one JSON parameter: `jsonb_to_recordset` on PostgreSQL, "
    "`json_each` on SQLite), so SQL queries grow with runs (Conductor: about 6 per 100 runs) "
    "and not with results: a batch of Leapwork runs (about 70 results each) needs the same "
    "statements as a batch of Conductor runs (about 11 each). "
    "`tests/services/test_sync.py::test_it_needs_no_more_queries_for_ten_times_the_results` "
    "asserts it (the same runs with 10 and 100 results each, the same number of queries). "
    "The pass's wall time is mostly the emulator's: Leapwork needs one HTTP call per run item.",
]


class TimedClient:
    """Forwards to a vendor client and adds up the time spent inside its calls."""

    def __init__(self, client: OrchestratorClient) -> None:
        self._client = client
        self.seconds = 0.0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in CLIENT_CALLS:
            return attribute
        return self._timed(attribute)

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        return call


@dataclass
class Pass:
    size: str
    kind: str
    runs: int
    results: int
    total: float
    emulator: float
    client_calls: int
    queries: int

    @property
    def runboard(self) -> float:
        return self.total - self.emulator

    @property
    def rate(self) -> float:
        return self.results / self.runboard if self.runboard else float("inf")


@contextlib.contextmanager
def emulator(kind: str, history: int) -> Iterator[str]:
    """`manage.py emulate` in its own process (a real orchestrator is another machine: its
    work must not compete with Runboard's for one interpreter); yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, str(ROOT / "manage.py"), "emulate", kind, "--port", str(port)]
    command += ["--seed", "11", "--history", str(history), "--pace", "1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline() if process.stdout else ""
        if "emulator at" not in first:
            raise SystemExit(f"the {kind} emulator did not start: {first!r}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def one_pass(size: str, kind: str, history: int) -> Pass:
    with emulator(kind, history) as base_url:
        orchestrator = Orchestrator.objects.create(
            kind=kind, name=f"bench-{kind}", base_url=base_url
        )
        client = TimedClient(orchestrator_client(orchestrator))
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            report = orchestrator_sync(orchestrator=orchestrator, client=client)
            total = time.perf_counter() - started
        client.close()
    if not report.ok:
        raise SystemExit(f"{kind}: {report.error}")
    return Pass(
        size=size,
        kind=kind,
        runs=Run.objects.filter(orchestrator=orchestrator).count(),
        results=ExecutionResult.objects.filter(run__orchestrator=orchestrator).count(),
        total=total,
        emulator=client.seconds,
        client_calls=client.calls,
        queries=len(queries.captured_queries),
    )


def machine() -> str:
    cpus = os.cpu_count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT 1")
        database = cursor.fetchone()[0] if connection.vendor == "postgresql" else "SQLite"
    return (
        f"{platform.node()} ({platform.machine()}, {cpus} CPUs, Python "
        f"{platform.python_version()}), {database.split(' on ')[0]}"
    )


def report(passes: list[Pass]) -> str:
    lines = [
        "# Sync benchmark",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine and database: {machine()}",
        "- Command: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench "
        ".venv/bin/python bench/sync_bench.py`",
        "- One first sync pass per emulator (`manage.py emulate KIND --seed 11 --pace 1 "
        "--history N`, each in its own process); emulator time is the time inside the vendor "
        "client's calls (HTTP on loopback to the emulator, and reading its JSON); Runboard time "
        "is the rest of the pass (comparing, bulk upserts, the database).",
        "",
        "| size | orchestrator | runs | results | client calls | SQL queries | pass (s) "
        "| emulator (s) | Runboard (s) | Runboard results/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in passes:
        lines.append(
            f"| {p.size} | {p.kind} | {p.runs} | {p.results} | {p.client_calls} | {p.queries} "
            f"| {p.total:.2f} | {p.emulator:.2f} | {p.runboard:.2f} | {p.rate:,.0f} |"
        )
    lines += ["", "Totals per size:", ""]
    lines += [
        "| size | runs | results | SQL queries | queries per run | queries per 1,000 results "
        "| Runboard (s) | Runboard results/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in dict.fromkeys(p.size for p in passes):
        group = [p for p in passes if p.size == size]
        runs = sum(p.runs for p in group)
        results = sum(p.results for p in group)
        queries = sum(p.queries for p in group)
        runboard = sum(p.runboard for p in group)
        lines.append(
            f"| {size} | {runs} | {results} | {queries} | {queries / runs:.3f} "
            f"| {1000 * queries / results:.2f} | {runboard:.2f} | {results / runboard:,.0f} |"
        )
    lines += ["", *READING]
    return "\n".join(lines) + "\n"


def latency_pass(
    kind: str, history: int, latency: float, concurrency: int
) -> tuple[float, int, int]:
    """(seconds, runs, results) of one first sync of `kind` with `latency` on every call."""
    settings.RUNBOARD_FETCH_CONCURRENCY = concurrency
    Orchestrator.objects.filter(name="bench-latency").delete()
    with emulator(kind, history) as base_url:
        faults = httpx.post(f"{base_url}/_emulator/faults", json={"path": ".*", "latency": latency})
        faults.raise_for_status()
        orchestrator = Orchestrator.objects.create(
            kind=kind, name="bench-latency", base_url=base_url
        )
        started = time.perf_counter()
        report = orchestrator_sync(orchestrator=orchestrator)
        elapsed = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"{kind}: {report.error}")
    runs = Run.objects.filter(orchestrator=orchestrator).count()
    results = ExecutionResult.objects.filter(run__orchestrator=orchestrator).count()
    orchestrator.delete()
    return elapsed, runs, results


def latency_rounds(kind: str, history: int, latency: float, repeat: int) -> None:
    default = settings.RUNBOARD_FETCH_CONCURRENCY
    synced: dict[str, int] = {}  # what every pass stores, as the last one counted it

    def timed(concurrency: int) -> float:
        seconds, synced["runs"], synced["results"] = latency_pass(
            kind, history, latency, concurrency
        )
        return seconds

    side_by_side_rounds(lambda: timed(1), lambda: timed(default), width=default, repeat=repeat)
    print(f"\n{kind}: each pass a first sync of {synced['runs']} runs, {synced['results']} results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,large", help="Comma-separated: small, large.")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds per emulated call.")
    parser.add_argument("--history", type=int, help="runs per schedule (default: the large size)")
    parser.add_argument("--kind", default="leapwork", help="the emulator --latency times")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.latency:
        settings.RUNBOARD_HISTORY_RUNS = 100_000
        call_command("migrate", verbosity=0)
        history = args.history or SIZES["large"][args.kind]
        latency_rounds(args.kind, history, args.latency, args.repeat)
        return
    if connection.vendor != "postgresql":
        print("Note: DATABASE_URL is not PostgreSQL; the issue's figures are for PostgreSQL.")
    # The whole history in one first pass, whatever the defaults bound it to.
    settings.RUNBOARD_HISTORY_RUNS = 100_000
    call_command("migrate", verbosity=0)
    # Warm up (imports, connections, query compilation) so the first measured pass is not
    # charged for what any long-running worker pays once.
    Orchestrator.objects.all().delete()
    one_pass("warm-up", "conductor", 2)
    passes = []
    for size in args.sizes.split(","):
        Orchestrator.objects.all().delete()
        for kind, history in SIZES[size].items():
            done = one_pass(size, kind, history)
            print(
                f"{size} {kind}: {done.runs} runs, {done.results} results, {done.queries} "
                f"queries, {done.total:.1f} s ({done.emulator:.1f} s emulator, "
                f"{done.runboard:.2f} s Runboard: {done.rate:,.0f} results/s)",
                flush=True,
            )
            passes.append(done)
    Orchestrator.objects.all().delete()
    text = report(passes)
    _replace_section(Path(args.output), text)
    print(text)


def _replace_section(path: Path, section: str) -> None:
    """Put `section` (it starts with its own "# " heading) in place of the same heading's
    section in `path`, leaving the other benches' sections as they are."""
    heading = section.splitlines()[0]
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    start = next((n for n, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        path.write_text("".join(lines) + ("\n" if lines else "") + section)
        return
    end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith("# ")), len(lines))
    rest = lines[end:]
    path.write_text("".join(lines[:start]) + section + ("\n" if rest else "") + "".join(rest))


if __name__ == "__main__":
    main()
