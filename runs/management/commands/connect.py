"""`manage.py connect KIND BASE_URL --name NAME`: check the credential, then save the orchestrator.

The credential comes from RUNBOARD_CREDENTIAL or standard input, never the command line.
"""

from __future__ import annotations

import os
import sys
from getpass import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.models import OrchestratorKind
from runs.services.orchestrators import ConnectError, orchestrator_connect


class Command(BaseCommand):
    help = "Connect an orchestrator after checking its credential against it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=OrchestratorKind.values)
        parser.add_argument("base_url")
        parser.add_argument("--name", required=True, help="Unique; appears in /go/ links.")
        parser.add_argument(
            "--test-plan",
            action="append",
            default=[],
            dest="test_plans",
            help="Testsigma test plan id.",
        )
        parser.add_argument(
            "--run", action="append", default=[], dest="runs", help="A Testsigma run id to follow."
        )

    def handle(self, *args: Any, kind: str, base_url: str, name: str, **options: Any) -> None:
        credential = self._credential(kind)
        try:
            connection = orchestrator_connect(
                kind=kind,
                base_url=base_url,
                name=name,
                credential=credential,
                test_plan_ids=options["test_plans"],
                run_ids=options["runs"],
            )
        except ConnectError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Connected" if connection.created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {kind} orchestrator {name!r} at {base_url}."))
        for run in connection.tracked:
            self.stdout.write(f"Following run {run.external_id} ({run.status}).")

    def _credential(self, kind: str) -> str:
        if "RUNBOARD_CREDENTIAL" in os.environ:
            return os.environ["RUNBOARD_CREDENTIAL"].strip()
        if sys.stdin is None or not sys.stdin.isatty():
            return (sys.stdin.readline() if sys.stdin else "").strip()
        hint = {
            "leapwork": "AccessKey",
            "conductor": "keyId:keySecret, or empty for conductor-oss",
            "testsigma": "API key",
        }[kind]
        return getpass(f"Credential ({hint}): ").strip()
