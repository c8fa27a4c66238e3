"""Every error of the API as `application/problem+json` (RFC 9457): type, title, status and
detail, plus `errors` (field: message) where fields are at fault.

`type` names the problem where a client may act on it (a plan that changed, a source still
running, a key reused, a rate spent); anything else is `about:blank`, whose title is the
status's own phrase.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from runs.services.reruns import KeyReused, PlanChanged, RerunInvalid

PROBLEM_JSON = "application/problem+json"
PROBLEM = "urn:runboard:problem:"
# A token's writes are counted per minute: after one the count starts again.
RETRY_AFTER_SECONDS = 60


class Problem(Exception):
    """An answer other than success, raised anywhere in an endpoint."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str = "",
        errors: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.kind = status, detail, kind
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers or {})


class BadInput(Problem):
    def __init__(self, errors: Mapping[str, str], detail: str = "") -> None:
        detail = detail or "; ".join(f"{k}: {v}" for k, v in errors.items())
        super().__init__(400, detail, kind="bad-input", errors=errors)


class RateLimited(Problem):
    def __init__(self) -> None:
        super().__init__(
            429,
            "This token has made all the writes it may make this minute "
            "(RUNBOARD_API_WRITES_PER_MINUTE); try again after Retry-After seconds.",
            kind="rate-limited",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def problem_response(problem: Problem) -> HttpResponse:
    body: dict[str, Any] = {
        "type": f"{PROBLEM}{problem.kind}" if problem.kind else "about:blank",
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = problem.errors
    response = HttpResponse(json.dumps(body), status=problem.status, content_type=PROBLEM_JSON)
    for name, value in problem.headers.items():
        response[name] = value
    return response


def _field(loc: Any) -> str:
    """Where ninja found an error, as a field path: ("body", "body", "agents", 0) -> agents.0."""
    parts = [str(part) for part in loc]
    while parts and parts[0] in {"body", "query", "path", "header", "cookie", "payload"}:
        parts.pop(0)
    return ".".join(parts) or "body"


def _validation(exc: ValidationError) -> Problem:
    errors: dict[str, str] = {}
    for error in exc.errors:
        field = _field(error.get("loc", ()))
        message = str(error.get("msg", "is not valid"))
        errors[field] = f"{errors[field]}; {message}" if field in errors else message
    return BadInput(errors)


def _as_problem(exc: Exception) -> Problem:
    """The problem an exception raised by ninja, Django or a service stands for."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ValidationError):
        return _validation(exc)
    if isinstance(exc, AuthenticationError):
        detail = "Send Authorization: Bearer <a live API token>, or log in."
        return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="runboard"'})
    if isinstance(exc, HttpError):
        return Problem(
            exc.status_code, exc.message, kind="bad-input" if exc.status_code == 400 else ""
        )
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return Problem(404, str(exc) or "Not found.")
    if isinstance(exc, PermissionDenied):
        return Problem(403, str(exc) or "You may not do this.")
    if isinstance(exc, PlanChanged):
        detail = "The plan changed since its preview, so nothing was sent: preview it again."
        return Problem(409, detail, kind="plan-changed")
    if isinstance(exc, RerunInvalid):
        return Problem(422, str(exc), kind="invalid-plan", errors=exc.errors)
    if isinstance(exc, KeyReused):
        return Problem(422, str(exc), kind="key-reused")
    raise exc


HANDLED = (
    Problem,
    ValidationError,
    HttpError,  # AuthenticationError, ninja's CSRF refusal and Throttled among them
    Http404,
    ObjectDoesNotExist,
    PermissionDenied,
    PlanChanged,
    RerunInvalid,
    KeyReused,
)


def problem_handlers(api: NinjaAPI) -> None:
    """Answer each of HANDLED as problem+json; anything else stays a 500 (and is logged)."""

    def handle(request: HttpRequest, exc: Exception) -> HttpResponse:
        return problem_response(_as_problem(exc))

    for exc_class in HANDLED:
        api.add_exception_handler(exc_class, handle)
