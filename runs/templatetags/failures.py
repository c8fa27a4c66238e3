"""Template tags of the failure groups' pages."""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join

register = template.Library()

BAR_WIDTH, HEIGHT = 4, 20


@register.simple_tag
def sparkline(per_day: list[int]) -> str:
    """Failures per day as an SVG bar chart (presentation attributes: no inline style)."""
    top = max(per_day, default=0) or 1
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        (
            (
                i * BAR_WIDTH,
                HEIGHT - max(1, round(n * HEIGHT / top)) if n else HEIGHT,
                BAR_WIDTH - 1,
                max(1, round(n * HEIGHT / top)) if n else 0,
                f"{n} failure{'s' if n != 1 else ''}",
            )
            for i, n in enumerate(per_day)
        ),
    )
    total = sum(per_day)
    return format_html(
        '<svg class="sparkline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="{} failures over {} days">{}</svg>',
        len(per_day) * BAR_WIDTH,
        HEIGHT,
        len(per_day) * BAR_WIDTH,
        HEIGHT,
        total,
        len(per_day),
        bars,
    )
