"""Template helpers: humanized durations, status badges, <time> tags, URLs that keep the query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django import template
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from runs.status import Status

register = template.Library()

# Shape or text beside the colour, so a status never depends on colour alone.
STATUS_ICONS = {
    Status.QUEUED: "◌",
    Status.RUNNING: "▶",
    Status.PASSED: "✓",
    Status.FAILED: "✗",
    Status.ERROR: "!",
    Status.CANCELLED: "⊘",
    Status.SKIPPED: "↷",
    Status.UNKNOWN: "?",
}

# One letter each for the pass/fail strip, where a word does not fit.
STATUS_LETTERS = {
    Status.QUEUED: "Q",
    Status.RUNNING: "R",
    Status.PASSED: "P",
    Status.FAILED: "F",
    Status.ERROR: "E",
    Status.CANCELLED: "C",
    Status.SKIPPED: "S",
    Status.UNKNOWN: "?",
}


def _status(value: Any) -> Status:
    try:
        return Status(str(value))
    except ValueError:
        return Status.UNKNOWN


@register.filter
def humanize_duration(value: timedelta | None) -> str:
    """2 min 5 s, 1 h 3 min, 850 ms; empty when unknown."""
    if value is None:
        return ""
    total_ms = int(value.total_seconds() * 1000)
    if total_ms < 0:
        return ""
    if total_ms < 1000:
        return f"{total_ms} ms"
    seconds = total_ms // 1000
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    return f"{seconds} s"


@register.simple_tag
def run_duration(run: Any, now: datetime | None = None) -> str:
    """A run's duration, or for a running run the time since it started ("1 min 12 s so far").

    The time so far is counted when the page renders, not stored: the page and history rows
    poll while a run is in progress, so each poll moves it on. "—" when unknown (a queued
    run has not started: its start is only when Runboard first saw it).
    """
    if _status(run.status) == Status.RUNNING and run.started_at is not None:
        elapsed = (now or timezone.now()) - run.started_at
        # Whole seconds: the vendor's clock and ours may differ by a little, never below zero.
        seconds = max(0, int(elapsed.total_seconds()))
        return (
            f"{humanize_duration(timedelta(seconds=seconds))} so far" if seconds else "just started"
        )
    return humanize_duration(run.duration) or "—"


@register.filter
def status_letter(value: Any) -> str:
    return STATUS_LETTERS[_status(value)]


@register.filter
def status_label(value: Any) -> str:
    return _status(value).label


@register.simple_tag
def status_badge(status: Any, vendor_status: str = "") -> str:
    """Icon + word in the status colour; the vendor's own word on hover."""
    normalized = _status(status)
    title = f"{vendor_status} (vendor status)" if vendor_status else normalized.label
    return format_html(
        '<span class="status status-{}" title="{}"><span aria-hidden="true">{}</span> {}</span>',
        normalized.value,
        title,
        STATUS_ICONS[normalized],
        normalized.label,
    )


def id_url(name: str) -> str:
    """The URL named `name` for an id, as a format string ("/runs/{}/"): reversed once for a
    page of rows whose links differ only by their id."""
    return reverse(name, args=[0]).replace("/0/", "/{}/")


def truncated(text: str, length: int) -> str:
    """`text` cut to `length` characters with an ellipsis, as truncatechars does; a Truncator
    is made only for a text that is longer (one per row of a page costs more than the row)."""
    return text if len(text) <= length else Truncator(text).chars(length)


@register.simple_tag
def utc_time(value: datetime | None, empty: str = "—") -> str:
    """A <time> in UTC; runboard.js shows it in the viewer's zone and moves UTC to the title."""
    if value is None:
        return empty
    # One isoformat, sliced, instead of a strftime too: a cause's page draws 180 of these.
    stamp = value.astimezone(UTC).isoformat()  # 2026-03-04T05:06:07[.123456]+00:00
    text = f"{stamp[:10]} {stamp[11:19]} UTC"
    # Digits, dashes and colons only: nothing to escape (format_html per row of a history
    # costs more than the row's other cells).
    return mark_safe(f'<time datetime="{stamp[:-6]}Z" title="{text}">{text}</time>')


@register.simple_tag(takes_context=True)
def query(context: template.Context, **changes: Any) -> str:
    """The current query string with some parameters changed; None or "" drops one."""
    request = context.get("request")
    params: QueryDict = request.GET.copy() if request is not None else QueryDict(mutable=True)
    for name, value in changes.items():
        params.pop(name, None)
        if value not in (None, ""):
            params[name] = str(value)
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def percent(part: int | float | None, whole: int | float | None) -> int:
    if not whole or part is None:
        return 0
    return round(100 * part / whole)


TREND_WIDTH = 600
TREND_HEIGHT = 190
TREND_TOP = 10
TREND_LEFT = 34  # room for the percentage labels
TREND_RIGHT = 24  # room for the newest point's date, centred under it
TREND_BOTTOM = 40  # room for the date and time under the points
# Dates need about 80 units each to stay readable: beyond this many points, every k-th only.
TREND_MAX_DATES = 7


