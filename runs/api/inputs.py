"""The API's form: a rerun's or run-now's JSON body turned into the rerun service's input,
checked by the rules the web forms apply (the same functions: variable limits, JSON depth,
size, NUL and NaN), so the API accepts exactly what a form would.

What the orchestrator cannot do (agents on Conductor, variables on a Testsigma rerun...) is
left for the rerun planner to refuse with its own words (422), as it does for the forms.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django import forms
from django.http import QueryDict

from runs import selectors
from runs.api.errors import BadInput
from runs.api.schemas import RerunIn, RunNowIn
from runs.forms import JSONObjectField, parse_variables
from runs.models import Schedule
from runs.services.reruns import RerunInput, RerunInvalid, Scope, rerun_capabilities


def _variables(variables: dict[str, str], errors: dict[str, str]) -> dict[str, str]:
    """The variables, through the form's own parser (one rule for both)."""
    rows = QueryDict(mutable=True)
    rows.setlist("var_name", list(variables))
    rows.setlist("var_value", list(variables.values()))
    parsed, problem = parse_variables(rows)
    if problem:
        errors["variables"] = problem
    return parsed


def _json_object(value: dict[str, Any] | None, name: str, errors: dict[str, str]) -> Any:
    """A JSON object field, checked as the form's textarea checks it."""
    if value is None:
        return None
    try:
        text = json.dumps(value, allow_nan=True)
        return JSONObjectField(required=False).clean(text) or {}
    except forms.ValidationError as exc:
        errors[name] = " ".join(exc.messages)
    except (ValueError, RecursionError):
        errors[name] = "This JSON cannot be read back."
    return None


def _iterations(body: RerunIn, errors: dict[str, str]) -> dict[int, tuple[str, ...]]:
    picked: dict[int, tuple[str, ...]] = {}
    for key, ids in body.iterations.items():
        try:
            picked[selectors.db_int(key)] = tuple(dict.fromkeys(ids))
        except ValueError:
            errors["iterations"] = "Name each result by its id."
    return picked


def rerun_input(body: RerunIn) -> RerunInput:
    """What the rerun form's `rerun_input` makes of the same choices; BadInput (400) for what
    no form would accept, RerunInvalid (422) for agents that do not exist."""
    errors: dict[str, str] = {}
    variables = _variables(body.variables, errors)
    workflow_input = _json_object(body.inputs, "inputs", errors)
    task_input = _json_object(body.task_input, "task_input", errors)
    iterations = _iterations(body, errors)
    if errors:
        raise BadInput(errors)
    agents = selectors.agent_list_by_ids(ids=body.agents)
    if len(agents) != len(set(body.agents)):
        raise RerunInvalid({"agents": "Some chosen agents do not exist."})
    cases = tuple(dict.fromkeys([*body.cases, *([body.task] if body.task else [])]))
    # Picking iterations picks their case.
    cases += tuple(pk for pk in iterations if pk not in cases)
    scope = body.scope
    return RerunInput(
        scope=scope,
        result_ids=cases,
        agents=tuple(agents),
        iterations=iterations,
        only_failed_iterations=body.only_failed_iterations,
        variables=variables,
        workflow_input=workflow_input if scope == Scope.ALL else None,
        correlation_id=(body.correlation_id or None) if scope == Scope.ALL else None,
        task_input=task_input if scope in (Scope.FROM_TASK, Scope.PICKED) else None,
    )


def run_now_input(body: RunNowIn, schedule: Schedule) -> RerunInput:
    """What the run-now form makes of the same choices: name=value variables, or a JSON
    workflow input where the orchestrator takes one instead."""
    errors: dict[str, str] = {}
    variables: dict[str, Any] = _variables(body.variables, errors)
    workflow_input = _json_object(body.inputs, "inputs", errors)
    if errors:
        raise BadInput(errors)
    if workflow_input is not None:
        if not rerun_capabilities(schedule.orchestrator).run_now_input:
            raise RerunInvalid({"inputs": "This orchestrator takes no workflow input."})
        if variables:
            raise BadInput({"inputs": "Give either variables or inputs, not both."})
        variables = workflow_input
    return RerunInput(
        scope="run_now",
        variables=variables,
        build=body.build,
        environment=body.environment,
    )


def body_digest(body: RerunIn | RunNowIn, *, target: str) -> str:
    """The SHA-256 of a send's body as parsed (defaults filled, keys sorted) and of what it
    is sent to: the same Idempotency-Key with another digest is another request."""
    fields = body.model_dump(mode="json", exclude={"preview"})
    canonical = json.dumps(
        {"target": target, **fields}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
