"""Placeholder until the lead's rerun views land: the dashboard merges these contexts."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from runs.models import Run, Schedule


def rerun_panel_context(request: HttpRequest, run: Run) -> dict[str, Any]:
    return {}


def run_now_context(request: HttpRequest, schedule: Schedule) -> dict[str, Any]:
    return {}


def track_run_context(request: HttpRequest) -> dict[str, Any]:
    return {}
