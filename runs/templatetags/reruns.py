"""Template helpers for reruns: the preview's planned calls, a request's verdict."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django import template

from runs import selectors

register = template.Library()

# A preview lists this many of its cases and of its calls, and counts the rest: every one is
# sent, but a rerun of everything in a run of 10,000 would otherwise draw 10,000 of each.
PREVIEW_LISTED = 50


@register.filter
def listed(items) -> list:
    """The first of a preview's cases or calls, those it lists."""
    return list(items[:PREVIEW_LISTED])


@register.filter
def unlisted(items) -> int:
    """How many of a preview's cases or calls it only counts."""
    return max(0, len(items) - PREVIEW_LISTED)


@register.filter
def planned_call(call) -> str:
    """A planned request as the orchestrator will receive it: method, path?query, JSON body."""
    query = f"?{urlencode(call.params, doseq=True)}" if call.params else ""
    text = f"{call.method} {call.path}{query}"
    if call.body is not None:
        text += "\n" + json.dumps(call.body, indent=2, sort_keys=False, default=str)
    return text


@register.inclusion_tag("runs/partials/rerun_verdict.html")
def rerun_verdict(rerun_request) -> dict:
    """What a rerun found, apart from whether the orchestrator took it."""
    return {"rerun_request": rerun_request, "verdict": selectors.rerun_verdict(rerun_request)}


@register.simple_tag
def call_progress(calls) -> str:
    """How far the sending is: "Sending: 12 of 40 calls answered: 11 accepted, 1 refused."."""
    done = [c for c in calls if c.state not in ("planned", "sending")]
    counts: dict[str, int] = {}
    for call in done:
        label = call.get_state_display().lower()
        counts[label] = counts.get(label, 0) + 1
    text = f"Sending: {len(done)} of {len(calls)} call{'s' if len(calls) != 1 else ''} answered"
    if counts:
        text += ": " + ", ".join(f"{n} {label}" for label, n in counts.items())
    return text + "."


@register.filter
def calls_unknown(calls) -> bool:
    """Whether any call's outcome is unknown."""
    return any(c.state == "unknown" for c in calls)
