"""The history's run rows, drawn in Python: a page of 50 rows cost more in template lookups
(and in looking each one up in a cache) than the page's queries (as runs.templatetags.result_rows
does for a run's results)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from html import escape

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from runs.models import Run, Schedule, Trigger
from runs.templatetags.runboard import id_url, run_duration, status_badge, truncated, utc_time

register = template.Library()

TRIGGER_LABELS = dict(Trigger.choices)


@register.simple_tag
def run_rows(runs: Iterable[Run]) -> SafeString:
    """One `<tr>` per run; a run in progress polls its own row until it is over."""
    # A badge per status pair, once.
    run_url = id_url("runs:detail")
    row_url = id_url("runs:run_row")
    badge = functools.cache(status_badge)
    return mark_safe("".join(_row(run, run_url, row_url, badge) for run in runs))


@register.simple_tag
def run_row(run: Run) -> SafeString:
    return run_rows([run])


@register.simple_tag
def failing_schedule_rows(schedules: Iterable[Schedule]) -> SafeString:
    """The overview's failing schedules, a `<tr>` each, with their latest run (45 of them
    drew slower through template lookups than the page's queries)."""
    schedule_url = id_url("runs:schedule")
    run_url = id_url("runs:detail")
    badge = functools.cache(status_badge)
    return mark_safe(
        "".join(
            f'<tr id="schedule-{schedule.pk}">\n'
            f'  <td><a href="{schedule_url.format(schedule.pk)}">{escape(schedule.title)}</a></td>\n'
            f'  <td><a href="{run_url.format(schedule.latest_run_id)}">'
            f"{badge(schedule.latest_status)}</a></td>\n"
            f"  <td>{utc_time(schedule.latest_started_at)}</td>\n"
            f"  <td>{escape(schedule.orchestrator.name)}</td>\n</tr>\n"
            for schedule in schedules
        )
    )


def _row(run: Run, run_url: str, row_url: str, badge: Callable[..., str]) -> str:
    poll = (
        ""
        if run.is_terminal
        else f' hx-get="{row_url.format(run.pk)}" hx-trigger="every 3s" hx-swap="outerHTML"'
    )
    title = run.schedule.title if run.schedule_id else run.external_id
    attempt = f" · attempt {run.attempt}" if run.attempt > 1 else ""
    rerun = (
        ' <span class="tag" title="Made by a rerun of another run">rerun</span>'
        if run.rerun_of_id and run.attempt == 1
        else ""
    )
    return (
        f'<tr id="run-{run.pk}" class="row-{escape(run.status)}"{poll}>\n'
        f'  <td><a href="{run_url.format(run.pk)}">{escape(title)}</a>\n'
        f'    <span class="muted mono">#{escape(truncated(run.external_id, 12))}'
        f"{attempt}</span>{rerun}</td>\n"
        f"  <td>{badge(run.status, run.vendor_status)}</td>\n"
        f'  <td class="counts">{_counts(run)}</td>\n'
        f'  <td class="nowrap">{utc_time(run.started_at)}</td>\n'
        f'  <td class="nowrap">{escape(run_duration(run))}</td>\n'
        f"  <td>{escape(TRIGGER_LABELS.get(run.trigger, run.trigger))}</td>\n"
        f"  <td>{escape(run.build or '—')}</td>\n"
        f"  <td>{escape(run.orchestrator.name)}</td>\n"
        "</tr>\n"
    )


def _counts(run: Run) -> str:
    if not run.is_terminal:
        # Few rows are in progress: the run page's own partial draws their bar.
        return render_to_string("runs/partials/progress.html", {"run": run})
    other = (
        f' <span class="count-other" title="other">• {run.other_count}</span>'
        if run.other_count
        else ""
    )
    return (
        f'<span class="count-passed" title="passed">✓ {run.passed_count}</span> '
        f'<span class="count-failed" title="failed or error">✗ {run.failed_count}</span>'
        f'{other} <span class="muted">of {run.total_count}</span>'
    )
