"""Personal API tokens: stored hashed, checked, revoked, expired, rate-limited."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import ApiToken
from runs.services.api_tokens import (
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
    api_token_take_write,
)
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_it_stores_only_the_hash_of_the_token():
    token, raw = api_token_create(user=make_user(), name="nightly CI")

    stored = ApiToken.objects.get(pk=token.pk)
    assert raw.startswith("rb_") and len(raw) > 40
    assert stored.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in [getattr(stored, f.attname) for f in ApiToken._meta.concrete_fields]
    assert stored.prefix == raw[:10]


def test_it_authenticates_a_live_token_and_notes_its_use():
    user = make_user()
    token, raw = api_token_create(user=user, name="ci")

    found = api_token_authenticate(raw=raw)

    assert found == token and found.user == user
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


@pytest.mark.parametrize("raw", ["", "rb_", "rb_not-a-token", "Bearer x", "x" * 10_000])
def test_it_refuses_what_is_not_a_token(raw):
    api_token_create(user=make_user(), name="ci")

    assert api_token_authenticate(raw=raw) is None


def test_it_refuses_a_revoked_token():
    token, raw = api_token_create(user=make_user(), name="ci")

    assert api_token_revoke(token=token) is True
    assert api_token_revoke(token=token) is False
    assert api_token_authenticate(raw=raw) is None


def test_it_refuses_an_expired_token_and_one_of_an_inactive_user():
    _, raw_expired = api_token_create(
        user=make_user(), name="old", expires_at=timezone.now() - timedelta(seconds=1)
    )
    inactive = make_user(is_active=False)
    _, raw_inactive = api_token_create(user=inactive, name="ci")

    assert api_token_authenticate(raw=raw_expired) is None
    assert api_token_authenticate(raw=raw_inactive) is None


def test_it_counts_writes_per_minute_and_starts_again_the_next(settings):
    settings.RUNBOARD_API_WRITES_PER_MINUTE = 2
    token, _ = api_token_create(user=make_user(), name="ci")

    assert [api_token_take_write(token=token) for _ in range(3)] == [True, True, False]

    ApiToken.objects.filter(pk=token.pk).update(
        window_started_at=timezone.now() - timedelta(minutes=1, seconds=1)
    )
    assert api_token_take_write(token=token) is True


def test_one_tokens_writes_do_not_spend_anothers(settings):
    settings.RUNBOARD_API_WRITES_PER_MINUTE = 1
    first, _ = api_token_create(user=make_user(), name="a")
    second, _ = api_token_create(user=make_user(), name="b")

    assert api_token_take_write(token=first) is True
    assert api_token_take_write(token=first) is False
    assert api_token_take_write(token=second) is True
