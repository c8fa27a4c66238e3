"""Connecting an orchestrator: check the credential against it before anything is saved.

The input checks here are the one place outside runs/orchestrators/ that names the kinds
(an unknown kind, a kind changed under the same name); what a kind can do is asked of its
client's capabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from runs.models import Orchestrator, OrchestratorKind, Run
from runs.orchestrators.base import OrchestratorError, RunSnapshot
from runs.orchestrators.http import base_url_problem, header_value_problem
from runs.orchestrators.registry import client_class
from runs.services.session import orchestrator_session
from runs.services.sync import runs_store

ADD_PERMISSION = "runs.add_orchestrator"
CHANGE_PERMISSION = "runs.change_orchestrator"


class ConnectError(Exception):
    """The orchestrator could not be connected; nothing was saved."""


@dataclass(frozen=True)
class Connection:
    orchestrator: Orchestrator
    created: bool
    tracked: tuple[Run, ...] = ()


def orchestrator_connect_allowed(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether connecting is open to this user at all: staff who may add or change
    orchestrators, as the admin asks."""
    return user.is_staff and (user.has_perm(ADD_PERMISSION) or user.has_perm(CHANGE_PERMISSION))


def connection_problems(*, base_url: str, credential: str) -> dict[str, str]:
    """What makes this base URL or credential unusable for any request, by field name."""
    problems = {
        "base_url": base_url_problem(base_url),
        "credential": header_value_problem(credential),
    }
    return {field: problem for field, problem in problems.items() if problem}


def orchestrator_check(*, orchestrator: Orchestrator) -> None:
    """Ask the orchestrator whether this base URL and credential work; raise ConnectError if not.

    Works on an unsaved instance: the connect command and the admin form check before saving.
    """
    problems = connection_problems(
        base_url=orchestrator.base_url, credential=orchestrator.credential
    )
    if problems:
        raise ConnectError(" ".join(problems.values()))
    try:
        with orchestrator_session(orchestrator) as client:
            client.check()
    except OrchestratorError as exc:
        raise ConnectError(f"{orchestrator.base_url} refused the connection: {exc}") from exc


@sensitive_variables("credential")
def orchestrator_connect(
    *,
    kind: str,
    base_url: str,
    name: str,
    credential: str,
    test_plan_ids: Sequence[str] = (),
    run_ids: Sequence[str] = (),
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> Connection:
    """Create or update the orchestrator `name` after checking it answers to this credential
    and that every run id given can be read there; nothing is saved otherwise.

    A `user` (the connect page's) needs staff status and the permission to add orchestrators,
    or to change them when `name` exists; without one the caller is the server's own operator
    (`manage.py connect`). Idempotent: connecting the same name again updates it (a second
    `make run` reuses it).
    """
    if kind not in OrchestratorKind.values:
        raise ConnectError(
            f"Unknown kind {kind!r}: choose one of {', '.join(OrchestratorKind.values)}."
        )
    if run_ids and client_class(kind).capabilities.lists_runs:
        raise ConnectError(
            "--run is for Testsigma, which lists no runs; the others are discovered."
        )
    orchestrator = Orchestrator.objects.filter(name=name).first() or Orchestrator(name=name)
    created = orchestrator.pk is None
    if user is not None:
        _require_permission(user, name=name, created=created)
    if not created and orchestrator.kind != kind:
        raise ConnectError(f"{name!r} is already a {orchestrator.get_kind_display()} orchestrator.")
    orchestrator.kind = kind
    orchestrator.base_url = base_url.rstrip("/")
    orchestrator.credential = credential
    orchestrator.test_plan_ids = [str(plan).strip() for plan in test_plan_ids if str(plan).strip()]
    orchestrator.enabled = True
    try:
        orchestrator.full_clean(validate_unique=created)
    except ValidationError as exc:
        raise ConnectError(_validation_text(exc)) from exc
    orchestrator_check(orchestrator=orchestrator)
    snapshots = _read_runs(orchestrator, [run_id.strip() for run_id in run_ids if run_id.strip()])
    with transaction.atomic():
        orchestrator.save()
        stored = runs_store(orchestrator=orchestrator, snapshots=snapshots)
    tracked = tuple(stored[s.external_id] for s in snapshots if s.external_id in stored)
    return Connection(orchestrator=orchestrator, created=created, tracked=tracked)


def _require_permission(
    user: AbstractBaseUser | AnonymousUser, *, name: str, created: bool
) -> None:
    needed = ADD_PERMISSION if created else CHANGE_PERMISSION
    if not (user.is_staff and user.has_perm(needed)):
        doing = "Connecting a new orchestrator" if created else f"Changing the orchestrator {name}"
        raise PermissionDenied(f"{doing} needs staff status and the permission {needed}.")


def _read_runs(orchestrator: Orchestrator, run_ids: Sequence[str]) -> list[RunSnapshot]:
    if not run_ids:
        return []
    snapshots = []
    with orchestrator_session(orchestrator) as client:
        for run_id in run_ids:
            try:
                snapshots.append(client.get_run(run_id))
            except OrchestratorError as exc:
                raise ConnectError(f"Run {run_id} could not be read: {exc}") from exc
    return snapshots


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
    )
