"""The API's docs (Swagger UI from Runboard's own static files) render in Chromium under the
site's Content-Security-Policy, and can call the API with a token."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from runs.services.api_tokens import api_token_create
from tests.browser.conftest import browser_db
from tests.factories import make_run, make_user

pytestmark = [pytest.mark.browser, browser_db]


def test_the_api_docs_render_under_the_content_security_policy(page, live_server):
    make_run()
    _token, raw = api_token_create(user=make_user(), name="docs")
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    response = page.goto(f"{live_server.url}/api/v1/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", name="Runboard API")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/runs").first).to_be_visible()

    # Authorize with the token, then try GET /runs from the page.
    page.get_by_role("button", name="Authorize").click()
    dialog = page.locator(".dialog-ux")
    dialog.locator("input").first.fill(raw)
    dialog.locator("button.authorize").first.click()
    dialog.locator("button.btn-done").first.click()
    runs = page.locator("#operations-read-runs_api_reads_runs")
    runs.locator(".opblock-summary").click()
    runs.get_by_role("button", name="Try it out").click()
    runs.get_by_role("button", name="Execute").click()
    expect(runs.locator(".live-responses-table tbody td.response-col_status").first).to_have_text(
        "200"
    )

    assert violations == []
    assert all(url.startswith(live_server.url) for url in requested), "no CDN"
