"""`manage.py fingerprints_refresh`: fingerprint the failures stored before fingerprints
existed, or by an older version of the algorithm."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from runs.services.failure_groups import fingerprints_refresh


class Command(BaseCommand):
    help = (
        "Fingerprint every failed or errored result that has no fingerprint of the current "
        "version, and record the failure groups they belong to."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Fingerprinted {fingerprints_refresh()} failures.")
