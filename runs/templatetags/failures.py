"""Template tags of the failure groups' pages."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

BAR_WIDTH, HEIGHT = 4, 20


@register.simple_tag
def sparkline(per_day: list[int]) -> SafeString:
    """Failures per day as an SVG bar chart (presentation attributes: no inline style). Every
    value is a number the tag computes, so the bars are plain f-strings: format_html per bar
    cost a failures page more than drawing the rest of it."""
    top = max(per_day, default=0) or 1
    bars = []
    for i, n in enumerate(per_day):
        height = max(1, round(n * HEIGHT / top)) if n else 0
        bars.append(
            f'<rect x="{i * BAR_WIDTH}" y="{HEIGHT - height}" width="{BAR_WIDTH - 1}" '
            f'height="{height}"><title>{n} failure{"s" if n != 1 else ""}</title></rect>'
        )
    width = len(per_day) * BAR_WIDTH
    return mark_safe(
        f'<svg class="sparkline" width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}"'
        f' role="img" aria-label="{sum(per_day)} failures over {len(per_day)} days">'
        f"{''.join(bars)}</svg>"
    )
