"""Personal API tokens: a user makes, sees and revokes their own (the API: runs.api).

A new token is shown once, in the answer to the POST that made it (never stored, never
redirected through a URL or the session), on a page that no cache keeps.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from runs import selectors
from runs.forms import ApiTokenForm
from runs.services.api_tokens import api_token_create, api_token_revoke
from runs.views.common import get_or_404


@never_cache
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    new_token = ""
    status = 200
    if form.is_bound:
        if form.is_valid():
            _token, new_token = api_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                expires_at=form.cleaned_data["expires"],
            )
            form = ApiTokenForm()
        else:
            status = 400
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": selectors.api_token_list(user=request.user),
    }
    return render(request, "runs/api_tokens.html", context, status=status)


@require_POST
def api_token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_or_404(selectors.api_token_get, pk, "token", user=request.user)
    if api_token_revoke(token=token):
        messages.success(request, f"The token “{token.name}” is revoked: it no longer works.")
    return redirect("runs:api_tokens")
