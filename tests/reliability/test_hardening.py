"""Issue 14, hardening: what a production error leaves behind, who may connect an orchestrator,
what an error report shows of a credential, login throttling, CSP and the public pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

ROOT = Path(__file__).resolve().parent.parent.parent


@login_not_required
def broken_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the view broke")


# The URLs of a production process whose only page raises (the test below serves them).
urlpatterns = [path("broken/", broken_view)]

SERVE_BROKEN_PAGE = """
import django
django.setup()
from django.test import Client, override_settings
with override_settings(ROOT_URLCONF="tests.reliability.test_hardening", ALLOWED_HOSTS=["testserver"]):
    response = Client(raise_request_exception=False).get("/broken/", secure=True)
print(response.status_code)
"""


def test_it_logs_an_unhandled_error_to_stderr_as_one_json_line_with_debug_off():
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    result = subprocess.run(
        [sys.executable, "-c", SERVE_BROKEN_PAGE],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "dashboard.settings", "SECRET_KEY": "x" * 50},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "500", result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    errors = [r for r in records if r["logger"] == "django.request"]
    assert len(errors) == 1, result.stderr
    error = errors[0]
    assert error["level"] == "ERROR"
    assert error["status"] == 500 and error["path"] == "/broken/" and error["method"] == "GET"
    assert "Traceback (most recent call last)" in error["traceback"]
    assert "RuntimeError: the view broke" in error["traceback"]
