"""The deployment checklist holds with the default production variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_variables():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="x" * 20 + "a-long-random-production-secret-key-0123456789",
        ALLOWED_HOSTS="runboard.example.com",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_runs_with_a_development_key():
    result = manage("check", DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_a_typo_in_a_yes_no_variable_stops_the_start_and_says_why():
    result = manage("check", DEBUG="ture")
    assert result.returncode != 0
    assert "DEBUG='ture' is neither yes nor no" in result.stderr


def test_yes_no_variables_read_every_spelling_of_no():
    assert manage("check", DEBUG="off").returncode != 0  # production: it needs a SECRET_KEY
    assert manage("check", DEBUG="Yes").returncode == 0


def database_setting(key: str, **env: str) -> str:
    code = f"from django.conf import settings; print(settings.DATABASES['default'][{key!r}])"
    result = manage("shell", "-c", code, DEBUG="1", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_a_server_database_keeps_healthy_connections_between_requests():
    server = {"DATABASE_URL": "postgres://runboard@127.0.0.1:5432/runboard"}
    assert database_setting("CONN_MAX_AGE", **server) == "60"
    assert database_setting("CONN_HEALTH_CHECKS", **server) == "True"
    assert database_setting("CONN_MAX_AGE", CONN_MAX_AGE="5", **server) == "5"


def test_sqlite_opens_a_connection_per_request():
    assert database_setting("CONN_MAX_AGE", DATABASE_URL="sqlite:///:memory:") == "0"
