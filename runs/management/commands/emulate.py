"""`manage.py emulate KIND --port N`: serve one vendor emulator on 127.0.0.1 until stopped.

With `--state FILE` the estate is resumed from FILE (when it holds one of the same kind and
seed) and kept saved there, as the demo does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from runs.orchestrators.emulation import ServedEmulator
from runs.orchestrators.registry import KINDS, emulator_class


class Command(BaseCommand):
    help = "Serve a local emulator of a vendor's API on 127.0.0.1 (for demos and tests)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--credential", default="", help="The key the emulator accepts.")
        parser.add_argument("--history", type=int, default=20, help="Past runs per schedule.")
        parser.add_argument(
            "--pace", type=float, default=2.0, help="Seconds one test case takes to run."
        )
        parser.add_argument(
            "--autorun",
            type=float,
            default=0.0,
            help="Mean seconds between runs each schedule starts on its own (0: never).",
        )
        parser.add_argument(
            "--state",
            type=Path,
            default=None,
            metavar="FILE",
            help="Resume the estate saved in FILE (same kind and seed) and keep saving it there.",
        )

    def handle(self, *args: Any, kind: str, port: int, **options: Any) -> None:
        app = emulator_class(kind)(
            seed=options["seed"],
            credential=options["credential"],
            history=options["history"],
            pace=options["pace"],
            autorun=options["autorun"],
        )
        if options["state"] is not None:
            self.stdout.write(app.persist(options["state"]).message)
        served = ServedEmulator(app, port)
        self.stdout.write(f"{app.kind} emulator at {served.base_url}", ending="\n")
        for line in app.banner():
            self.stdout.write(line)
        self.stdout.flush()
        try:
            served.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            served.server.server_close()
            app.close()  # the last save, when persisting
