"""The orchestrators page: their sync health, following a run by id, connecting one."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from runs import selectors
from runs.forms import ConnectForm, TrackRunForm
from runs.services.errors import TrackError
from runs.services.orchestrators import (
    ConnectError,
    orchestrator_connect,
    orchestrator_connect_allowed,
)
from runs.services.sync import run_track
from runs.views.common import HtmxHttpRequest


def orchestrators(request: HtmxHttpRequest) -> HttpResponse:
    context = {
        "orchestrators": selectors.orchestrator_list_with_counts(),
        "track_form": TrackRunForm(),
        "may_connect": orchestrator_connect_allowed(user=request.user),
    }
    return render(request, "runs/orchestrators.html", context)


@require_POST
def track_run(request: HtmxHttpRequest) -> HttpResponse:
    """Follow a run by its vendor id (Testsigma lists no runs)."""
    form = TrackRunForm(request.POST)
    if form.is_valid():
        try:
            run = run_track(
                orchestrator=form.cleaned_data["orchestrator"],
                external_id=form.cleaned_data["run_id"],
            )
        except TrackError as exc:
            form.add_error("run_id", str(exc))
        else:
            messages.success(request, f"Runboard now follows run {run.external_id}.")
            return redirect(run)
    context = {"track_form": form, "may_connect": orchestrator_connect_allowed(user=request.user)}
    return render(request, "runs/track_run.html", context, status=422)


@sensitive_post_parameters("credential")
@require_http_methods(["GET", "POST"])
def orchestrator_connect_view(request: HtmxHttpRequest) -> HttpResponse:
    if not orchestrator_connect_allowed(user=request.user):
        raise PermissionDenied(
            "Connecting an orchestrator needs staff status and the permission to add "
            "orchestrators (runs.add_orchestrator) or to change them (runs.change_orchestrator)."
        )
    form = ConnectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            # It raises PermissionDenied when the name is new and this user may only change
            # orchestrators, or the other way round.
            connection = orchestrator_connect(**form.cleaned_data, user=request.user)
        except ConnectError as exc:
            form.add_error(None, str(exc))
        else:
            verb = "Connected" if connection.created else "Updated"
            name = connection.orchestrator.name
            messages.success(request, f"{verb} {name}; its history syncs in the background.")
            return redirect(reverse("runs:orchestrators"))
    return render(request, "runs/orchestrator_connect.html", {"form": form})
