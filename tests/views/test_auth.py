"""Every page but login needs a logged-in user, who lands where they asked afterwards."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import make_run

pytestmark = pytest.mark.django_db

PUBLIC = {"login"}


def named_patterns(patterns: list) -> list[URLPattern]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += named_patterns(pattern.url_patterns)
        elif pattern.name:
            found.append(pattern)
    return found


def runboard_paths(run_pk: int) -> list[str]:
    """A concrete path for every named URL of the runs app (any `<int:...>` gets the run's pk)."""
    samples = {"orchestrator": "lab", "external_id": "abc-123"}
    paths = []
    for pattern in named_patterns(get_resolver("runs.urls").url_patterns):
        kwargs = {name: samples.get(name, run_pk) for name in pattern.pattern.regex.groupindex}
        paths.append(reverse(f"runs:{pattern.name}", kwargs=kwargs))
    return paths


def test_every_page_sends_an_anonymous_visitor_to_login_and_back(client):
    run = make_run()
    paths = runboard_paths(run.pk)
    assert len(paths) >= 4
    for path in paths:
        response = client.get(path + "?status=failed")
        assert response.status_code == 302, path
        location = urlsplit(response["Location"])
        assert location.path == reverse("login"), path
        assert f"next={path}" in response["Location"].replace("%2F", "/"), path


def test_the_login_page_is_public(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_after_login_the_user_lands_on_the_page_they_asked_for(client, user):
    run = make_run()
    target = reverse("runs:detail", args=[run.pk]) + "?tab=results"
    response = client.get(target)
    login_url = response["Location"]
    page = client.get(login_url)
    assert page.status_code == 200
    next_value = page.context["next"]
    assert next_value == target
    response = client.post(
        reverse("login"),
        {"username": user.username, "password": "correct horse battery", "next": next_value},
    )
    assert response.status_code == 302
    assert response["Location"] == target


def test_the_admin_needs_staff_login_too(client):
    response = client.get("/admin/runs/run/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_logout_ends_the_session(viewer_client):
    assert viewer_client.get(reverse("runs:overview")).status_code == 200
    viewer_client.post(reverse("logout"))
    assert viewer_client.get(reverse("runs:overview")).status_code == 302


def test_the_favicon_is_served_without_a_login(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")


def test_every_page_names_its_icon(viewer_client):
    html = viewer_client.get("/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html


def test_the_frame_kept_between_pages_marks_each_page_and_names_each_user(
    client, django_user_model
):
    """The head and the main links are drawn once and kept (templates/base.html): each page
    still marks its own link, and each user sees their own name."""
    users = [django_user_model.objects.create_user(name) for name in ("ada", "grace")]

    def frame(user, url: str) -> str:
        client.force_login(user)
        html = client.get(url).content.decode()
        client.logout()
        return html

    pages = {"/": "Overview", "/runs/": "Runs", "/failures/": "Failures", "/agents/": "Agents"}
    for user in users:
        for url, link in pages.items():
            html = frame(user, url)
            assert re.findall(r'<a href="[^"]+" aria-current="page">(\w+)</a>', html) == [link]
            assert f"<span>{user.username}</span>" in html
