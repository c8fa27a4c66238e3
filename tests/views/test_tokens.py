"""The API tokens page: make one (shown once), list them, revoke one's own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from runs.models import ApiToken
from runs.services.api_tokens import api_token_authenticate, api_token_create
from tests.factories import make_user

pytestmark = pytest.mark.django_db
URL = reverse("runs:api_tokens")


def test_it_makes_a_token_and_shows_it_once(client):
    user = make_user()
    client.force_login(user)

    response = client.post(URL, {"name": "nightly CI", "expires": ""})

    assert response.status_code == 200
    raw = response.context["new_token"]
    assert api_token_authenticate(raw=raw).user == user
    assert raw in response.text and "never show it again" in response.text
    assert "no-store" in response["Cache-Control"]
    again = client.get(URL)
    assert raw not in again.text and "nightly CI" in again.text and raw[:10] in again.text


def test_it_lists_only_ones_own_tokens(client):
    mine, other = make_user(), make_user()
    api_token_create(user=mine, name="mine")
    api_token_create(user=other, name="theirs")
    client.force_login(mine)

    page = client.get(URL).text

    assert "mine" in page and "theirs" not in page


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"name": "  "}, "This field is required"),
        ({"name": "a\nb"}, "in one line"),
        ({"name": "ci", "expires": str(timezone.now().date())}, "after today"),
        ({"name": "ci", "expires": "9999-12-31"}, "after today"),
        ({"name": "ci", "expires": "soon"}, "Enter a valid date"),
    ],
)
def test_bad_input_is_refused_clearly_and_makes_no_token(client, fields, error):
    client.force_login(make_user())

    response = client.post(URL, fields)

    assert response.status_code == 400
    assert error in response.text
    assert not ApiToken.objects.exists()


def test_an_expiry_day_is_kept(client):
    user = make_user()
    day = timezone.now().date() + timedelta(days=7)

    client.force_login(user)
    client.post(URL, {"name": "ci", "expires": str(day)})

    assert ApiToken.objects.get().expires_at.date() == day


def test_it_revokes_ones_own_token_and_not_anothers(client):
    mine, other = make_user(), make_user()
    token, raw = api_token_create(user=mine, name="mine")
    theirs, their_raw = api_token_create(user=other, name="theirs")
    client.force_login(mine)

    assert client.get(reverse("runs:api_token_revoke", args=[token.pk])).status_code == 405
    response = client.post(reverse("runs:api_token_revoke", args=[token.pk]), follow=True)
    refused = client.post(reverse("runs:api_token_revoke", args=[theirs.pk]))

    assert "is revoked" in response.text
    assert api_token_authenticate(raw=raw) is None
    assert refused.status_code == 404
    assert api_token_authenticate(raw=their_raw) == theirs


def test_the_page_needs_a_login(client):
    response = client.get(URL)

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
