"""Template tags of the failure groups' pages."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

from runs.selectors import FailureGroupSummary
from runs.templatetags.runboard import id_url, truncated, utc_time

register = template.Library()

CAUSE_SHOWN = 160  # characters of a cause's normalized text in its row

BAR_WIDTH, HEIGHT = 4, 20


@register.simple_tag
def sparkline(per_day: list[int], first_day: date | None = None) -> SafeString:
    """Failures per day as an SVG bar chart (presentation attributes: no inline style), each
    bar titled with its UTC day when the first is given. Every value is a number or a date
    the tag computes, so the bars are plain f-strings: format_html per bar cost a failures
    page more than drawing the rest of it."""
    top = max(per_day, default=0) or 1
    bars = []
    for i, n in enumerate(per_day):
        height = max(1, round(n * HEIGHT / top)) if n else 0
        day = f"{first_day + timedelta(days=i)}: " if first_day else ""
        bars.append(
            f'<rect x="{i * BAR_WIDTH}" y="{HEIGHT - height}" width="{BAR_WIDTH - 1}" '
            f'height="{height}"><title>{day}{n} failure{"s" if n != 1 else ""}</title></rect>'
        )
    width = len(per_day) * BAR_WIDTH
    since = f" since {first_day}" if first_day else ""
    return mark_safe(
        f'<svg class="sparkline" width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}"'
        f' role="img" aria-label="{sum(per_day)} failures over {len(per_day)} days{since}">'
        f"{''.join(bars)}</svg>"
    )


@register.simple_tag
def failure_group_rows(groups: Iterable[FailureGroupSummary]) -> SafeString:
    """The failures page's causes, a `<tr>` each, drawn in Python: fifty causes drew slower
    through template lookups (and a URL reversed for each) than the queries that count them."""
    group_url = id_url("runs:failure_group")
    return mark_safe("".join(_group_row(row, group_url) for row in groups))


def _group_row(row: FailureGroupSummary, group_url: str) -> str:
    group = row.group
    muted = ' class="is-muted"' if row.muted else ""
    badges = ('<span class="badge muted-badge">muted</span> ' if row.muted else "") + (
        '<span class="badge new">new</span> ' if row.is_new else ""
    )
    if row.rerun:
        verdict = row.rerun_verdict
        reruns = (
            f'<span class="badge {slugify(verdict)}">{verdict}</span> '
            f'<span class="muted">{row.cleared} of {row.rerun} passed</span>'
        )
    else:
        reruns = '<span class="muted">not rerun</span>'
    return (
        f'<tr id="failure-group-{group.pk}"{muted}>\n'
        f'  <td class="cause">{badges}<a href="{group_url.format(group.pk)}">'
        f"<code>{escape(truncated(group.normalized, CAUSE_SHOWN))}</code></a></td>\n"
        f"  <td>{row.results}</td>\n  <td>{row.runs}</td>\n  <td>{row.cases}</td>\n"
        f"  <td>{row.agents}</td>\n  <td>{row.orchestrators}</td>\n"
        f"  <td>{sparkline(row.per_day, row.window_start.date())}</td>\n"
        f'  <td class="rerun-outcome">{reruns}</td>\n'
        f"  <td>{utc_time(group.first_seen_at)}</td>\n  <td>{utc_time(row.last_at)}</td>\n</tr>\n"
    )
