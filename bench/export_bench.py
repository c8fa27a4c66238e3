"""Time the CSV exports and measure their memory: the whole history against a tenth of it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench \
        .venv/bin/python bench/export_bench.py [--repeat 3] [--out bench/exports.md]

Run `bench/history.py` first. Each export is requested in-process through Django's test client,
logged in, with production settings, and read to its end as a browser would; every export
runs in a process of its own (the bench starts itself with `--one NAME`), so the growth of the
process's peak resident memory (ru_maxrss, which counts the database driver's buffers too) is
that export's own. Times are medians of `--repeat` reads after one warm-up: to the first byte
(the header row), to the first data row (the query has run), and to the end. Then one read
under tracemalloc gives the peak of Python's allocations, and one under a query log the
number of queries. Streaming holds memory constant: the whole history should need about what
a tenth of it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from runs.models import ExecutionResult, Orchestrator, Run  # noqa: E402

CASES = (
    "history",
    "history, one orchestrator (a third)",
    "history, manual (a tenth)",
    "results, big run",
    "results, small run",
)


def url_of(name: str) -> str:
    if "orchestrator" in name:
        return f"/runs/export.csv?orchestrator={Orchestrator.objects.order_by('id')[0].name}"
    if name.startswith("history"):
        return "/runs/export.csv" + ("?trigger=manual" if "manual" in name else "")
    runs = Run.objects.filter(environment="big") if "big" in name else Run.objects
    run = runs.exclude(total_count=0).order_by("-started_at").first()
    return f"/runs/{run.pk}/results.csv"


def read(client: Client, url: str) -> dict:
    """One export read to its end: seconds to its first byte, first row and end; rows; bytes."""
    begun = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200 and response.streaming, response.status_code
    first_byte = first_row = None
    lines = size = 0
    for piece in response.streaming_content:
        now = time.perf_counter() - begun
        if first_byte is None:
            first_byte = now
        elif first_row is None:
            first_row = now
        lines += piece.count(b"\n")
        size += len(piece)
    response.close()
    total = time.perf_counter() - begun
    return {"first_byte": first_byte, "first_row": first_row or total, "total": total,
            "rows": lines - 1, "bytes": size}  # fmt: skip


def maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux


def one(name: str, repeat: int) -> dict:
    """Measure one export in this process (the bench's child)."""
    user, _ = get_user_model().objects.get_or_create(username="bench")
    client = Client()
    client.force_login(user)
    url = url_of(name)
    # An export of no rows loads the code; the peak grows from there by what this export holds.
    read(client, "/runs/export.csv?q=no-such-run")
    rss_before = maxrss_kb()
    read(client, url)  # warm: the database's cache
    reads = [read(client, url) for _ in range(repeat)]
    rss_growth = maxrss_kb() - rss_before
    tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    read(client, url)
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    with CaptureQueriesContext(connection) as captured:
        read(client, url)
    median = {key: statistics.median(r[key] for r in reads) for key in reads[0]}
    return {**median, "url": url, "rss_growth_kb": rss_growth, "traced_peak": peak,
            "queries": len(captured.captured_queries)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the table to this file too")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.repeat)))
        return
    runs, results = Run.objects.count(), ExecutionResult.objects.count()
    lines = [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}); "
        f"database: {connection.vendor} {connection.Database.__name__}",
        f"- Data: {runs:,} runs, {results:,} results; median of {args.repeat} warm reads",
        "",
        "| export | rows | queries | first byte (ms) | first row (ms) | total (ms) | rows/s "
        "| MB | peak RSS growth (MB) | traced peak (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for name in CASES:
        command = [sys.executable, __file__, "--one", name, "--repeat", str(args.repeat)]
        m = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
        line = (
            f"| {name} | {m['rows']:,.0f} | {m['queries']} | {m['first_byte'] * 1000:.1f} | "
            f"{m['first_row'] * 1000:.1f} | {m['total'] * 1000:,.0f} | "
            f"{m['rows'] / m['total']:,.0f} | {m['bytes'] / 2**20:.1f} | "
            f"{m['rss_growth_kb'] / 1024:.1f} | {m['traced_peak'] / 2**20:.2f} |"
        )
        print(line, flush=True)
        lines.append(line)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
