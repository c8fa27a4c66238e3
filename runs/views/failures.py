"""Failures by cause: every cause seen in a window across the orchestrators, one cause's
reach, muting it, and rerunning every failure of it (runs.services.fingerprints groups
failures; sync writes the groups; runs.services.cause_reruns plans and sends the batch)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from runs import selectors
from runs.filters import FAILURE_WINDOWS, FailureFilterForm
from runs.forms import CauseRerunForm, MuteForm
from runs.models import FailureGroup
from runs.services.cause_reruns import CausePlanChanged, cause_rerun_plan, cause_rerun_send
from runs.services.mutes import PERMISSION, failure_mute, failure_unmute
from runs.services.reruns import PERMISSION as RERUN_PERMISSION
from runs.services.revision import revision_get
from runs.views.common import HtmxHttpRequest, drawn_once, get_or_404, query_digest

# Reruns of a cause shown in full in its preview; the rest are counted.
PREVIEW_SHOWN = 5


def failure_groups(request: HtmxHttpRequest) -> HttpResponse:
    form = FailureFilterForm(request.GET)
    form.is_valid()
    groups = selectors.failure_groups(days=form.days, filters=form.filters())
    # The filters offer every orchestrator, schedule and agent: drawn once per revision of
    # them (and query string), as the history's are.
    _history, catalog = revision_get()
    filters = drawn_once(
        f"page:failures:filters:{catalog}:{query_digest(request)}",
        lambda: render_to_string("runs/failure_groups.html#filters", {"form": form}),
    )
    context = {"filters": filters, "form": form, "groups": groups, "days": form.days}
    return render(request, "runs/failure_groups.html", context)


def _mute_form(
    group: FailureGroup, data=None, detail: selectors.FailureGroupDetail | None = None
) -> MuteForm:
    """The mute form offering where the cause struck: as the page's detail found it, or (to
    check a mute sent) read again over the longest window a page shows."""
    schedules, agents = selectors.failure_group_places(group=group, detail=detail)
    drawn = (detail.schedule_places, detail.agent_places) if detail is not None else None
    return MuteForm(data, schedules=schedules, agents=agents, drawn=drawn)


def _days(request: HtmxHttpRequest) -> int:
    """The window a cause's page reads (?window=), 30 days unless told."""
    form = FailureFilterForm(request.GET)
    form.is_valid()
    return form.days if form.cleaned_data.get("window") else selectors.GROUP_DAYS


def _group_page(
    request: HtmxHttpRequest, group: FailureGroup, form: MuteForm | None = None, status: int = 200
) -> HttpResponse:
    can_mute = request.user.has_perm(PERMISSION)
    detail = selectors.failure_group_detail(group=group, days=_days(request))
    context = {
        "group": group,
        "detail": detail,
        "mutes": selectors.failure_group_mutes(group=group),
        "batches": selectors.failure_group_batches(group=group),
        "can_rerun": request.user.has_perm(RERUN_PERMISSION),
        "can_mute": can_mute,
        "mute_form": form or (_mute_form(group, detail=detail) if can_mute else None),
    }
    return render(request, "runs/failure_group.html", context, status=status)


def failure_group(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    group = get_or_404(selectors.failure_group_get, pk, "failure group")
    return _group_page(request, group)


@permission_required(PERMISSION, raise_exception=True)
@require_POST
def failure_group_mute(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    group = get_or_404(selectors.failure_group_get, pk, "failure group")
    form = _mute_form(group, request.POST)
    if not form.is_valid():
        return _group_page(request, group, form, status=400)
    failure_mute(group=group, user=request.user, **form.cleaned_data)
    messages.success(request, "Muted: its failures no longer make a schedule failing.")
    return redirect(group)


@permission_required(PERMISSION, raise_exception=True)
@require_POST
def failure_mute_lift(request: HtmxHttpRequest, pk: int, mute: int) -> HttpResponse:
    group = get_or_404(selectors.failure_group_get, pk, "failure group")
    found = group.mutes.filter(pk=mute).first()
    if found is not None and failure_unmute(mute=found, user=request.user):
        messages.success(request, "Mute lifted.")
    else:
        messages.info(request, "That mute was no longer in force.")
    return redirect(group)


@permission_required(RERUN_PERMISSION, raise_exception=True)
def cause_rerun(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Preview (GET, ?window=) or send (POST) a rerun of every failure of this cause."""
    group = get_or_404(selectors.failure_group_get, pk, "failure group")
    if request.method == "POST":
        form = CauseRerunForm(request.POST)
        if form.is_valid():
            try:
                batch, _recorded = cause_rerun_send(
                    group=group,
                    days=form.days,
                    user=request.user,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                    previewed_digest=form.cleaned_data["plan_digest"],
                )
            except CausePlanChanged as exc:
                messages.error(request, str(exc))
                return _cause_preview(request, group, form.days, status=409)
            count = batch.requests.count()
            messages.success(
                request, f"Sent {count} rerun{'s' if count != 1 else ''} of this cause."
            )
            return redirect(f"{group.get_absolute_url()}#batch-{batch.pk}")
        return _cause_preview(request, group, FailureFilterForm(request.POST).days, status=400)
    filters = FailureFilterForm(request.GET)
    filters.is_valid()
    return _cause_preview(request, group, filters.days)


def _cause_preview(
    request: HtmxHttpRequest, group: FailureGroup, days: int, status: int = 200
) -> HttpResponse:
    plan = cause_rerun_plan(group=group, days=days)
    window = next(value for value, (_label, n) in FAILURE_WINDOWS.items() if n == days)
    form = CauseRerunForm(
        initial={"window": window, "idempotency_key": uuid.uuid4(), "plan_digest": plan.digest}
    )
    shown = plan.reruns[:PREVIEW_SHOWN]
    context = {
        "group": group,
        "plan": plan,
        "form": form,
        "shown": shown,
        "hidden": len(plan.reruns) - len(shown),
    }
    return render(request, "runs/cause_rerun.html", context, status=status)
