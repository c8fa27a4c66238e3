"""Read-side queries for the views: every select_related / prefetch lives here."""

from __future__ import annotations

from django.db.models import QuerySet

from runs.models import ExecutionResult, Run


def run_list_recent(*, limit: int = 50) -> QuerySet[Run]:
    return Run.objects.select_related("orchestrator", "schedule").order_by("-started_at", "-id")[
        :limit
    ]


def run_get(*, pk: int) -> Run:
    return Run.objects.select_related(
        "orchestrator", "schedule", "rerun_of", "rerun_request", "triggered_by"
    ).get(pk=pk)


def run_results(*, run: Run) -> QuerySet[ExecutionResult]:
    return run.results.select_related("test_case", "agent").order_by("seq", "id")


def run_find_by_external_id(*, orchestrator: str, external_id: str) -> Run | None:
    """The newest attempt of a vendor run id on a named orchestrator."""
    return (
        Run.objects.filter(orchestrator__name=orchestrator, external_id=external_id)
        .order_by("-attempt")
        .first()
    )
