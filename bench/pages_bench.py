"""Time every page against its own SQL floor, with query counts and sequential scans flagged.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench \
        .venv/bin/python bench/pages_bench.py [--repeat 7] [--out bench/pages.md]

Run `bench/history.py` first. Each page (and each of the API's reads, by the same session) is
requested in-process through Django's test client, logged in, twice to warm up and then `--repeat` times; the median is the page's time. Before
each timed request the history's revision is moved on (runs.services.revision), so a page
that keeps its drawing per revision is drawn afresh, as after every sync: the time is the
page's cost, not its cache's. "Again" is the same page asked again at the same revision (what
the history pages serve from their cache until the next change). The floor is the same page's
queries (captured from one drawing request) executed raw on one cursor, also a median: what
the page costs if rendering were free. On PostgreSQL each query is EXPLAINed
and a sequential scan of a big table (runs, results) is flagged.

Each drawing request's time is also split three ways (medians, so they need not add up to the
median): waiting on the database (the page's queries as Django runs them), in templates (their
own queries apart), and the rest of Python (middleware, session and user, building querysets,
rows as objects, the view). The first row, `/bench/trivial/` (bench/urls.py), is a logged-in
view that does nothing: what every page costs before its own work.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The product's settings, plus /bench/trivial/.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
# Production settings (DEBUG logs every query and renders templates with debug info), over
# plain HTTP as behind a proxy that ends TLS.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Max, Min  # noqa: E402
from django.template.backends.django import Template  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from runs.models import (  # noqa: E402
    Agent,
    ExecutionResult,
    FailureGroup,
    Orchestrator,
    Run,
    Schedule,
    TestCase,
)
from runs.services.revision import revision_bump  # noqa: E402

BIG_TABLES = ("runs_run", "runs_executionresult")
API = "/api/v1"
NEXT_LINK = re.compile(r'href="\?([^"]*after=[^"]+)"')


def pages(client: Client) -> list[tuple[str, str]]:
    """(name, url) of every page the bench times, picked from the data there is."""
    # The newest runs that failed, small and big: the pages QA engineers open (and the same
    # shape of page, with its failures and their causes, at every size of history).
    failed = Run.objects.filter(failed_count__gt=0).order_by("-started_at")
    small = failed.exclude(environment="big").first()
    big = failed.filter(environment="big").first()
    schedule = Schedule.objects.order_by("id").first()
    agent = Agent.objects.order_by("id").first()
    orchestrator = Orchestrator.objects.order_by("id").first()
    case = (
        TestCase.objects.annotate(n=Count("results")).order_by("-n").first()
        if connection.vendor != "postgresql"
        else TestCase.objects.get(
            pk=ExecutionResult.objects.values("test_case")
            .annotate(n=Count("id"))
            .order_by("-n")
            .values_list("test_case", flat=True)[:1]
        )
    )
    # The cause with the most failures: its page reads every failure of it in the window.
    cause = FailureGroup.objects.get(
        fingerprint=ExecutionResult.objects.exclude(fingerprint="")
        .values("fingerprint")
        .annotate(n=Count("id"))
        .order_by("-n", "fingerprint")
        .values_list("fingerprint", flat=True)[:1]
    )
    # From the history's first day to the day before its last: a range that holds runs at
    # any size of history (fixed dates held none of a dense 10k history's 4.3 days).
    span = Run.objects.aggregate(oldest=Min("started_at"), newest=Max("started_at"))
    oldest, newest = span["oldest"].date(), span["newest"].date() - timedelta(days=1)
    listed = [
        ("trivial logged-in view", "/bench/trivial/"),
        ("overview", "/"),
        ("history", "/runs/"),
        ("history, failures", "/runs/?status=failures"),
        ("history, orchestrator", f"/runs/?orchestrator={orchestrator.name}"),
        ("history, schedule", f"/runs/?schedule={schedule.pk}"),
        ("history, agent", f"/runs/?agent={agent.pk}"),
        ("history, trigger", "/runs/?trigger=manual"),
        ("history, build", "/runs/?build=build-100"),
        ("history, dates", f"/runs/?date_from={oldest:%Y-%m-%d}&date_to={newest:%Y-%m-%d}"),
        ("history, search", "/runs/?" + urlencode({"q": "Schedule 42 nightly"})),
        ("history, oldest first", "/runs/?sort=started"),
        ("history, longest first", "/runs/?sort=-duration"),
        ("history, shortest first", "/runs/?sort=duration"),
        ("history, 50 pages deep", deep(client, "/runs/", 50)),
        ("history, longest first, 50 pages deep", deep(client, "/runs/?sort=-duration", 50)),
        (f"run, {small.total_count} results", f"/runs/{small.pk}/"),
        (f"run, {big.total_count} results", f"/runs/{big.pk}/"),
        (f"run, {big.total_count} results, failures", f"/runs/{big.pk}/?status=failures"),
        (
            f"run, {big.total_count} results, search",
            f"/runs/{big.pk}/?" + urlencode({"q": "checkout case 4242"}),
        ),
        ("test case", f"/cases/{case.pk}/"),
        ("schedule", f"/schedules/{schedule.pk}/"),
        ("agents", "/agents/"),
        ("orchestrators", "/orchestrators/"),
        ("failures", "/failures/"),
        ("failures, 30 days", "/failures/?window=30d"),
        ("failures, one agent", f"/failures/?window=30d&agent={agent.pk}"),
        ("failure cause", f"/failures/{cause.pk}/"),
        # Rerunning: the form on its own page, and every run a cause struck, planned.
        (f"rerun form, {big.total_count} results", f"/runs/{big.pk}/rerun/"),
        ("cause rerun preview", f"/failures/{cause.pk}/rerun/"),
        # The API's reads (runs.api.reads), as a pipeline or a chat bot asks for them.
        ("API: orchestrators", f"{API}/orchestrators"),
        ("API: schedules", f"{API}/schedules"),
        ("API: runs", f"{API}/runs"),
        ("API: runs, failures of an agent", f"{API}/runs?status=failures&agent={agent.pk}"),
        (f"API: run, {big.total_count} results", f"{API}/runs/{big.pk}"),
        (f"API: a page of a run's {big.total_count} results", f"{API}/runs/{big.pk}/results"),
        (
            f"API: a search of a run's {big.total_count} results",
            f"{API}/runs/{big.pk}/results?" + urlencode({"q": "checkout case 4242"}),
        ),
        ("API: run by vendor id", f"{API}/go/{big.orchestrator.name}/{big.external_id}"),
        ("API: test case", f"{API}/cases/{case.pk}"),
        ("API: failures, 30 days", f"{API}/failures?window=30d"),
        ("API: failure cause", f"{API}/failures/{cause.pk}"),
    ]
    return listed


def deep(client: Client, url: str, hops: int) -> str:
    """The URL `hops` pages down a history, following its "next" links."""
    for _ in range(hops):
        match = NEXT_LINK.search(client.get(url).content.decode())
        if not match:
            break
        url = url.split("?")[0] + "?" + match.group(1).replace("&amp;", "&")
    return url


def seq_scans(sql: str) -> list[str]:
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return [table for table in BIG_TABLES if f"Seq Scan on {table} " in plan + " "]


def floor_ms(queries: list[str], repeat: int) -> float:
    times = []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            begun = time.perf_counter()
            for sql in queries:
                cursor.execute(sql)
                if cursor.description:
                    cursor.fetchall()
            times.append(time.perf_counter() - begun)
    return statistics.median(times) * 1000


class Split:
    """Where one request's time goes: seconds waiting on the database (each query as Django
    executes it) and seconds in templates, their own queries apart."""

    def __init__(self) -> None:
        self.sql = self.templates = self.sql_in_templates = 0.0
        self._depth = 0

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Time what runs inside: queries on the connection, the templates rendered (the
        outermost of a nest: includes and form widgets are inside it)."""
        render = Template.render

        def timed(template, context=None, request=None):
            self._depth += 1
            begun = time.perf_counter()
            try:
                return render(template, context, request)
            finally:
                self._depth -= 1
                if not self._depth:
                    self.templates += time.perf_counter() - begun

        Template.render = timed
        try:
            with connection.execute_wrapper(self._execute):
                yield
        finally:
            Template.render = render

    def _execute(self, execute, sql, params, many, context):
        begun = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - begun
            self.sql += elapsed
            if self._depth:
                self.sql_in_templates += elapsed


