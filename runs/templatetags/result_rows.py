"""A run's result rows, drawn in Python: a page of them costs more in template lookups than
the page's queries (the same reason as runs.widgets.QuickSelect)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from html import escape
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from runs.selectors import AgentCount, FailureCause, ResultRow
from runs.templatetags.runboard import humanize_duration, id_url, status_badge, truncated

register = template.Library()

MESSAGE_SHOWN = 300  # characters of a message in the row; the rest under "Log excerpt"


@register.simple_tag
def result_rows(
    rows: Iterable[ResultRow],
    run: Any,
    pick: bool = False,
    causes: Mapping[int, FailureCause] | None = None,
) -> SafeString:
    """One `<tr>` per result; `pick` adds the checkbox that picks it for the rerun form, and
    a failure with a cause (runs.selectors.failure_causes) says whether it is new, and links
    its group."""
    # A badge per status pair, once.
    case_url = id_url("runs:test_case")
    group_url = id_url("runs:failure_group")
    badge = functools.cache(status_badge)
    causes = causes or {}
    return mark_safe(
        "".join(
            _row(result, run.pk, pick, case_url, badge, _cause(causes.get(result.pk), group_url))
            for result in rows
        )
    )


@register.simple_tag
def agent_count_rows(agents: Iterable[AgentCount]) -> SafeString:
    """The run's per-agent counts, a `<tr>` each (a run on forty agents drew slower through
    template lookups than its counting query)."""
    rows = []
    for agent in agents:
        only = f"?agent={agent.pk}"
        failed = (
            f'<a class="count-failed" href="{only}&amp;status=failures">{agent.failed}</a>'
            if agent.failed
            else "0"
        )
        rows.append(
            f'<tr><td class="nowrap"><a href="{only}">{escape(agent.title)}</a></td>'
            f"<td>{agent.results}</td>\n  <td>{failed}</td></tr>\n"
        )
    return mark_safe("".join(rows))


def _cause(cause: FailureCause | None, group_url: str) -> str:
    if cause is None:
        return ""
    link = escape(group_url.format(cause.group_id))
    label = "new" if cause.is_new else "known"
    muted = ' <span class="badge muted-badge">muted</span>' if cause.muted else ""
    return (
        f'<p class="cause{" is-muted" if cause.muted else ""}"><span class="badge {label}">'
        f'{label}</span>{muted} <a href="{link}">cause</a></p>'
    )


def _row(
    result: ResultRow,
    run_pk: int,
    pick: bool,
    case_url: str,
    badge: Callable[..., str],
    cause: str = "",
) -> str:
    # f-strings over escaped values: format_html per cell costs more than the page's queries.
    title = (result.test_case.title if result.test_case else "") or result.case_key
    agent = result.agent.title if result.agent else ""
    picker = ""
    if pick:
        on = f" on {agent}" if agent else ""
        picker = (
            f'<td><input type="checkbox" name="cases" value="{result.pk}" form="rerun-form" '
            f'id="pick-{result.pk}" aria-label="Pick {escape(title + on)} for a rerun"></td>'
        )
    if result.test_case_id:
        link = escape(case_url.format(result.test_case_id))
        case = f'<a href="{link}?from={run_pk}">{escape(result.test_case.title)}</a>'
    else:
        case = escape(result.case_key or result.external_id)
    retries = (
        f' <span class="muted">({result.retry_count} retries)</span>' if result.retry_count else ""
    )
    return (
        f'<tr id="result-{result.pk}" class="row-{escape(result.status)}">\n  {picker}'
        f"<td>{case}{retries}</td>\n  <td>{badge(result.status, result.vendor_status)}</td>\n"
        f'  <td class="nowrap">{escape(agent or "—")}</td>\n'
        f'  <td class="nowrap">{escape(humanize_duration(result.duration) or "—")}</td>\n'
        f'  <td class="details">{cause}{_details(result)}</td>\n</tr>\n'
    )


def _details(result: ResultRow) -> str:
    message, failure = result.message, result.status_enum.is_failure
    parts = []
    if message:
        parts.append(
            format_html(
                '<p class="{}">{}</p>',
                "failure-message" if failure else "result-message",
                truncated(message, MESSAGE_SHOWN),
            )
        )
    long = len(message) > MESSAGE_SHOWN
    if result.log_excerpt or long:
        parts.append(
            format_html(
                "<details><summary>Log excerpt</summary>{}<pre>{}</pre></details>",
                format_html("<p>{}</p>", message) if long else "",
                result.log_excerpt,
            )
        )
    if result.is_data_driven and result.iterations:
        parts.append(_iterations(result.iterations, open_=failure))
    return mark_safe("".join(parts))


def _iterations(iterations: list[dict[str, Any]], *, open_: bool) -> str:
    items = format_html_join(
        "",
        "<li>{} {}</li>",
        (
            (
                status_badge(it.get("status", ""), it.get("vendor_status", "")),
                it.get("name") or it.get("id", ""),
            )
            for it in iterations
        ),
    )
    return format_html(
        '<details{}><summary>{} iterations</summary><ol class="iterations">{}</ol></details>',
        " open" if open_ else "",
        len(iterations),
        items,
    )
