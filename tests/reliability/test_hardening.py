"""Issue 14, hardening: what a production error leaves behind, who may connect an orchestrator,
what an error report shows of a credential, login throttling, CSP and the public pages."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import clear_url_caches, path, reverse
from django.views.debug import ExceptionReporter

from runs.models import Orchestrator
from runs.services.orchestrators import ConnectError, orchestrator_connect
from tests.emulated import emulated
from tests.factories import make_orchestrator, make_user

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


# --- 7. An error report (Django's technical 500 reporter) never shows a credential. ---------

CREDENTIAL = "credential-never-in-a-report"
# Nothing listens on the discard port: the check fails at once, and the page answers 200.
NOWHERE = "http://127.0.0.1:9"


def error_report(request: HttpRequest | None, exc_info: tuple | None = None) -> str:
    """The technical 500 page Django draws for an error in this request (mailed to ADMINS with
    DEBUG off), local variables included."""
    exc_type, exc, tb = exc_info or (RuntimeError, RuntimeError("a later error"), None)
    return ExceptionReporter(request, exc_type, exc, tb, is_email=False).get_traceback_html()


@pytest.fixture
def superuser_client(client: Client, db) -> Client:
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def connect_data(**fields: str) -> dict[str, str]:
    return {
        "kind": "leapwork",
        "name": "lab",
        "base_url": NOWHERE,
        "credential": CREDENTIAL,
        **fields,
    }


def test_the_connect_page_hides_the_credential_from_error_reports(superuser_client):
    response = superuser_client.post(reverse("runs:orchestrator_connect"), connect_data())
    assert "refused the connection" in response.content.decode()
    request = response.wsgi_request
    assert tuple(getattr(request, "sensitive_post_parameters", ())) == ("credential",)
    report = error_report(request)
    assert CREDENTIAL not in report
    assert "credential" in report and NOWHERE in report, "the rest of the POST stays readable"


def test_the_orchestrator_admin_hides_the_credential_from_error_reports(superuser_client):
    orchestrator = make_orchestrator(name="lab")
    for url in (
        reverse("admin:runs_orchestrator_add"),
        reverse("admin:runs_orchestrator_change", args=[orchestrator.pk]),
    ):
        data = connect_data(test_plan_ids="[]", enabled="on", name="lab2")
        response = superuser_client.post(url, data)
        assert "refused the connection" in response.content.decode(), url
        request = response.wsgi_request
        assert tuple(getattr(request, "sensitive_post_parameters", ())) == ("credential",), url
        assert CREDENTIAL not in error_report(request), url


@pytest.mark.django_db
def test_connecting_hides_the_credential_from_the_traceback_variables():
    with pytest.raises(ConnectError) as raised:
        orchestrator_connect(kind="leapwork", base_url=NOWHERE, name="lab", credential=CREDENTIAL)
    report = error_report(None, (raised.type, raised.value, raised.tb))
    assert "orchestrator_connect" in report, "the frame is in the report, its credential is not"
    assert CREDENTIAL not in report


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "credential", "vendor_frame"),
    [
        ("leapwork", CREDENTIAL, "check"),
        ("conductor", f"key-id:{CREDENTIAL}", "_fetch_token"),
        ("conductor", CREDENTIAL, "_request"),
        ("testsigma", CREDENTIAL, "check"),
    ],
)
def test_a_vendor_client_failing_while_connecting_leaves_the_credential_out_of_the_report(
    kind, credential, vendor_frame
):
    """Below the service the vendor clients hold the credential, split (Orkes' keyId:keySecret)
    or as a header; they cannot name it to Django, so the report's filter masks it by name."""
    with pytest.raises(ConnectError) as raised:
        orchestrator_connect(kind=kind, base_url=NOWHERE, name="lab", credential=credential)
    report = error_report(None, (raised.type, raised.value, raised.tb))
    assert f"in {vendor_frame}" in report, "the vendor's frames are in the report"
    assert CREDENTIAL not in report


# --- 8. Connecting needs the admin's permissions, not only staff status. --------------------


def staff_client(client: Client, *permissions: str) -> Client:
    user = make_user("staff", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_staff_without_the_orchestrator_permissions_may_not_connect_nor_see_the_link(client):
    orchestrator = make_orchestrator(name="lab", base_url="http://leapwork.example")
    staff = staff_client(client)
    page = staff.get(reverse("runs:orchestrators")).content.decode()
    assert reverse("runs:orchestrator_connect") not in page

    opened = staff.get(reverse("runs:orchestrator_connect"))
    assert opened.status_code == 403
    assert "runs.add_orchestrator" in opened.content.decode(), "the page says what is missing"
    repoint = staff.post(
        reverse("runs:orchestrator_connect"), connect_data(base_url="http://attacker.example")
    )
    assert repoint.status_code == 403
    orchestrator.refresh_from_db()
    assert orchestrator.base_url == "http://leapwork.example"


@pytest.mark.django_db
def test_staff_who_may_only_add_cannot_repoint_an_existing_orchestrator(client):
    orchestrator = make_orchestrator(name="lab", base_url="http://leapwork.example")
    staff = staff_client(client, "add_orchestrator")
    assert (
        reverse("runs:orchestrator_connect")
        in staff.get(reverse("runs:orchestrators")).content.decode()
    )

    response = staff.post(
        reverse("runs:orchestrator_connect"), connect_data(base_url="http://attacker.example")
    )
    assert response.status_code == 403
    assert "Changing the orchestrator lab needs" in response.content.decode()
    assert "runs.change_orchestrator" in response.content.decode()
    orchestrator.refresh_from_db()
    assert orchestrator.base_url == "http://leapwork.example"


@pytest.mark.django_db
def test_staff_who_may_only_change_cannot_connect_a_new_orchestrator(client):
    staff = staff_client(client, "change_orchestrator")
    response = staff.post(reverse("runs:orchestrator_connect"), connect_data(name="new"))
    assert response.status_code == 403
    assert "runs.add_orchestrator" in response.content.decode()
    assert not Orchestrator.objects.exists()


@pytest.mark.django_db
def test_staff_with_the_permissions_connect_and_change_an_orchestrator(client):
    staff = staff_client(client, "add_orchestrator", "change_orchestrator")
    with emulated("leapwork") as (app, server):
        data = connect_data(base_url=server.base_url, credential=app.credential)
        created = staff.post(reverse("runs:orchestrator_connect"), data)
        assert created.status_code == 302
        changed = staff.post(
            reverse("runs:orchestrator_connect"), {**data, "base_url": server.base_url + "/"}
        )
        assert changed.status_code == 302
    assert Orchestrator.objects.get(name="lab").base_url == server.base_url


# --- 10c. No public password reset without a mail server. ----------------------------------

PASSWORD_RESET_PATHS = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/done/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PASSWORD_RESET_PATHS)
def test_password_reset_is_not_routed_without_a_mail_server(client, path):
    assert client.get(path).status_code == 404


@pytest.mark.django_db
def test_password_reset_is_routed_once_a_mail_server_is_configured(client, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    reload_urls()
    try:
        assert client.get("/accounts/password_reset/").status_code == 200
    finally:
        settings.MAILERS = {}
        reload_urls()
    assert client.get("/accounts/password_reset/").status_code == 404


def reload_urls() -> None:
    importlib.reload(importlib.import_module("dashboard.urls"))
    clear_url_caches()


@pytest.mark.django_db
def test_login_logout_and_password_change_stay_routed(client):
    assert client.get(reverse("login")).status_code == 200
    assert reverse("logout") == "/accounts/logout/"
    assert client.get(reverse("password_change")).status_code == 302, "it needs a login"


# --- 10a. Login throttled per user name and per address (django-axes). ---------------------


def log_in(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


@pytest.mark.django_db
def test_five_failed_logins_lock_the_user_out_even_with_the_right_password(client, settings):
    user = make_user("alice")
    limit = settings.AXES_FAILURE_LIMIT
    failures = [log_in(client, "alice", "wrong").status_code for _ in range(limit)]
    assert failures == [200] * (limit - 1) + [429], "the last failure allowed locks at once"
    locked = log_in(client, "alice", "correct horse battery")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "Try again in 15 min" in page
    assert "_auth_user_id" not in client.session
    # Per user name: another address does not help.
    assert log_in(client, "alice", "correct horse battery", "10.9.9.9").status_code == 429

    call_command("axes_reset", stdout=StringIO())  # the administrator lifts the lock
    assert log_in(client, "alice", "correct horse battery").status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
def test_failed_logins_for_many_names_lock_out_their_address(client, settings):
    make_user("bob")
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, f"guess{n}", "wrong", "10.0.0.7")
    assert log_in(client, "bob", "correct horse battery", "10.0.0.7").status_code == 429
    assert log_in(client, "bob", "correct horse battery", "10.0.0.8").status_code == 302


@pytest.mark.django_db
def test_a_successful_login_forgets_the_failures_before_it(client, settings):
    make_user("carol")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "carol", "wrong")
    assert log_in(client, "carol", "correct horse battery").status_code == 302
    client.post(reverse("logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "carol", "wrong")
    assert log_in(client, "carol", "correct horse battery").status_code == 302


@pytest.mark.django_db
def test_the_admin_login_is_throttled_too(client, settings):
    make_user("dave", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("admin:login"), {"username": "dave", "password": "wrong"})
    locked = client.post(
        reverse("admin:login"), {"username": "dave", "password": "correct horse battery"}
    )
    assert locked.status_code == 429


# --- 10b. A Content-Security-Policy the pages live under. ----------------------------------

TEMPLATES = ROOT / "templates"
INLINE_CODE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|\shx-on[:-]|javascript:", re.I
)


@pytest.mark.django_db
def test_every_page_is_served_with_a_policy_that_allows_nothing_inline(viewer_client):
    response = viewer_client.get(reverse("runs:overview"))
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    # htmx would otherwise inject its indicator <style> (refused by style-src).
    assert '"includeIndicatorStyles": false' in response.content.decode()


def test_no_template_has_inline_script_style_or_handler():
    """What the policy refuses: a template with any of these breaks under it."""
    offending = {
        str(template.relative_to(TEMPLATES)): match.group(0)
        for template in TEMPLATES.rglob("*.html")
        if (match := INLINE_CODE.search(template.read_text()))
    }
    assert offending == {}
