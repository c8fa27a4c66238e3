"""The rerun and run-now forms: they validate input; the rerun service validates the rest."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone

from runs import selectors
from runs.filters import FAILURE_WINDOWS
from runs.models import Orchestrator, Run, Schedule
from runs.selectors import ResultCounts, ResultRow
from runs.services.orchestrators import connection_problems
from runs.services.reruns import RerunInput, Scope, rerun_capabilities
from runs.widgets import (
    QuickChoices,
    QuickRadio,
    QuickSelect,
    QuickSingleChoice,
    known_pairs,
    model_pairs,
)

SCOPE_LABELS = {
    Scope.FAILED: "Failed only",
    Scope.ALL: "All cases",
    Scope.PICKED: "Picked cases",
    Scope.FROM_TASK: "From a picked task",
}
EMPTY_VARIABLE_ROWS = 2
OWN_AGENT, CHOSEN_AGENTS = "own", "chosen"
# Leapwork sends variables as query parameters, and a URL holds at most 64 KiB once encoded
# (up to three times the UTF-8 bytes): the limits keep every vendor's request sendable.
VARIABLE_NAME_MAX, VARIABLE_VALUE_MAX, VARIABLES_MAX_BYTES = 200, 4_000, 16_000
# A JSON field's text, and how deep its objects and arrays may nest.
JSON_MAX_CHARS, JSON_MAX_DEPTH = 100_000, 32


def variable_rows(data: QueryDict | None, initial: dict[str, Any]) -> list[tuple[str, str]]:
    """The variables editor's rows: submitted ones, else the prefilled ones, plus blank rows."""
    if data is not None:
        rows = list(zip(data.getlist("var_name"), data.getlist("var_value"), strict=False))
    else:
        rows = [(str(k), "" if v is None else str(v)) for k, v in initial.items()]
    rows = [(name, value) for name, value in rows if name.strip() or value.strip()]
    return rows + [("", "")] * EMPTY_VARIABLE_ROWS


def parse_variables(data: QueryDict) -> tuple[dict[str, str], str]:
    """Variables from the editor's rows; a row with a value but no name, a name twice, a NUL
    or a name or value over its length limit is an error."""
    variables: dict[str, str] = {}
    for name, value in zip(data.getlist("var_name"), data.getlist("var_value"), strict=False):
        name = name.strip()
        if problem := _variable_problem(name, value):
            return variables, problem
        if not name:
            if value.strip():
                return variables, f"The value “{_shown(value)}” has no variable name."
            continue
        if name in variables:
            return variables, f"The variable “{name}” is given twice."
        variables[name] = value
    size = sum(len(name.encode()) + len(value.encode()) for name, value in variables.items())
    if size > VARIABLES_MAX_BYTES:
        return (
            variables,
            f"The variables are too long together: at most {VARIABLES_MAX_BYTES:,} bytes.",
        )
    return variables, ""


def _variable_problem(name: str, value: str) -> str:
    if "\x00" in name or "\x00" in value:
        return "A variable cannot hold a NUL character."
    if len(name) > VARIABLE_NAME_MAX:
        return f"The variable name “{_shown(name)}” is too long: at most {VARIABLE_NAME_MAX} characters."
    if len(value) > VARIABLE_VALUE_MAX:
        return (
            f"The value of “{_shown(name)}” is too long: at most {VARIABLE_VALUE_MAX:,} characters."
        )
    return ""


def _shown(text: str, limit: int = 40) -> str:
    """A user's text quoted back in a message, cut short."""
    return text if len(text) <= limit else f"{text[:limit]}…"


def _iteration_pick(value: str) -> tuple[int, str]:
    """ "<result id>:<iteration id>", as the iteration checkboxes send it."""
    pk, sep, iteration = value.partition(":")
    if not sep:
        raise ValueError(value)
    return selectors.db_int(pk), iteration


class AnyOfTheRun(forms.TypedMultipleChoiceField):
    """Picks among a run's results: the choices are only those shown, but any result of the
    run may be sent (a page further down, a search); the form checks them against the run."""

    def valid_value(self, value: Any) -> bool:
        return True


class AgentsField(forms.ModelMultipleChoiceField):
    """Agents by id; an id beyond any the database holds names no agent (and is not sent to
    the database, which would refuse it instead of finding nothing)."""

    def _check_values(self, value: Any) -> Any:
        for pk in value:
            try:
                selectors.db_int(str(pk))
            except ValueError:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                ) from None
        return super()._check_values(value)


