"""Sending a big Leapwork rerun against a slow controller: its calls one at a time, then side
by side.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_rerun \
        .venv/bin/python bench/rerun_bench.py [--calls 40] [--latency 0.1] [--repeat 3]

Serves a Leapwork emulator in its own process (`manage.py emulate leapwork`, as
bench/sync_bench.py does), syncs it once, and picks `--calls` results of its biggest run: a
picked rerun on Leapwork is one Run Flow by Id call per flow, each followed by a read of the
run it started. With `--latency` seconds on every call to the emulator, each round records
two such reruns and times the rerun worker's `rerun_deliver` on each: one with
RUNBOARD_RERUN_CONCURRENCY=1 (what the worker did before it sent side by side: the same
calls, in the same order) and one with the setting's default. Prints each round and the
medians, ratios from the same round. Migrates the database it is given; use a spare one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "rerun-bench-only")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Count  # noqa: E402

from bench.rounds import side_by_side_rounds  # noqa: E402
from bench.sync_bench import emulator  # noqa: E402
from runs.models import Orchestrator, RerunState, Run  # noqa: E402
from runs.services.rerun_delivery import rerun_deliver  # noqa: E402
from runs.services.reruns import RerunInput, rerun_start  # noqa: E402
from runs.services.sync import orchestrator_sync  # noqa: E402


def timed_send(source: Run, picked: tuple[int, ...], key: str, width: int) -> float:
    """Seconds the worker takes to send a picked rerun of `source`, `width` calls at a time."""
    settings.RUNBOARD_RERUN_CONCURRENCY = width
    user = get_user_model().objects.get(username="rerun-bench")
    request, _ = rerun_start(
        user=user,
        idempotency_key=key,
        data=RerunInput(scope="picked", result_ids=picked),
        source=source,
    )
    started = time.perf_counter()
    sent = rerun_deliver(request.pk)
    elapsed = time.perf_counter() - started
    if sent is None or sent.state != RerunState.ACCEPTED or sent.runs.count() != len(picked):
        raise SystemExit(f"the rerun was not sent whole: {sent and sent.message}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per emulated call")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    default = settings.RUNBOARD_RERUN_CONCURRENCY
    user, _ = get_user_model().objects.get_or_create(username="rerun-bench")
    user.groups.add(Group.objects.get(name="Rerunners"))  # made by the migrations
    Orchestrator.objects.filter(name="bench-rerun").delete()
    with emulator("leapwork", 2) as base_url:
        orchestrator = Orchestrator.objects.create(
            kind="leapwork", name="bench-rerun", base_url=base_url
        )
        if not (report := orchestrator_sync(orchestrator=orchestrator)).ok:
            raise SystemExit(f"leapwork: {report.error}")
        source = (
            Run.objects.filter(orchestrator=orchestrator)
            .annotate(n=Count("results"))
            .order_by("-n", "pk")
            .first()
        )
        picked = tuple(source.results.order_by("seq").values_list("pk", flat=True)[: args.calls])
        faults = httpx.post(
            f"{base_url}/_emulator/faults", json={"path": ".*", "latency": args.latency}
        )
        faults.raise_for_status()
        print(
            f"{len(picked)} calls of a picked rerun, {args.latency * 1000:.0f} ms on every call "
            "to the emulator\n"
        )
        keys = iter(range(2 * args.repeat))
        side_by_side_rounds(
            lambda: timed_send(source, picked, f"bench-{next(keys)}", 1),
            lambda: timed_send(source, picked, f"bench-{next(keys)}", default),
            width=default,
            repeat=args.repeat,
        )
    orchestrator.delete()


if __name__ == "__main__":
    main()
