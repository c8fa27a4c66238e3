"""`manage.py token create|revoke|list USER`."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from runs.models import ApiToken
from runs.services.api_tokens import api_token_authenticate
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def token(*args: str) -> str:
    out = io.StringIO()
    call_command("token", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_creates_a_token_printed_once_that_authenticates():
    user = make_user("ci-bot")

    raw = token("create", "ci-bot", "--name", "nightly", "--expires-in-days", "30").strip()

    found = api_token_authenticate(raw=raw)
    assert found is not None and found.user == user and found.name == "nightly"
    assert found.expires_at is not None
    assert raw not in token("list", "ci-bot")


def test_it_lists_and_revokes_by_name_or_id():
    make_user("ci-bot")
    raw = token("create", "ci-bot", "--name", "nightly").strip()
    other = token("create", "ci-bot", "--name", "deploys").strip()
    first = ApiToken.objects.get(name="nightly")

    assert "nightly" in token("list", "ci-bot") and "live" in token("list", "ci-bot")
    assert "Revoked" in token("revoke", "ci-bot", "--name", "nightly")
    assert "Revoked" in token(
        "revoke", "ci-bot", "--id", str(ApiToken.objects.get(name="deploys").pk)
    )

    assert api_token_authenticate(raw=raw) is None
    assert api_token_authenticate(raw=other) is None
    assert f"{first.pk}\t{first.prefix}…\tnightly\trevoked" in token("list", "ci-bot")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "nobody", "--name", "x"], "No user 'nobody'"),
        (["create", "ci-bot"], "Give the token a name"),
        (["create", "ci-bot", "--name", "x", "--expires-in-days", "0"], "1 to 3650"),
        (["revoke", "ci-bot"], "Say which token"),
        (["revoke", "ci-bot", "--name", "absent"], "no live token"),
    ],
)
def test_it_refuses_bad_input_and_changes_nothing(args, message):
    make_user("ci-bot")

    with pytest.raises(CommandError, match=message):
        token(*args)
    assert not ApiToken.objects.exists()


def test_another_users_token_cannot_be_revoked():
    make_user("ci-bot")
    make_user("someone")
    token("create", "ci-bot", "--name", "nightly")

    with pytest.raises(CommandError, match="no live token"):
        token("revoke", "someone", "--name", "nightly")
    assert ApiToken.objects.get().revoked_at is None
