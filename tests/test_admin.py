"""The admin edits orchestrators; mirrored data is read-only; a credential is write-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from runs.models import Orchestrator, Webhook, WebhookDelivery
from tests.factories import make_orchestrator, make_result, make_run, make_schedule

pytestmark = pytest.mark.django_db

SECRET = "AK-very-secret-4711"


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    client.force_login(admin)
    return client


def test_the_credential_never_appears_in_the_admin(admin_client):
    orchestrator = make_orchestrator(credential=SECRET)
    run = make_run(make_schedule(orchestrator))
    pages = [
        reverse("admin:runs_orchestrator_changelist"),
        reverse("admin:runs_orchestrator_change", args=[orchestrator.pk]),
        reverse("admin:runs_run_change", args=[run.pk]),
        reverse("admin:runs_schedule_changelist"),
        reverse("admin:index"),
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert SECRET not in response.content.decode(), page


def test_saving_without_a_credential_keeps_the_stored_one(admin_client):
    orchestrator = make_orchestrator(credential=SECRET, name="lab")
    response = admin_client.post(
        reverse("admin:runs_orchestrator_change", args=[orchestrator.pk]),
        {
            "kind": "leapwork",
            "name": "lab-renamed",
            "base_url": orchestrator.base_url,  # unchanged: no connection check
            "credential": "",
            "test_plan_ids": "[]",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    orchestrator.refresh_from_db()
    assert orchestrator.name == "lab-renamed"
    assert orchestrator.credential == SECRET


def test_mirrored_data_is_read_only(admin_client):
    run = make_run()
    result = make_result(run)
    assert admin_client.get(reverse("admin:runs_run_add")).status_code == 403
    response = admin_client.post(reverse("admin:runs_run_delete", args=[run.pk]), {"post": "yes"})
    assert response.status_code == 403
    change = admin_client.get(reverse("admin:runs_executionresult_change", args=[result.pk]))
    assert change.status_code == 200
    assert b'type="submit"' not in change.content or b"Save" not in change.content
    assert Orchestrator.objects.count() == 1


# Webhooks (issue 16): configured here, their secret write-only, their delivery log read-only.

HOOK_SECRET = "whsec-admin-only-1234"


def webhook_form(**fields: str | list[str]) -> dict[str, str | list[str]]:
    return {
        "name": "team chat",
        "url": "https://chat.example.com/hooks/abc",
        "events": ["rerun.finished", "sync.failing"],
        "body_format": "slack",
        "secret": "",
        "active": "on",
        **fields,
    }


def test_a_webhook_is_configured_with_its_events_and_its_secret_is_never_shown(admin_client):
    response = admin_client.post(
        reverse("admin:runs_webhook_add"), webhook_form(secret=HOOK_SECRET)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    hook = Webhook.objects.get()
    assert hook.events == ["rerun.finished", "sync.failing"] and hook.secret == HOOK_SECRET
    for page in (
        reverse("admin:runs_webhook_changelist"),
        reverse("admin:runs_webhook_change", args=[hook.pk]),
    ):
        response = admin_client.get(page)
        assert response.status_code == 200 and HOOK_SECRET not in response.content.decode()

    # Saved again without a secret: the stored one stays, unless it is removed.
    change = reverse("admin:runs_webhook_change", args=[hook.pk])
    assert admin_client.post(change, webhook_form(name="renamed")).status_code == 302
    hook.refresh_from_db()
    assert (hook.name, hook.secret) == ("renamed", HOOK_SECRET)
    assert admin_client.post(change, webhook_form(clear_secret="on")).status_code == 302
    hook.refresh_from_db()
    assert hook.secret == ""


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "ftp://chat.example.com/hook"),
        ("url", "https://☃.example/hook"),
        ("events", ["rerun.finished", "everything"]),
    ],
)
def test_a_webhook_the_worker_could_not_send_is_refused(admin_client, field, value):
    response = admin_client.post(reverse("admin:runs_webhook_add"), webhook_form(**{field: value}))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Webhook.objects.exists()


def test_staff_see_the_delivery_log_read_only_and_can_send_a_test_event(admin_client):
    hook = Webhook.objects.create(name="chat", url="https://chat.example.com/h", events=[])
    response = admin_client.post(
        reverse("admin:runs_webhook_changelist"),
        {"action": "send_test_event", "_selected_action": [hook.pk]},
    )
    assert response.status_code == 302
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event, delivery.state, delivery.attempts) == ("ping", "pending", 0)

    log = admin_client.get(reverse("admin:runs_webhookdelivery_changelist"))
    assert log.status_code == 200 and "chat" in log.content.decode()
    assert admin_client.get(reverse("admin:runs_webhookdelivery_add")).status_code == 403
    page = admin_client.get(reverse("admin:runs_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