class JSONObjectField(forms.CharField):
    """A JSON object typed into a textarea: one that every database can store and every
    vendor can be sent (strict JSON, no NUL, bounded in size and depth)."""

    widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", JSON_MAX_CHARS)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> dict[str, Any] | None:
        value = super().to_python(value)
        if not value or not value.strip():
            return None
        if len(value) > JSON_MAX_CHARS:  # before parsing it (the validators run afterwards)
            raise forms.ValidationError(f"Give at most {JSON_MAX_CHARS:,} characters of JSON.")
        try:
            parsed = json.loads(value, parse_constant=_no_constant, parse_float=_finite)
        except RecursionError as exc:
            raise forms.ValidationError(
                f"This JSON is nested too deeply: at most {JSON_MAX_DEPTH} levels."
            ) from exc
        except ValueError as exc:
            raise forms.ValidationError(f"This is not valid JSON: {exc}.") from exc
        if not isinstance(parsed, dict):
            raise forms.ValidationError('Give a JSON object, like {"key": "value"}.')
        _check_json_values(parsed)
        return parsed

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=2, sort_keys=True)
        return value


def _no_constant(name: str) -> Any:
    raise forms.ValidationError(
        f"JSON has no {name}: give a number, or put {name} in quotes to send it as text."
    )


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise forms.ValidationError(
            f"The number {_shown(text)} is too large: it reads as Infinity."
        )
    return number


