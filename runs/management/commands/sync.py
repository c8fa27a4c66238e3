"""`manage.py sync [--orchestrator NAME]`: one full pass in the foreground, printing what it imported."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.models import Orchestrator
from runs.services.sync import orchestrator_sync
from runs.tasks import sync_cycle_ensure


class Command(BaseCommand):
    help = "Sync every enabled orchestrator (or one) now, in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orchestrator", help="The name of one orchestrator to sync.")
        parser.add_argument(
            "--periodic",
            action="store_true",
            help="Instead, start the periodic sync chain for `manage.py db_worker` to run.",
        )

    def handle(self, *args: Any, orchestrator: str | None, periodic: bool, **options: Any) -> None:
        if periodic:
            started = sync_cycle_ensure()
            self.stdout.write(
                "Periodic sync started." if started else "Periodic sync already scheduled."
            )
            return
        orchestrators = Orchestrator.objects.filter(enabled=True)
        if orchestrator:
            orchestrators = Orchestrator.objects.filter(name=orchestrator)
            if not orchestrators.exists():
                raise CommandError(f"No orchestrator named {orchestrator!r}.")
        if not orchestrators.exists():
            raise CommandError("No orchestrator to sync: connect one with `manage.py connect`.")
        failed = False
        for item in orchestrators:
            report = orchestrator_sync(orchestrator=item)
            style = self.style.SUCCESS if report.ok else self.style.ERROR
            self.stdout.write(style(str(report)))
            failed |= not report.ok
        if failed:
            raise CommandError("Some orchestrators could not be synced (see above).")
