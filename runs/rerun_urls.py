"""URLs of the rerun forms and requests, included into runs.urls (namespace `runs`)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