def measure(client: Client, url: str, repeat: int) -> dict:
    for _ in range(2):
        client.get(url)
    times, again, splits = [], [], []
    for _ in range(repeat):
        revision_bump()
        split = Split()
        begun = time.perf_counter()
        with split.timing():
            response = client.get(url)
        times.append(time.perf_counter() - begun)
        splits.append(split)
        begun = time.perf_counter()
        client.get(url)
        again.append(time.perf_counter() - begun)
    revision_bump()
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = [q["sql"] for q in captured.captured_queries]
    # Session and user lookups are part of every page; the floor keeps them. A server-side
    # cursor's query is run plainly, its FETCH and CLOSE dropped.
    data = [
        q.split(" FOR ", 1)[1] if q.startswith("DECLARE") else q
        for q in queries
        if not q.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "FETCH", "CLOSE"))
    ]
    scans = sorted({table for sql in data for table in seq_scans(sql)})
    return {
        "status": response.status_code,
        "ms": statistics.median(times) * 1000,
        "sql": statistics.median(split.sql for split in splits) * 1000,
        "templates": statistics.median(split.templates - split.sql_in_templates for split in splits)
        * 1000,
        "python": statistics.median(
            total - split.sql - (split.templates - split.sql_in_templates)
            for total, split in zip(times, splits, strict=True)
        )
        * 1000,
        "again": statistics.median(again) * 1000,
        "floor": floor_ms(data, repeat),
        "queries": len(queries),
        "kb": len(response.content) / 1024,
        "scans": scans,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, help="write the table to this file too")
    parser.add_argument("--only", default="", help="time only the pages whose name has this")
    args = parser.parse_args()
    call_command("collectstatic", "--noinput", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    runs, results = Run.objects.count(), ExecutionResult.objects.count()
    lines = [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}); "
        f"database: {connection.vendor} {connection.Database.__name__}",
        f"- Data: {runs:,} runs, {results:,} results; median of {args.repeat} warm requests",
        "",
        "| page | status | queries | median (ms) | SQL floor (ms) | ratio | again (ms) | HTML (KB) "
        "| seq scans | in SQL (ms) | templates (ms) | other Python (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for name, url in pages(client):
        if args.only not in name:
            continue
        m = measure(client, url, args.repeat)
        line = (
            f"| {name} | {m['status']} | {m['queries']} | {m['ms']:.1f} | {m['floor']:.1f} | "
            f"{m['ms'] / m['floor']:.1f}x | {m['again']:.1f} | {m['kb']:.0f} | "
            f"{', '.join(m['scans']) or '—'} | {m['sql']:.1f} | {m['templates']:.1f} | "
            f"{m['python']:.1f} |"
        )
        print(line, flush=True)
        lines.append(line)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
