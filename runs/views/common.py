"""What every page area's views share: the htmx request type and small parsing helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest
from django_htmx.middleware import HtmxDetails

from runs import selectors


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def is_fragment(request: HtmxHttpRequest) -> bool:
    """htmx asks for a part of the page (not when it restores its history from the server)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def cursor(request: HttpRequest) -> dict[str, str]:
    return {"after": request.GET.get("after", ""), "before": request.GET.get("before", "")}


def query_digest(request: HttpRequest) -> str:
    """The request's query string, short and safe for a cache key."""
    return hashlib.blake2b(request.GET.urlencode().encode(), digest_size=16).hexdigest()


def drawn_once(key: str, draw: Callable[[], str]) -> str:
    """HTML cached under `key` (which names every revision it shows), drawn on a miss. A
    cached part also expires after RUNBOARD_PAGE_CACHE_SECONDS (runs.services.revision)."""
    html = cache.get(key)
    if html is None:
        html = draw()
        cache.set(key, html, settings.RUNBOARD_PAGE_CACHE_SECONDS)
    return html


def int_param(request: HttpRequest, name: str) -> int | None:
    """An integer query parameter, None when absent, not a number or beyond any id."""
    return selectors.db_id(request.GET.get(name, ""))


def get_or_404[T](getter: Callable[..., T], pk: int, what: str, **kwargs: Any) -> T:
    """A selector's row by pk, or a 404 that says what was missing."""
    try:
        return getter(pk=pk, **kwargs)
    except ObjectDoesNotExist as exc:
        raise Http404(f"No such {what}.") from exc
