"""Template helpers for reruns: the preview's planned calls, a request's verdict."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django import template

from runs import selectors

register = template.Library()


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
