"""A run's result rows, drawn in Python: a page of them costs more in template lookups than
the page's queries (the same reason as runs.widgets.QuickSelect)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from runs.models import ExecutionResult
from runs.templatetags.runboard import humanize_duration, status_badge

register = template.Library()

MESSAGE_SHOWN = 300  # characters of a message in the row; the rest under "Log excerpt"


@register.simple_tag
def result_rows(rows: Iterable[ExecutionResult], run: Any, pick: bool = False) -> SafeString:
    """One `<tr>` per result; `pick` adds the checkbox that picks it for the rerun form."""
    # Every case link differs only by its id: reverse once.
    case_url = reverse("runs:test_case", args=[0]).replace("/0/", "/{}/")
    return mark_safe("".join(_row(result, run.pk, pick, case_url) for result in rows))


def _row(result: ExecutionResult, run_pk: int, pick: bool, case_url: str) -> str:
    title = (result.test_case.title if result.test_case else "") or result.case_key
    agent = result.agent.title if result.agent else ""
    picker = ""
    if pick:
        picker = format_html(
            '<td><input type="checkbox" name="cases" value="{}" form="rerun-form" id="pick-{}"'
            ' aria-label="Pick {}{} for a rerun"></td>',
            result.pk,
            result.pk,
            title,
            f" on {agent}" if agent else "",
        )
    if result.test_case_id:
        case = format_html(
            '<a href="{}?from={}">{}</a>',
            case_url.format(result.test_case_id),
            run_pk,
            result.test_case.title,
        )
    else:
        case = format_html("{}", result.case_key or result.external_id)
    retries = (
        format_html(' <span class="muted">({} retries)</span>', result.retry_count)
        if result.retry_count
        else ""
    )
    return format_html(
        '<tr id="result-{}" class="row-{}">\n  {}<td>{}{}</td>\n  <td>{}</td>\n'
        '  <td class="nowrap">{}</td>\n  <td class="nowrap">{}</td>\n'
        '  <td class="details">{}</td>\n</tr>\n',
        result.pk,
        result.status,
        picker,
        case,
        retries,
        status_badge(result.status, result.vendor_status),
        agent or "—",
        humanize_duration(result.duration) or "—",
        _details(result),
    )


def _details(result: ExecutionResult) -> str:
    message, failure = result.message, result.status_enum.is_failure
    parts = []
    if message:
        parts.append(
            format_html(
                '<p class="{}">{}</p>',
                "failure-message" if failure else "result-message",
                Truncator(message).chars(MESSAGE_SHOWN),
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
