"""Runboard's REST API under /api/v1/ (django-ninja): reads for every logged-in user or
token, reruns and run-nows for Rerunners, every error as problem+json.

The OpenAPI schema is served at openapi.json and browsed at docs, with the Swagger UI that
ninja bundles as static files (no CDN), under the site's Content-Security-Policy.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI

from runs.api import reads, reruns
from runs.api.auth import API_AUTH
from runs.api.errors import PROBLEM_JSON, Problem, problem_handlers, problem_response


class RunboardAPI(NinjaAPI):
    """NinjaAPI whose schema says that errors come as problem+json (what they are sent as)."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        answer["content"] = {PROBLEM_JSON: content["application/json"]}
        return schema


api = RunboardAPI(
    title="Runboard API",
    version="1",
    description=(
        "Runs, results and reruns across Leapwork, Conductor and Testsigma. "
        "Authenticate with `Authorization: Bearer <token>` (make one on /tokens/ or "
        "with `manage.py token create USER`), or with the browser's session and its CSRF token."
    ),
    urls_namespace="api-v1",
    auth=API_AUTH,
    docs_decorator=login_not_required,
)
problem_handlers(api)
api.add_router("", reads.router)
api.add_router("", reruns.router)


@login_not_required
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other URL under the API: a 404 a script can read like every other error."""
    return problem_response(Problem(404, f"The API has no {request.path[:200]}: see its docs."))


def urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """The API's URLs for `path()`: outside the site's login redirect (LoginRequired
    middleware), since the API answers 401 problem+json itself."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            login_not_required(pattern.callback)
    # Its root keeps its name (ninja reverses it to know where it is mounted).
    patterns = [
        path("", not_found, name="api-root") if getattr(p, "name", "") == "api-root" else p
        for p in patterns
    ]
    patterns.append(path("<path:rest>", not_found, name="not-found"))
    return patterns, app_name, namespace
