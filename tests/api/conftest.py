"""Clients of the API: pytest-django's test client carrying a token of a viewer or a
Rerunner, as a CI job would."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from runs.services.api_tokens import api_token_create
from tests.factories import make_user

API = "/api/v1"


def bearer(user: User, name: str = "ci") -> str:
    """The `Authorization` header of a new token of `user`."""
    _token, raw = api_token_create(user=user, name=name)
    return f"Bearer {raw}"


@pytest.fixture
def token_client(db) -> Callable[..., Client]:
    """A client that sends a token of `user` (a new viewer unless given) with every request."""

    def make(user: User | None = None, **user_fields: object) -> Client:
        client = Client()
        client.defaults["HTTP_AUTHORIZATION"] = bearer(user or make_user(**user_fields))
        return client

    return make


@pytest.fixture
def reader(token_client) -> Client:
    return token_client()


@pytest.fixture
def rerunner_api(token_client) -> Client:
    return token_client(make_user("ci-bot", rerunner=True))
