"""`manage.py agent_counts_rebuild`: recount every agent's runs, results and failures, every
run's results by agent and status and the agents it ran on, and every orchestrator's runs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from runs.services.agent_counts import agent_counts_rebuild


class Command(BaseCommand):
    help = (
        "Recount the runs, results and failures kept on every agent row, the results by agent "
        "and status and the agents kept for every run, from the results, and the runs kept "
        "on every orchestrator row."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            agents = agent_counts_rebuild()
        self.stdout.write(f"Recounted {agents} agents.")
