"""`manage.py demo`: the whole living demo on the embedded default, stopped by Ctrl-C.

Migrates, creates the first admin, serves the Leapwork, Conductor and Testsigma emulators on
loopback (schedules keep starting runs on their own), connects them, starts the background
workers (one for sync, one for reruns, one for webhooks) and the periodic sync, and serves
Runboard. Only this command (and `emulate` and the tests) ever starts an emulator; the
production server never does.

The emulated estates live in the data directory beside the database (`<data dir>/emulators/`),
so a second demo continues the world the database already mirrors; deleting the data
directory starts both afresh.
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

from runs.models import Run
from runs.orchestrators.emulation import EmulatorApp, ServedEmulator
from runs.orchestrators.registry import emulator_class
from runs.services.orchestrators import ConnectError, orchestrator_connect
from runs.tasks import RERUN_QUEUE, WEBHOOK_QUEUE, sync_cycle_ensure

# kind: (name, seed, credential, runs per schedule, seconds per test case)
DEMO_ORCHESTRATORS = {
    "leapwork": ("leapwork-lab", 11, "demo-access-key", 20, 2.0),
    "conductor": ("conductor-ci", 12, "", 50, 1.5),
    "testsigma": ("testsigma-web", 13, "demo-api-key", 30, 2.0),
}
# Mean seconds between the runs each schedule starts on its own.
DEMO_AUTORUN = 240.0


def admin_ensure() -> tuple[str, str | None]:
    """Create the first admin user if there is no superuser yet. Returns the superuser's name
    and, when it was just created, its password (shown once)."""
    User = get_user_model()
    existing = User.objects.filter(is_superuser=True).order_by("pk").first()
    if existing is not None:
        return existing.get_username(), None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "admin@example.com", password)
    return "admin", password


def admin_lines(username: str, password: str | None) -> list[str]:
    """What the demo says about the user to log in with."""
    if password:
        return [
            f"Created user '{username}' with password: {password}",
            "It is shown only this once.",
        ]
    return [
        f"Reusing the existing user '{username}' (its password is not shown again).",
        f"Forgot it? Set a new one: python manage.py changepassword {username}",
    ]


def emulator_state_dir() -> Path:
    """Where the demo keeps its emulated estates: beside the embedded database."""
    return Path(settings.DATA_DIR) / "emulators"


def demo_emulator(kind: str, *, scale: float, state_dir: Path) -> tuple[EmulatorApp, str]:
    """The demo's emulator of `kind`, resumed from `state_dir` when a saved estate is there,
    and the sentence that says whether it was."""
    name, seed, credential, history, pace = DEMO_ORCHESTRATORS[kind]
    app = emulator_class(kind)(
        seed=seed,
        credential=credential,
        history=max(1, round(history * scale)),
        pace=pace,
        autorun=DEMO_AUTORUN,
    )
    found = app.persist(state_dir / f"{kind}.json")
    note = found.message
    if not found.resumed and Run.objects.filter(orchestrator__name=name).exists():
        # The database mirrors a world this new estate does not continue.
        note += (
            f" The database still holds {name}'s runs from the earlier one: for a consistent"
            f" demo, stop it and delete {Path(settings.DATA_DIR)}."
        )
    return app, note


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _worker(queue: str) -> subprocess.Popen:
    """A db_worker for one task queue, started beside the server."""
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    options = ["--queue-name", queue, "--no-reload", "--interval", "1", "--no-startup-delay"]
    return subprocess.Popen([sys.executable, manage, "db_worker", *options, "-v", "0"])


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
        username, password = admin_ensure()
        for line in admin_lines(username, password):
            self.stdout.write(self.style.SUCCESS(line) if password else line)
        ports = [int(p) for p in emulator_ports.split(",")]
        emulators = self._start_emulators(ports, scale)
        workers: list[subprocess.Popen] = []
        try:
            self._connect(emulators)
            # One worker for sync and polling, one for reruns, one for webhooks: a rerun never
            # waits on a sync, and neither ever waits on a webhook's receiver.
            workers = [_worker(queue) for queue in ("default", RERUN_QUEUE, WEBHOOK_QUEUE)]
            sync_cycle_ensure()
            self.stdout.write(self.style.SUCCESS(f"Runboard at http://{host}:{port}/"), ending="\n")
            self.stdout.flush()
            call_command("runserver", f"{host}:{port}", use_reloader=False, skip_checks=True)
        except KeyboardInterrupt:
            pass
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGINT)
            for worker in workers:
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
        state_dir = emulator_state_dir()
        for kind, port in zip(DEMO_ORCHESTRATORS, ports, strict=True):
            app, note = demo_emulator(kind, scale=scale, state_dir=state_dir)
            self.stdout.write(note)
            emulators[kind] = ServedEmulator(app, port).start()
            self.stdout.write(f"{kind} emulator at {emulators[kind].base_url}")
        return emulators

    def _connect(self, emulators: dict[str, ServedEmulator]) -> None:
        for kind, served in emulators.items():
            name, *_ = DEMO_ORCHESTRATORS[kind]
            hints = served.app.connect_hints()
            try:
                orchestrator_connect(
                    kind=kind,
                    base_url=hints.base_url,
                    name=name,
                    credential=hints.credential,
                    test_plan_ids=list(hints.test_plan_ids),
                    run_ids=list(hints.run_ids),
                )
            except ConnectError as exc:
                self.stderr.write(f"Could not connect {name}: {exc}")
            else:
                self.stdout.write(f"Connected {name} ({kind}) at {hints.base_url}")
