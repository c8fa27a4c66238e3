"""The forms that read page filters from the query string (GET only; they never write)."""

from __future__ import annotations

import functools
from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator

from runs import selectors
from runs.models import Agent, Orchestrator, Schedule, Trigger
from runs.status import Status
from runs.widgets import QuickSelect, model_pairs

RUN_SORTS = [
    ("", "Newest first"),  # the default, "-started", stays out of the URL
    ("started", "Oldest first"),
    ("-duration", "Longest first"),
    ("duration", "Shortest first"),
]
FAILURES_CHOICE = "failures"
# A "to" date includes its whole day: the day after it must exist.
LAST_DAY = date.max - timedelta(days=1)


# The agent filters offer this many agents, those seen most recently (and the one chosen,
# wherever it is): a cluster's workers come and go by the thousand, and every page of the
# history and of the failures would carry them all. Any other agent is on the agents page,
# found by its title or host, and its row links to its history.
AGENTS_OFFERED = 200


def _places_on_demand(form: forms.Form) -> None:
    """The orchestrator, schedule and agent options of `form`, read only when drawn."""
    for name, label in (("orchestrator", "name"), ("schedule", "title")):
        field = form.fields[name]
        field.widget.pairs = model_pairs(field, label)
    agent = form.fields["agent"]
    agent.widget.pairs = functools.cache(
        functools.partial(_agents_offered, agent, form.data.get("agent", ""))
    )


def _agents_offered(field: forms.ModelChoiceField, chosen: str) -> list[tuple[Any, str]]:
    """The agent filter's options by title: the agents seen most recently (the agents page's
    order, from its index), the one chosen, and when there are more, a note that says where
    they are."""
    recent = Agent.objects.order_by(*selectors.AGENT_KEY.ordering())
    pairs = list(recent.values_list("pk", "title")[: AGENTS_OFFERED + 1])
    more = len(pairs) > AGENTS_OFFERED
    pairs = pairs[:AGENTS_OFFERED]
    pk = selectors.db_id(chosen)
    if pk is not None and pk not in {offered for offered, _ in pairs}:
        pairs += Agent.objects.filter(pk=pk).values_list("pk", "title")
    pairs.sort(key=lambda pair: (pair[1], pair[0]))
    note = [(None, "Older agents: search the Agents page")] if more else []
    return [("", field.empty_label), *pairs, *note]


class RunFilterForm(forms.Form):
    """Run history filters; every field is optional and an invalid one is simply ignored."""

    q = forms.CharField(required=False, label="Search", max_length=200)
    orchestrator = forms.ModelChoiceField(
        widget=QuickSelect,
        queryset=Orchestrator.objects.order_by("name"),
        required=False,
        to_field_name="name",
        empty_label="Any orchestrator",
    )
    schedule = forms.ModelChoiceField(
        widget=QuickSelect,
        queryset=Schedule.objects.filter(is_temporary=False).order_by("title", "id"),
        required=False,
        empty_label="Any schedule",
    )
    status = forms.ChoiceField(
        widget=QuickSelect,
        required=False,
        choices=[("", "Any status"), (FAILURES_CHOICE, "Failed or error"), *Status.choices()],
    )
    agent = forms.ModelChoiceField(
        widget=QuickSelect,
        queryset=Agent.objects.order_by("title", "id"),
        required=False,
        empty_label="Any agent",
    )
    trigger = forms.ChoiceField(
        widget=QuickSelect, required=False, choices=[("", "Any trigger"), *Trigger.choices]
    )
    build = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Starts with…"}),
    )
    date_from = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MaxValueValidator(LAST_DAY)],
    )
    date_to = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MaxValueValidator(LAST_DAY)],
    )
    sort = forms.ChoiceField(widget=QuickSelect, required=False, choices=RUN_SORTS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _places_on_demand(self)

    def filters(self) -> dict:
        """The valid, non-empty filters (call after is_valid())."""
        cleaned = getattr(self, "cleaned_data", {})
        return {
            name: value
            for name, value in cleaned.items()
            if name != "sort" and value not in (None, "")
        }

    @property
    def sort_key(self) -> str:
        cleaned = getattr(self, "cleaned_data", {})
        return cleaned.get("sort") or "-started"


class ResultFilterForm(forms.Form):
    """Results of one run: by what they say (a case's title or id, a message), status and
    agent (agents of that run only)."""

    q = forms.CharField(
        required=False,
        label="Search",
        max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": "Case or message"}),
    )
    status = forms.ChoiceField(
        widget=QuickSelect,
        required=False,
        choices=[("", "Any status"), (FAILURES_CHOICE, "Failed or error"), *Status.choices()],
    )
    agent = forms.TypedChoiceField(widget=QuickSelect, required=False, coerce=int, empty_value=None)

    def __init__(self, *args, agents: list[Agent], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [("", "Any agent")] + [
            (agent.pk, agent.title) for agent in agents
        ]

    def filters(self) -> dict:
        cleaned = getattr(self, "cleaned_data", {})
        return {name: value for name, value in cleaned.items() if value not in (None, "")}


# The windows of the failure groups page: its value in the URL, its label, and its days.
FAILURE_WINDOWS = {
    "1d": ("Last 24 hours", 1),
    "7d": ("Last 7 days", 7),
    "30d": ("Last 30 days", 30),
}
DEFAULT_FAILURE_WINDOW = "7d"


class FailureFilterForm(forms.Form):
    """Failure groups: a time window, new, known or muted, and where the failures happened;
    an invalid field is simply ignored."""

    window = forms.ChoiceField(
        widget=QuickSelect,
        required=False,
        choices=[(value, label) for value, (label, _days) in FAILURE_WINDOWS.items()],
    )
    status = forms.ChoiceField(
        widget=QuickSelect,
        required=False,
        choices=[
            ("", "New, known or muted"),
            ("new", "New in this window"),
            ("known", "Known before it"),
            ("muted", "Muted"),
        ],
    )
    orchestrator = RunFilterForm.base_fields["orchestrator"]
    schedule = RunFilterForm.base_fields["schedule"]
    agent = RunFilterForm.base_fields["agent"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _places_on_demand(self)

    @property
    def days(self) -> int:
        window = getattr(self, "cleaned_data", {}).get("window") or DEFAULT_FAILURE_WINDOW
        return FAILURE_WINDOWS[window][1]

    def filters(self) -> dict:
        """The valid, non-empty place filters (call after is_valid())."""
        cleaned = getattr(self, "cleaned_data", {})
        return {
            name: value
            for name, value in cleaned.items()
            if name != "window" and value not in (None, "")
        }