def _check_json_values(parsed: Any) -> None:
    """Depth, and texts PostgreSQL cannot store (NUL, a lone UTF-16 surrogate)."""
    pending = [(parsed, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > JSON_MAX_DEPTH:
            raise forms.ValidationError(
                f"This JSON is nested too deeply: at most {JSON_MAX_DEPTH} levels."
            )
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            if "\x00" in value:
                raise forms.ValidationError("JSON texts cannot hold a NUL character (\\u0000).")
            if any("\ud800" <= char <= "\udfff" for char in value):
                raise forms.ValidationError(
                    "JSON texts cannot hold a lone surrogate (\\ud800 to \\udfff)."
                )


class SubmissionForm(forms.Form):
    """A form that sends something once: it carries an idempotency key."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)
    # The digest of the plan last previewed (rendered with the preview, not by the form).
    plan_digest = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["idempotency_key"].initial = uuid.uuid4().hex

    uses_variable_rows = False
    variable_rows: list[tuple[str, str]] = []
    variables_error = ""

    def use_variables_editor(self, *, initial: dict[str, Any]) -> None:
        """Name/value rows for variables, prefilled with `initial` until submitted."""
        self.uses_variable_rows = True
        self.variable_rows = variable_rows(self.data if self.is_bound else None, initial)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.uses_variable_rows and self.is_bound:
            cleaned["variables"], self.variables_error = parse_variables(self.data)
            if self.variables_error:
                self.add_error(None, self.variables_error)
        return cleaned

    def renew_idempotency_key(self) -> None:
        """After a refusal nothing ran: the same values may be sent again, as a new request."""
        self.data = self.data.copy()
        self.data["idempotency_key"] = uuid.uuid4().hex

    def add_invalid(self, errors: dict[str, str]) -> None:
        """The rerun service's refusals, next to their fields where the form has them."""
        for field, message in errors.items():
            self.add_error(field if field in self.fields else None, message)


class RerunForm(SubmissionForm):
    """Rerun a run: only the options its orchestrator supports are fields."""

    scope = forms.ChoiceField(widget=QuickRadio, label="What to rerun")
    where = forms.ChoiceField(
        widget=forms.RadioSelect,
        label="Where",
        choices=[
            (OWN_AGENT, "Each case on the agent it ran on"),
            (CHOSEN_AGENTS, "On these agents"),
        ],
        initial=OWN_AGENT,
        required=False,
    )
    agents = AgentsField(queryset=None, required=False, widget=QuickChoices, label="Agents")
    cases = AnyOfTheRun(coerce=selectors.db_int, required=False, widget=QuickChoices, label="Cases")
    iterations = AnyOfTheRun(
        coerce=_iteration_pick,
        required=False,
        widget=QuickChoices,
        label="Iterations",
    )
    only_failed_iterations = forms.BooleanField(
        required=False, label="Only the failed iterations of data-driven cases"
    )
    workflow_input = JSONObjectField(required=False, label="Workflow input (JSON)")
    correlation_id = forms.CharField(required=False, max_length=300, label="Correlation id")
    task_input = JSONObjectField(required=False, label="Task input (JSON)")

    def __init__(
        self,
        *args: Any,
        run: Run,
        shown: list[ResultRow],
        counts: ResultCounts,
        **kwargs: Any,
    ) -> None:
        """`shown`: the results the page shows (the picker offers only these, never a widget
        per result of a big run); `counts`: the run's, for what it has failed."""
        super().__init__(*args, **kwargs)
        self.run = run
        self.results = shown
        self.capabilities = caps = rerun_capabilities(run.orchestrator)
        self.fields["scope"].choices = [
            (scope.value, SCOPE_LABELS[scope]) for scope in SCOPE_LABELS if scope in caps.scopes
        ]
        self.fields["scope"].initial = (
            Scope.FAILED if counts.failures and Scope.FAILED in caps.scopes else Scope.ALL
        )
        self._cases_field([r for r in shown if r.status_enum.is_failure])
        if caps.agent_picker:
            agents = self.fields["agents"]
            agents.queryset = run.orchestrator.agents.all()
            agents.widget.pairs = model_pairs(agents, "title")
        else:
            del self.fields["agents"], self.fields["where"]
        self._iteration_fields(counts)
        if caps.workflow_input:
            self.fields["workflow_input"].initial = run.variables or {}
            self.fields["correlation_id"].initial = run.correlation_id
        else:
            del self.fields["workflow_input"], self.fields["correlation_id"]
        if not caps.task_input:
            del self.fields["task_input"]
        if caps.variables:
            self.use_variables_editor(initial=_initial_variables(run))

    @property
    def offers_agents(self) -> bool:
        """The agent picker is offered (a bound field's truth would draw every choice)."""
        return "agents" in self.fields

    @property
    def offers_iterations(self) -> bool:
        return "iterations" in self.fields

    @property
    def picks_one_task(self) -> bool:
        """Picking reruns from one task (and what follows it), not the cases picked."""
        return self.capabilities.picked_scope == Scope.FROM_TASK

    @property
    def picks_in_table(self) -> bool:
        """Cases are picked with checkboxes on the run page's results table."""
        return self.capabilities.picked_scope == Scope.PICKED

    def _cases_field(self, failures: list[ResultRow]) -> None:
        field = self.fields["cases"]
        field.choices = [(r.pk, _result_label(r)) for r in self.results]
        if not self.picks_one_task:
            return
        field.label = "Task to rerun from"
        field.widget = QuickSingleChoice()
        field.widget.choices = field.choices
        first = failures[-1] if failures else (self.results[-1] if self.results else None)
        field.initial = [first.pk] if first else []
        if self.capabilities.task_input:
            self.fields["task_input"].initial = first.input if first else None

    def _iteration_fields(self, counts: ResultCounts) -> None:
        choices = _iteration_choices(self.results)
        if not (self.capabilities.iterations and (choices or counts.failures_data_driven)):
            del self.fields["iterations"], self.fields["only_failed_iterations"]
            return
        self.fields["iterations"].choices = choices
        self.fields["only_failed_iterations"].initial = bool(counts.failures) and (
            counts.failures_data_driven == counts.failures
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("where") == CHOSEN_AGENTS and not cleaned.get("agents"):
            self.add_error(
                "agents", "Check at least one agent, or rerun each case on the agent it ran on."
            )
        self._check_picks(cleaned)
        return cleaned

    def _check_picks(self, cleaned: dict[str, Any]) -> None:
        """Picked cases and iterations must be of this run: one query for both. Those found
        join the choices, so a form shown again keeps them checked."""
        cases = set(cleaned.get("cases") or ())
        of_iterations = {pk for pk, _ in cleaned.get("iterations") or ()}
        if not (cases or of_iterations):
            return
        found = selectors.run_results_picked(run=self.run, ids=cases | of_iterations)
        known = {r.pk for r in found}
        if cases - known:
            self.add_error("cases", "Some picked cases are not results of this run.")
        if of_iterations - known:
            self.add_error("iterations", "Some picked iterations are not iterations of this run.")
        offered = {r.pk for r in self.results}
        self.results = [*self.results, *(r for r in found if r.pk not in offered)]
        self.fields["cases"].choices = [(r.pk, _result_label(r)) for r in self.results]
        if "iterations" in self.fields:
            self.fields["iterations"].choices = _iteration_choices(self.results)

    def rerun_input(self) -> RerunInput:
        data = self.cleaned_data
        # Agents checked count unless "each case on the agent it ran on" was picked.
        chosen = data.get("agents") if data.get("where") != OWN_AGENT else None
        iterations: dict[int, list[str]] = {}
        for pk, iteration in data.get("iterations") or []:
            iterations.setdefault(pk, []).append(iteration)
        cases = tuple(dict.fromkeys(data.get("cases") or ()))
        # Picking iterations picks their case.
        cases += tuple(pk for pk in iterations if pk not in cases)
        return RerunInput(
            scope=data["scope"],
            result_ids=cases,
            agents=tuple(chosen or ()),
            iterations={pk: tuple(ids) for pk, ids in iterations.items()},
            only_failed_iterations=bool(data.get("only_failed_iterations")),
            variables=data.get("variables") or {},
            workflow_input=data.get("workflow_input") if data["scope"] == Scope.ALL else None,
            correlation_id=(data.get("correlation_id") or None)
            if data["scope"] == Scope.ALL
            else None,
            task_input=data.get("task_input")
            if data["scope"] in (Scope.FROM_TASK, Scope.PICKED)
            else None,
        )


class RunNowForm(SubmissionForm):
    build = forms.CharField(required=False, max_length=200, label="Build number")
    environment = forms.CharField(required=False, max_length=200, label="Environment id")
    workflow_input = JSONObjectField(required=False, label="Workflow input (JSON)")

    def __init__(self, *args: Any, schedule: Schedule, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schedule = schedule
        self.capabilities = caps = rerun_capabilities(schedule.orchestrator)
        if not caps.build_and_environment:
            del self.fields["build"], self.fields["environment"]
        if caps.run_now_input:
            latest = schedule.runs.order_by("-started_at").first()
            self.fields["workflow_input"].initial = latest.variables if latest else {}
        else:
            del self.fields["workflow_input"]
            if caps.run_now_variables:  # name=value variables (Leapwork, Testsigma runtimeData)
                self.use_variables_editor(initial=_schedule_variables(schedule))

    def rerun_input(self) -> RerunInput:
        data = self.cleaned_data
        variables = data.get("variables") or data.get("workflow_input") or {}
        return RerunInput(
            scope="run_now",
            variables=variables,
            build=data.get("build") or "",
            environment=data.get("environment") or "",
        )


def _iteration_choices(results: list[ResultRow]) -> list[tuple[str, str]]:
    return [
        (
            f"{r.pk}:{it.get('id')}",
            f"{_result_label(r)} · {it.get('name') or it.get('id')} ({it.get('status')})",
        )
        for r in results
        if r.is_data_driven
        for it in r.iterations
    ]


def _result_label(result: ResultRow) -> str:
    title = result.test_case.title if result.test_case else result.case_key
    agent = f" on {result.agent.title}" if result.agent else ""
    return f"{title}{agent} ({result.status})"


def _initial_variables(run: Run) -> dict[str, Any]:
    """Leapwork: what Runboard sent for this run or its source, else the schedule's known names."""
    seen = run
    for _ in range(10):
        if seen is None:
            break
        if seen.variables:
            return dict(seen.variables)
        seen = seen.rerun_of
    return _schedule_variables(run.schedule) if run.schedule else {}


def _schedule_variables(schedule: Schedule) -> dict[str, Any]:
    """The variable names used on this schedule before (values left for the user)."""
    latest = (
        schedule.runs.exclude(variables={})
        .order_by("-started_at")
        .values_list("variables", flat=True)
        .first()
    )
    return dict(latest or {})


class TrackRunForm(forms.Form):
    """Follow a run Runboard cannot discover on its own (Testsigma lists no runs)."""

    orchestrator = forms.ModelChoiceField(queryset=None, label="Orchestrator")
    run_id = forms.CharField(
        max_length=200, label="Run id", help_text="As the orchestrator shows it."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["orchestrator"].queryset = Orchestrator.objects.filter(enabled=True)

    def clean_run_id(self) -> str:
        run_id = self.cleaned_data["run_id"]
        if any(not char.isprintable() for char in run_id):
            raise forms.ValidationError("A run id holds no line breaks or control characters.")
        return run_id


class ConnectForm(forms.Form):
    kind = forms.ChoiceField(choices=Orchestrator._meta.get_field("kind").choices)
    name = forms.SlugField(max_length=64, help_text="Unique; appears in /go/ links.")
    base_url = forms.URLField(max_length=500, label="Base URL", assume_scheme="https")
    credential = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leapwork AccessKey; empty (conductor-oss) or keyId:keySecret (Orkes); Testsigma API key.",
    )
    test_plan_ids = forms.CharField(
        required=False, label="Testsigma test plan ids", help_text="Separated by commas or spaces."
    )
    run_ids = forms.CharField(
        required=False,
        label="Testsigma run ids to follow",
        help_text="Separated by commas or spaces.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("base_url"):
            problems = connection_problems(
                base_url=cleaned["base_url"], credential=cleaned.get("credential") or ""
            )
            for field, problem in problems.items():
                self.add_error(field, problem)
        return cleaned

    def _ids(self, name: str) -> list[str]:
        return [part for part in self.cleaned_data.get(name, "").replace(",", " ").split() if part]

    def clean_test_plan_ids(self) -> list[str]:
        return self._ids("test_plan_ids")

    def clean_run_ids(self) -> list[str]:
        return self._ids("run_ids")


class MuteForm(forms.Form):
    """Mute a cause of failure: everywhere, or on one schedule or agent where it struck,
    for good or until a day."""

    reason = forms.CharField(
        max_length=500, widget=forms.TextInput, help_text="Why, for the record."
    )
    schedule = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Every schedule", widget=QuickSelect
    )
    agent = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Every agent", widget=QuickSelect
    )
    until = forms.DateField(
        required=False,
        label="Until",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The mute ends at the start of this day (UTC); empty: until lifted.",
    )

    def __init__(
        self,
        *args: Any,
        schedules: Any,
        agents: Any,
        drawn: tuple[list[tuple[int, str]], list[tuple[int, str]]] | None = None,
        **kwargs: Any,
    ) -> None:
        """`schedules` and `agents` are what a mute may name; `drawn`, when the page has them
        already, their (id, title) pairs in order, so that drawing the form reads neither."""
        super().__init__(*args, **kwargs)
        places = (("schedule", schedules), ("agent", agents))
        for (name, queryset), pairs in zip(places, drawn or (None, None), strict=True):
            field = self.fields[name]
            field.queryset = queryset
            field.widget.pairs = (
                model_pairs(field, "title") if pairs is None else known_pairs(field, pairs)
            )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason or any(not c.isprintable() for c in reason):
            raise forms.ValidationError("Say why, in one line.")
        return reason

    def clean_until(self) -> datetime | None:
        return _start_of_a_later_day(self.cleaned_data.get("until"))


def _start_of_a_later_day(day: date | None) -> datetime | None:
    """The start (UTC) of a day after today, for "until" fields; None when none is given."""
    if day is None:
        return None
    if day <= timezone.now().date() or day >= date.max:
        raise forms.ValidationError("Choose a day after today.")
    return datetime.combine(day, time.min, tzinfo=UTC)


class CauseRerunForm(forms.Form):
    """Send the rerun of a cause that was previewed: its window, key and digest."""

    window = forms.ChoiceField(
        choices=[(value, label) for value, (label, _days) in FAILURE_WINDOWS.items()]
    )
    idempotency_key = forms.CharField(max_length=40, widget=forms.HiddenInput)
    plan_digest = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def clean_idempotency_key(self) -> str:
        key = self.cleaned_data["idempotency_key"]
        try:
            return str(uuid.UUID(key))
        except ValueError:
            raise forms.ValidationError("This form expired: preview it again.") from None

    @property
    def days(self) -> int:
        return FAILURE_WINDOWS[self.cleaned_data["window"]][1]


class ApiTokenForm(forms.Form):
    """Make a personal API token: a name to recognise it by, and an optional last day."""

    name = forms.CharField(max_length=100, help_text="What it is for, e.g. “nightly CI”.")
    expires = forms.DateField(
        required=False,
        label="Expires",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="It stops working at the start of this day (UTC); empty: until revoked.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name or any(not c.isprintable() for c in name):
            raise forms.ValidationError("Give it a name, in one line.")
        return name

    def clean_expires(self) -> datetime | None:
        return _start_of_a_later_day(self.cleaned_data.get("expires"))
