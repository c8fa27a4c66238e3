"""Real Chromium through Playwright's sync API, against pytest-django's live_server.

Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a
thread with a running loop unless told otherwise, so DJANGO_ALLOW_ASYNC_UNSAFE is set while
a browser is open, and only then (the rest of the suite, and `check --deploy`, never see it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

CHROMIUM = os.environ.get("RUNBOARD_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
# Browser tests run in a real transaction each (the live server is another thread) and get
# the data migrations' rows (the Rerunners group) back afterwards.
browser_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="module")
def browser(django_db_setup) -> Iterator:
    """Debian's Chromium, headless, for one test module; skipped (failed in CI) when missing."""
    if not Path(CHROMIUM).exists():
        reason = (
            f"Chromium not found at {CHROMIUM}: apt-get install chromium, or set RUNBOARD_CHROMIUM"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # After the test database exists; module scope wraps every test's own database fixtures.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield launched
            launched.close()


@pytest.fixture
def page(browser, settings):
    """A fresh browser context and page (no cookies); the test's clock is UTC+02:00 in Paris."""
    # The suite runs with DEBUG off, whose secure cookies plain-HTTP live_server cannot carry.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris", locale="en-GB"
    )
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def log_in(page, live_server):
    """log_in(user): give the browser a logged-in session (the login form has its own test)."""

    def log_in_as(user) -> None:
        client = Client()
        client.force_login(user)
        session = client.cookies["sessionid"].value
        page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])

    return log_in_as


@pytest.fixture
def screenshot(page):
    """screenshot(name): save a full-page PNG under tests/browser/screenshots/ (git-ignored)."""

    def save(name: str) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

    return save


@pytest.fixture(autouse=True)
def browser_rerun_worker(request):
    """Every browser test on the live server has the rerun worker running, as `make run` does
    (the demo's journey has the demo's own)."""
    if request.node.get_closest_marker("django_db"):
        return request.getfixturevalue("rerun_worker")
    return None
