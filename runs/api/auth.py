"""Who is calling: a personal API token (`Authorization: Bearer …`) or the browser's session.

A token acts with its user's permissions. The session works for the same endpoints from the
browser, with Django's CSRF check on unsafe methods (ninja's cookie auth makes it), so a page
elsewhere cannot make a logged-in browser send a rerun.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from runs.api.errors import RateLimited
from runs.models import ApiToken
from runs.services.api_tokens import api_token_authenticate, api_token_take_write
from runs.services.reruns import PERMISSION


class TokenAuth(HttpBearer):
    """`Authorization: Bearer rb_…`: the token's user, or None (then the session is tried)."""

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        found = api_token_authenticate(raw=token.strip())
        if found is None:
            return None
        request.api_token = found  # type: ignore[attr-defined]
        return found.user


class BrowserSessionAuth(SessionAuth):
    """The logged-in browser, with Django's CSRF check on unsafe methods; tried only when a
    session cookie is sent, so a script whose token is refused hears 401, not "CSRF"."""

    def __call__(self, request: HttpRequest) -> Any:
        if self.param_name not in request.COOKIES:
            return None
        return super().__call__(request)


# Bearer first: a script sending a token is never asked for a CSRF token.
API_AUTH: list[Any] = [TokenAuth(), BrowserSessionAuth(csrf=True)]


def api_user(request: HttpRequest) -> AbstractBaseUser:
    """The user the request acts for (set by the auth above)."""
    return request.auth  # type: ignore[attr-defined,no-any-return]


def api_token(request: HttpRequest) -> ApiToken | None:
    return getattr(request, "api_token", None)


def require_rerunner(request: HttpRequest) -> AbstractBaseUser:
    """The caller, if they may rerun and run schedules now (the Rerunners' permission)."""
    user = api_user(request)
    if not user.has_perm(PERMISSION):
        raise PermissionDenied(
            "Rerunning needs the permission runs.add_rerunrequest (the Rerunners group)."
        )
    return user


def take_write(request: HttpRequest) -> None:
    """Count a write against the caller's token (a session has no rate): 429 once spent."""
    token = api_token(request)
    if token is not None and not api_token_take_write(token=token):
        raise RateLimited()
