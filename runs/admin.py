"""Admin: orchestrators, webhooks, users and groups are edited here; mirrored data and the
webhook delivery log are read-only.

A credential, or a webhook's secret, is write-only: the form takes a new one but never renders
the stored one.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from runs.models import (
    Agent,
    ExecutionResult,
    Orchestrator,
    RerunRequest,
    Run,
    Schedule,
    TestCase,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from runs.services.orchestrators import ConnectError, connection_problems, orchestrator_check
from runs.services.webhooks import webhook_ping, webhook_url_problem


class OrchestratorAdminForm(forms.ModelForm):
    credential = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored credential. Never shown again once saved.",
    )
    clear_credential = forms.BooleanField(required=False, label="Remove the stored credential")

    class Meta:
        model = Orchestrator
        fields = ["kind", "name", "base_url", "credential", "test_plan_ids", "enabled"]

    @sensitive_variables("cleaned")
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if (
            self.instance.pk
            and not cleaned.get("credential")
            and not cleaned.get("clear_credential")
        ):
            cleaned["credential"] = self.instance.credential
        if cleaned.get("base_url"):
            problems = connection_problems(
                base_url=cleaned["base_url"], credential=cleaned.get("credential") or ""
            )
            for field, problem in problems.items():
                self.add_error(field, problem)
        self._check_connection(cleaned)
        return cleaned

    @sensitive_variables("cleaned")
    def _check_connection(self, cleaned: dict[str, Any]) -> None:
        """The same check as `manage.py connect`: a new orchestrator, or a changed URL, kind or
        credential, is saved only once the orchestrator accepts it."""
        connecting = ("kind", "base_url", "credential")
        if self.errors or any(not cleaned.get(name) for name in ("kind", "base_url")):
            return
        if self.instance.pk and all(
            cleaned.get(name) == getattr(self.instance, name) for name in connecting
        ):
            return
        candidate = Orchestrator(
            kind=cleaned["kind"],
            base_url=cleaned["base_url"].rstrip("/"),
            credential=cleaned.get("credential") or "",
            test_plan_ids=cleaned.get("test_plan_ids") or [],
        )
        try:
            orchestrator_check(orchestrator=candidate)
        except ConnectError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Orchestrator)
class OrchestratorAdmin(admin.ModelAdmin):
    form = OrchestratorAdminForm
    list_display = ["name", "kind", "base_url", "enabled", "last_synced_at", "last_sync_error"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "base_url"]
    readonly_fields = ["last_synced_at", "last_sync_error", "last_sync_error_at"]

    # The add and change pages both post a credential; an error report shows it masked.
    @method_decorator(sensitive_post_parameters("credential"))
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return super().changeform_view(request, object_id, form_url, extra_context)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Mirrored data: only runs.services writes it."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Agent)
class AgentAdmin(ReadOnlyAdmin):
    list_display = ["title", "orchestrator", "external_id", "host"]
    list_filter = ["orchestrator"]
    search_fields = ["title", "external_id"]


@admin.register(Schedule)
class ScheduleAdmin(ReadOnlyAdmin):
    list_display = ["title", "orchestrator", "external_id", "is_temporary", "is_enabled"]
    list_filter = ["orchestrator", "is_temporary"]
    search_fields = ["title", "external_id"]


@admin.register(TestCase)
class TestCaseAdmin(ReadOnlyAdmin):
    list_display = ["title", "orchestrator", "external_id", "suite"]
    list_filter = ["orchestrator"]
    search_fields = ["title", "external_id"]


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "orchestrator", "status", "attempt", "started_at", "trigger"]
    list_filter = ["orchestrator", "status", "trigger"]
    search_fields = ["external_id", "build"]
    list_select_related = ["schedule", "orchestrator"]
    raw_id_fields = ["schedule", "rerun_of", "rerun_request", "triggered_by"]
    show_full_result_count = False


@admin.register(ExecutionResult)
class ExecutionResultAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "run", "status", "agent", "started_at"]
    list_filter = ["status"]
    search_fields = ["external_id", "case_key"]
    list_select_related = ["run__schedule", "agent", "test_case"]
    raw_id_fields = ["run", "test_case", "agent"]
    show_full_result_count = False


@admin.register(RerunRequest)
class RerunRequestAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "orchestrator", "scope", "state", "requested_at"]
    list_filter = ["state", "scope", "orchestrator"]
    raw_id_fields = ["source_run", "schedule", "requested_by"]


class WebhookAdminForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="What this webhook is told about.",
    )
    secret = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text=(
            "Signs each body: X-Runboard-Signature is sha256= and the HMAC-SHA256 of the body "
            "with this secret. Leave empty to keep the stored one. Never shown again once saved."
        ),
    )
    clear_secret = forms.BooleanField(required=False, label="Remove the stored secret")

    class Meta:
        model = Webhook
        fields = ["name", "url", "events", "body_format", "secret", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if problem := webhook_url_problem(url):
            raise forms.ValidationError(problem)
        return url

    @sensitive_variables("cleaned")
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        keep = self.instance.pk and not cleaned.get("secret") and not cleaned.get("clear_secret")
        if keep:
            cleaned["secret"] = self.instance.secret
        return cleaned


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookAdminForm
    list_display = ["name", "url", "event_list", "body_format", "signed", "active"]
    list_filter = ["active", "body_format"]
    search_fields = ["name", "url"]
    actions = ["send_test_event"]

    @admin.display(description="events")
    def event_list(self, webhook: Webhook) -> str:
        return ", ".join(webhook.events or []) or "none"

    @admin.display(description="signed", boolean=True)
    def signed(self, webhook: Webhook) -> bool:
        return bool(webhook.secret)

    @admin.action(description="Send a test event")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        sent = [webhook_ping(webhook=webhook) for webhook in queryset]
        self.message_user(
            request,
            f"{len(sent)} test event(s) queued: see the webhook deliveries.",
            messages.SUCCESS,
        )

    @method_decorator(sensitive_post_parameters("secret"))
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return super().changeform_view(request, object_id, form_url, extra_context)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: only the webhooks worker writes it."""

    list_display = [
        *("event", "webhook", "state", "attempts", "status_code", "last_error"),
        *("created_at", "next_attempt_at", "delivered_at"),
    ]
    list_filter = ["state", "event", "webhook"]
    search_fields = ["key", "last_error"]
    list_select_related = ["webhook"]
    show_full_result_count = False
