"""The poll chain's link against a slow orchestrator: its running runs refreshed one at a
time, then side by side.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_poll \
        .venv/bin/python bench/poll_bench.py [--runs 50] [--latency 0.1] [--repeat 3]

Serves a Conductor emulator in its own process (`manage.py emulate conductor`, as
bench/sync_bench.py does), syncs it, pauses its clock and starts `--runs` runs, which then
stay running. With `--latency` seconds on every call to the emulator, each round times one
`poll_cycle_run` with RUNBOARD_FETCH_CONCURRENCY=1 (each run read in turn, as the poller did
before it read them side by side) and one at the setting's default. Prints each round and the
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
os.environ.setdefault("SECRET_KEY", "poll-bench-only")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench.rounds import side_by_side_rounds  # noqa: E402
from bench.sync_bench import emulator  # noqa: E402
from runs.models import Orchestrator  # noqa: E402
from runs.orchestrators.registry import client_for  # noqa: E402
from runs.services.polling import poll_cycle_run  # noqa: E402
from runs.services.sync import orchestrator_sync  # noqa: E402


def timed_poll(width: int, runs: int) -> float:
    """Seconds one poll of the running runs takes, `width` reads at a time."""
    settings.RUNBOARD_FETCH_CONCURRENCY = width
    started = time.perf_counter()
    still_running = poll_cycle_run()
    elapsed = time.perf_counter() - started
    if still_running != runs:
        raise SystemExit(f"{still_running} runs still running, not {runs}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per emulated call")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    default = settings.RUNBOARD_FETCH_CONCURRENCY
    Orchestrator.objects.filter(name="bench-poll").delete()
    with emulator("conductor", 1) as base_url:
        orchestrator = Orchestrator.objects.create(
            kind="conductor", name="bench-poll", base_url=base_url
        )
        if not (report := orchestrator_sync(orchestrator=orchestrator)).ok:
            raise SystemExit(f"conductor: {report.error}")
        httpx.post(f"{base_url}/_emulator/clock", json={"action": "pause"}).raise_for_status()
        schedules = list(orchestrator.schedules.order_by("external_id"))
        client = client_for("conductor", base_url, "")
        for number in range(args.runs):
            client.run_now(schedules[number % len(schedules)].external_id)
        client.close()
        if not (report := orchestrator_sync(orchestrator=orchestrator)).ok:
            raise SystemExit(f"conductor: {report.error}")
        faults = httpx.post(
            f"{base_url}/_emulator/faults", json={"path": ".*", "latency": args.latency}
        )
        faults.raise_for_status()
        print(f"{args.runs} running runs, {args.latency * 1000:.0f} ms on every call\n")
        side_by_side_rounds(
            lambda: timed_poll(1, args.runs),
            lambda: timed_poll(default, args.runs),
            width=default,
            repeat=args.repeat,
        )
    orchestrator.delete()


if __name__ == "__main__":
    main()
