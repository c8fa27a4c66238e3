"""A cause's page, drawn in Python: where it struck (per schedule, case and agent, twenty rows
each) and its newest failures in full. Through template lookups these cost more than the
page's queries, as the history's run rows and a case's result rows did."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape
from typing import Any

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from runs.models import ExecutionResult
from runs.templatetags.runboard import id_url, utc_time

register = template.Library()

NONE = '<span class="muted">{}</span>'


def _link(url: str, pk: int | None, title: str | None, missing: str) -> str:
    """A link to a place by its id, or the muted word for none."""
    if not pk:
        return NONE.format(missing)
    return f'<a href="{url.format(pk)}">{escape(title or "")}</a>'


def _rows(rows: Iterable[dict[str, Any]], cells: Callable[[dict[str, Any]], tuple]) -> SafeString:
    """A `<tr>` per row, with the cells `cells` draws for it (HTML, escaped already)."""
    return mark_safe(
        "".join(
            "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells(row)) + "</tr>\n" for row in rows
        )
    )


@register.simple_tag
def cause_schedule_rows(rows: Iterable[dict[str, Any]]) -> SafeString:
    """A `<tr>` per schedule the cause struck: its failures, first and last seen."""
    url = id_url("runs:schedule")
    return _rows(
        rows,
        lambda row: (
            _link(url, row["run__schedule_id"], row["run__schedule__title"], "no schedule"),
            escape(row["run__orchestrator__name"]),
            row["n"],
            utc_time(row["first_at"]),
            utc_time(row["last_at"]),
        ),
    )


@register.simple_tag
def cause_case_rows(rows: Iterable[dict[str, Any]]) -> SafeString:
    """A `<tr>` per test case the cause failed: its failures, first and last seen."""
    url = id_url("runs:test_case")
    return _rows(
        rows,
        lambda row: (
            _link(url, row["test_case_id"], row["test_case__title"], "no case"),
            row["n"],
            utc_time(row["first_at"]),
            utc_time(row["last_at"]),
        ),
    )


@register.simple_tag
def cause_agent_rows(rows: Iterable[dict[str, Any]]) -> SafeString:
    """A `<tr>` per agent the cause failed on, linked to the history filtered by it."""
    url = reverse("runs:list") + "?agent={}"
    return _rows(
        rows,
        lambda row: (
            _link(url, row["agent_id"], row["agent__title"], "no agent"),
            escape(row["agent__orchestrator__name"] or ""),
            row["n"],
            utc_time(row["last_at"]),
        ),
    )


@register.simple_tag
def cause_examples(results: Iterable[ExecutionResult]) -> SafeString:
    """The newest failures in full: where, when, the message and the log's excerpt."""
    run_url = id_url("runs:detail")
    return mark_safe("".join(_example(result, run_url) for result in results))


def _example(result: ExecutionResult, run_url: str) -> str:
    run = result.run
    case = result.test_case.title if result.test_case_id else ""
    agent = f" · {escape(result.agent.title)}" if result.agent_id else ""
    log = f'  <pre class="log">{escape(result.log_excerpt)}</pre>\n' if result.log_excerpt else ""
    return (
        '<article class="card failure-example">\n'
        f'  <p><a href="{run_url.format(run.pk)}">{escape(str(run))}</a> on '
        f"{escape(run.orchestrator.name)} · {escape(case or result.case_key)}{agent} · "
        f"{utc_time(result.started_at)}</p>\n"
        f'  <p class="message">{escape(result.message)}</p>\n{log}</article>\n'
    )
