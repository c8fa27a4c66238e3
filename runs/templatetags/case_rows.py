"""A test case's page of results, drawn in Python: its strip and its table, a cell and a row
per result (through template lookups a page of 30 cost more than the page's queries), as the
history's run rows and a run's result rows are drawn."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from html import escape
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from runs.templatetags.runboard import (
    humanize_duration,
    id_url,
    status_badge,
    status_label,
    status_letter,
    truncated,
    utc_time,
)

register = template.Library()

MESSAGE_SHOWN = 160  # characters of a result's message in its row


def _minute(value: Any) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value is not None else ""


@register.simple_tag
def case_strip(results: Iterable[Any], from_run: int | None = None) -> SafeString:
    """A cell per result, newest first: its status's letter, linked to its run."""
    run_url = id_url("runs:detail")
    cells = []
    for result in results:
        label, at = status_label(result.status), _minute(result.run.started_at)
        marks = (" is-from" if result.run_id == from_run else "") + (
            " is-rerun" if result.in_rerun else ""
        )
        cells.append(
            f'      <li><a class="strip-cell status-{escape(result.status)}{marks}" '
            f'href="{run_url.format(result.run_id)}" data-result-id="{result.pk}"\n'
            f'             title="{label} · {at} UTC{" · in a rerun" if result.in_rerun else ""}">\n'
            f'        <span aria-hidden="true">{status_letter(result.status)}</span>'
            f'<span class="visually-hidden">{label} on {at} UTC'
            f"{', in a rerun' if result.in_rerun else ''}</span></a></li>\n"
        )
    return mark_safe("".join(cells) or '      <li class="muted">No results yet.</li>\n')


@register.simple_tag
def case_result_rows(results: Iterable[Any], from_run: int | None = None) -> SafeString:
    """A row per result: its run, status, agent, start, duration and message."""
    run_url = id_url("runs:detail")
    rows = []
    for result in results:
        run, here = result.run, result.run_id == from_run
        title = run.schedule.title if run.schedule_id else "run"
        agent = result.agent.title if result.agent_id else ""
        rows.append(
            f'        <tr id="case-result-{result.pk}" data-result-id="{result.pk}" '
            f'class="row-{escape(result.status)}{" is-from" if here else ""}">\n'
            f'          <td><a href="{run_url.format(result.run_id)}">{escape(title or "run")} '
            f"#{escape(truncated(run.external_id, 14))}</a>\n"
            + ('            <strong class="tag">the run you came from</strong>\n' if here else "")
            + ('            <span class="tag tag-rerun">rerun</span>' if result.in_rerun else "")
            + "</td>\n"
            f"          <td>{status_badge(result.status, result.vendor_status)}</td>\n"
            f"          <td>{escape(agent or '—')}</td>\n"
            f"          <td>{utc_time(run.started_at)}</td>\n"
            f"          <td>{escape(humanize_duration(result.duration) or '—')}</td>\n"
            f"          <td>{escape(truncated(result.message, MESSAGE_SHOWN))}</td>\n"
            "        </tr>\n"
        )
    return mark_safe("".join(rows) or '        <tr><td colspan="6">No results yet.</td></tr>\n')
