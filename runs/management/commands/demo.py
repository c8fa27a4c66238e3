"""`manage.py demo`: the whole living demo on the embedded default, stopped by Ctrl-C.

Migrates, creates the first admin, serves the Leapwork, Conductor and Testsigma emulators on
loopback (schedules keep starting runs on their own), connects them, starts a background
worker and the periodic sync, and serves Runboard. Only this command (and `emulate` and the
tests) ever starts an emulator; the production server never does.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.orchestrators.emulation import ServedEmulator
from runs.orchestrators.registry import emulator_class
from runs.services.orchestrators import ConnectError, orchestrator_connect
from runs.tasks import sync_cycle_ensure

# kind: (name, seed, credential, runs per schedule, seconds per test case)
DEMO_ORCHESTRATORS = {
    "leapwork": ("leapwork-lab", 11, "demo-access-key", 20, 2.0),
    "conductor": ("conductor-ci", 12, "", 50, 1.5),
    "testsigma": ("testsigma-web", 13, "demo-api-key", 30, 2.0),
}
# Mean seconds between the runs each schedule starts on its own.
DEMO_AUTORUN = 240.0


def admin_ensure() -> str | None:
    """Create the first admin user if there is none; return its password (shown once)."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "admin@example.com", password)
    return password


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the demo: emulated orchestrators, a worker, the periodic sync and the server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--emulator-ports",
            default="9001,8127,8128",
            help="Leapwork, Conductor and Testsigma ports (0: any free port).",
        )
        parser.add_argument(
            "--scale",
            type=float,
            default=1.0,
            help="Multiply the emulated history (e.g. 0.25 for a quicker start).",
        )

    def handle(
        self, *args: Any, host: str, port: int, emulator_ports: str, scale: float, **options: Any
    ) -> None:
        # runserver exits the process at once when its port is taken, before any cleanup.
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise CommandError(f"Cannot serve on {host}:{port}: {exc.strerror}.") from exc
        # Ctrl-C, or a TERM from whoever started the demo, stops everything it started.
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        call_command("migrate", interactive=False, verbosity=0)
        password = admin_ensure()
        if password:
            self.stdout.write(self.style.SUCCESS(f"Created user 'admin' with password: {password}"))
            self.stdout.write("It is shown only this once.")
        ports = [int(p) for p in emulator_ports.split(",")]
        emulators = self._start_emulators(ports, scale)
        worker = None
        try:
            self._connect(emulators)
            worker = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(settings.BASE_DIR) / "manage.py"),
                    "db_worker",
                    "--no-reload",
                    "--interval",
                    "1",
                    "--no-startup-delay",
                    "-v",
                    "0",
                ],
            )
            sync_cycle_ensure()
            self.stdout.write(self.style.SUCCESS(f"Runboard at http://{host}:{port}/"), ending="\n")
            self.stdout.flush()
            call_command("runserver", f"{host}:{port}", use_reloader=False, skip_checks=True)
        except KeyboardInterrupt:
            pass
        finally:
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGINT)
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
            for served in emulators.values():
                with contextlib.suppress(Exception):
                    served.stop()
            self.stdout.write("Demo stopped.")

    def _start_emulators(self, ports: list[int], scale: float) -> dict[str, ServedEmulator]:
        emulators = {}
        for (kind, (_name, seed, credential, history, pace)), port in zip(
            DEMO_ORCHESTRATORS.items(), ports, strict=True
        ):
            app = emulator_class(kind)(
                seed=seed,
                credential=credential,
                history=max(1, round(history * scale)),
                pace=pace,
                autorun=DEMO_AUTORUN,
            )
            emulators[kind] = ServedEmulator(app, port).start()
            self.stdout.write(f"{kind} emulator at {emulators[kind].base_url}")
        return emulators

    def _connect(self, emulators: dict[str, ServedEmulator]) -> None:
        for kind, served in emulators.items():
            name, *_ = DEMO_ORCHESTRATORS[kind]
            base_url, plans, run_ids = served.base_url, [], []
            if kind == "testsigma":
                base_url += "/api/v1"
                state = served.app.state()
                plans = [str(plan["id"]) for plan in state["test_plans"]]
                # Testsigma lists no runs: hand Runboard the emulated history's run ids.
                run_ids = [
                    str(run_id) for plan in state["test_plans"] for run_id in plan["run_ids"]
                ]
            try:
                orchestrator_connect(
                    kind=kind,
                    base_url=base_url,
                    name=name,
                    credential=served.app.credential,
                    test_plan_ids=plans,
                    run_ids=run_ids,
                )
            except ConnectError as exc:
                self.stderr.write(f"Could not connect {name}: {exc}")
            else:
                self.stdout.write(f"Connected {name} ({kind}) at {base_url}")