@register.inclusion_tag("runs/partials/trend.html")
def trend_chart(trend: list[Any]) -> dict[str, Any]:
    """Geometry of the pass-rate trend (selectors.TrendPoint list, oldest first) for an SVG:
    one point per original run, its rate after reruns as a second series, a dated axis."""
    inner_w = TREND_WIDTH - TREND_LEFT - TREND_RIGHT
    inner_h = TREND_HEIGHT - TREND_TOP - TREND_BOTTOM
    bottom = TREND_TOP + inner_h
    step = inner_w / (len(trend) - 1) if len(trend) > 1 else 0
    every = -(-len(trend) // TREND_MAX_DATES) or 1
    # Counted from the newest, so the latest run always carries its date.
    dated = set(range(len(trend) - 1, -1, -every))
    points = []
    for index, point in enumerate(trend):
        x = TREND_LEFT + (index * step if len(trend) > 1 else inner_w / 2)
        started = point.started_at.astimezone(UTC)
        points.append(
            {
                "x": round(x),
                "y": round(TREND_TOP + (1 - point.rate) * inner_h),
                "y_after": round(TREND_TOP + (1 - point.rate_after_reruns) * inner_h),
                "run_id": point.run_id,
                "status": point.status,
                "passed": point.status == Status.PASSED,
                "rate": round(point.rate * 100),
                "rate_after": round(point.rate_after_reruns * 100),
                "reruns": point.reruns,
                # Formatted here: the date filter would convert to TIME_ZONE, the axis is UTC.
                "when": f"{started:%Y-%m-%d %H:%M} UTC",
                "day": f"{started:%b} {started.day}" if index in dated else "",
                "time": f"{started:%H:%M}" if index in dated else "",
            }
        )
    grid = [
        (round(TREND_TOP + (1 - share) * inner_h), f"{round(share * 100)}%")
        for share in (1, 0.5, 0)
    ]
    return {
        "points": points,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "polyline_after": " ".join(f"{p['x']},{p['y_after']}" for p in points),
        "width": TREND_WIDTH,
        "height": TREND_HEIGHT,
        "left": TREND_LEFT,
        "right": TREND_WIDTH - TREND_RIGHT,
        "bottom": bottom,
        "tick_end": bottom + 4,
        "day_y": bottom + 16,
        "time_y": bottom + 29,
        "grid": grid,
        "first_rate": points[0]["rate"] if points else 0,
        "last_rate": points[-1]["rate"] if points else 0,
        "last_rate_after": points[-1]["rate_after"] if points else 0,
        "rerun_count": sum(p["reruns"] for p in points),
    }


# Failure and flakiness rates coloured by meaning: 0% is good news, from RATE_HIGH on it is
# red. Classes, not inline styles; the meter's own low/high/optimum use the same thresholds,
# so even its native rendering is green only near 0%.
RATE_LOW = 10
RATE_HIGH = 50


@register.filter
def rate_band(part: int | float | None, whole: int | float | None) -> str:
    """rate-none, rate-low, rate-medium or rate-high: the CSS class of part/whole."""
    share = 100 * part / whole if whole and part else 0
    if share == 0:
        return "rate-none"
    if share < RATE_LOW:
        return "rate-low"
    return "rate-medium" if share < RATE_HIGH else "rate-high"


@register.simple_tag
def rate_meter(part: int, whole: int, label: str) -> str:
    """A meter and its percentage, both in the colour of their band."""
    share = 100 * part / whole if whole else 0
    text = "<1%" if 0 < share < 0.5 else f"{round(share)}%"
    band = rate_band(part, whole)
    return format_html(
        '<meter class="rate {}" min="0" max="100" low="{}" high="{}" optimum="0" value="{}" '
        'aria-label="{}">{}</meter> <span class="rate-value {}">{}</span>',
        band,
        RATE_LOW,
        RATE_HIGH,
        f"{share:.1f}",
        label,
        text,
        band,
        text,
    )


@register.simple_tag
def form_fields(form: Any) -> str:
    """Each field of a form as a labelled paragraph, with its help and its errors (under the
    ids its input names in aria-describedby), escaped as a template would: drawn in Python
    (the same loop as a template took more than a millisecond for a form of four fields)."""
    return mark_safe(
        "".join(
            f'  <p class="field field-{field.name}">\n'
            f'    <label for="{conditional_escape(field.id_for_label)}">{conditional_escape(field.label)}</label>\n'
            f"    {field}\n"
            + (
                f'    <small class="help" id="{conditional_escape(field.auto_id)}_helptext">'
                f"{conditional_escape(field.help_text)}</small>\n"
                if field.help_text
                else ""
            )
            + (
                f'    <span class="error" role="alert" id="{conditional_escape(field.auto_id)}_error">'
                f"{conditional_escape(' '.join(field.errors))}</span>\n"
                if field.errors
                else ""
            )
            + "  </p>\n"
            for field in form
        )
    )
