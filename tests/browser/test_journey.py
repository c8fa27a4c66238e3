"""The newcomer's journey, in real Chromium, against the demo stack that `make run` starts.

The demo runs as its own process (`manage.py demo`) on free ports with its own embedded SQLite
database, exactly as a newcomer starts it; the browser only sees what they would see.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = ("Passed", "Failed", "Error", "Cancelled", "Skipped")

pytestmark = pytest.mark.browser


@dataclass
class Demo:
    url: str
    password: str
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Output:
    """What a demo printed so far (its stdout, read until the server is up)."""

    lines: list[str]

    def __str__(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def running_demo(data_dir: Path) -> Iterator[tuple[Demo, Output]]:
    """`manage.py demo` on free ports with a quarter of the history and its world kept in
    `data_dir` (as `make run` keeps it in var/), stopped with TERM afterwards."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DEBUG="1",
        RUNBOARD_DATA_DIR=str(data_dir),
        RUNBOARD_SYNC_INTERVAL="10",
        RUNBOARD_POLL_INTERVAL="2",
        PYTHONUNBUFFERED="1",
    )
    command = [sys.executable, "manage.py", "demo", "--port", str(port)]
    command += ["--emulator-ports", "0,0,0", "--scale", "0.25"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = Output(lines=[])
    password = ""
    deadline = time.monotonic() + 120
    try:
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.lines.append(line)
            if found := re.search(r"password: (\S+)", line):
                password = found.group(1)
            if "Runboard at" in line:
                break
        assert "Runboard at" in str(output), "the demo starts:\n" + str(output)
        while socket.socket().connect_ex(("127.0.0.1", port)) and time.monotonic() < deadline:
            time.sleep(0.2)  # the server is named before it listens
        yield Demo(url=f"http://127.0.0.1:{port}", password=password, process=process), output
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"journey-{name}.png"), full_page=True)


def open_failed_run(page, demo: Demo, orchestrator: str, *, needs: str = "") -> str:
    """Filter the history to an orchestrator's failed runs and open one (with `needs` on its page)."""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        page.goto(f"{demo.url}/runs/")
        page.select_option("#id_orchestrator", label=orchestrator)
        page.select_option("#id_status", value="failed")
        page.locator(
            "#run-filters button[type=submit], form.filters button[type=submit]"
        ).first.click()
        page.wait_for_url(re.compile(r"status=failed"))
        links = page.locator("table.runs tbody tr td a[href^='/runs/']")
        hrefs = [links.nth(i).get_attribute("href") for i in range(min(links.count(), 15))]
        for href in hrefs:
            page.goto(demo.url + href)
            if not needs or page.locator(needs).count():
                return href
        time.sleep(3)  # the first sync is still importing the history
    raise AssertionError(f"no failed {orchestrator} run appeared in the history")


def send(page) -> None:
    """Send the previewed rerun and land on what it made: the request's page follows the
    rerun worker sending it, then goes on to the run when it made exactly one."""
    source = page.url
    page.get_by_role("button", name="Send rerun").click()
    page.wait_for_url(
        lambda url: url != source and re.search(r"/(runs|reruns)/\d+/(\?follow=1)?$", url)
    )
    expect(page.locator(".rerun-progress")).to_have_count(0, timeout=60_000)
    page.wait_for_load_state()


def send_after_preview(page) -> None:
    page.get_by_role("button", name="Preview").click()
    page.locator("#rerun-preview").wait_for()
    send(page)


def first_new_run(page, demo: Demo) -> str:
    """On a request's page, open its first run; on a run's page, stay."""
    if "/reruns/" in page.url:
        page.locator("table.runs tbody tr td a[href^='/runs/']").first.click()
        page.wait_for_url(re.compile(r"/runs/\d+/$"))
    return page.url.removeprefix(demo.url)


def vendor_id(page) -> str:
    return page.locator("#run-summary dd code").first.inner_text().strip()


def log_in(page, demo: Demo, password: str) -> None:
    """Log in with the printed password, land on the overview."""
    page.goto(demo.url + "/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(demo.url + "/")
    assert page.get_by_role("heading", name="What needs attention").is_visible()


def test_the_rerun_journey_against_the_demo_then_again_after_a_restart(tmp_path, page):
    with running_demo(tmp_path) as (demo, output):
        assert demo.password, "the demo prints the first admin's password:\n" + str(output)
        log_in(page, demo, demo.password)
        shot(page, "1-overview")
        made = journey(page, demo)
    password = demo.password

    # A second start continues the same world: same admin, same runs, reruns still work.
    with running_demo(tmp_path) as (demo, output):
        assert "Reusing the existing user 'admin'" in str(output)
        assert "changepassword admin" in str(output)
        assert str(output).count("Resumed") >= 3, str(output)
        page.context.clear_cookies()  # log in again: the same admin, the same password
        log_in(page, demo, password)
        for name, external_id, path in made:
            page.goto(f"{demo.url}/go/{name}/{external_id}")
            assert page.url == demo.url + path, name
            # Runs in flight when the demo stopped go on to finish: none stays running.
            # (A function, not an expression: Playwright evals an expression in the page,
            # which the Content-Security-Policy refuses.)
            page.wait_for_function(
                "() => !document.querySelector('#run-summary').hasAttribute('hx-get')",
                timeout=150_000,
            )
            assert any(word in page.locator("#run-summary").inner_text() for word in TERMINAL)
        shot(page, "7-after-restart")
        journey(page, demo, tag="again-")


def journey(page, demo: Demo, *, tag: str = "") -> list[tuple[str, str, str]]:
    """The README's journey on each vendor; returns (orchestrator, vendor id, page) of each run made."""

    # A failed Leapwork run: rerun its failures on another agent with a changed variable.
    open_failed_run(page, demo, "leapwork-lab", needs="input[name=agents]")
    shot(page, f"{tag}2-failed-leapwork-run")
    page.get_by_role("link", name="Rerun…").click()
    page.wait_for_url(re.compile(r"#rerun-panel$"))
    page.check("input[name=scope][value=failed]")
    page.check("input[name=where][value=chosen]")
    other_id = page.locator("input[name=agents]").first.get_attribute("id")
    page.check(f"#{other_id}")
    agent_name = page.locator(f"label[for='{other_id}']").inner_text().strip()
    page.locator("input[name=var_name]").first.fill("Browser")
    page.locator("input[name=var_value]").first.fill("firefox")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#rerun-preview")
    preview.wait_for()
    assert "Browser=firefox" in preview.inner_text()
    assert f"on {agent_name}" in page.locator("#preview-title").inner_text()
    shot(page, f"{tag}3-leapwork-preview")
    send(page)
    if "/reruns/" in page.url:
        # One run per case: the request page follows them to one verdict.
        outcome = page.locator("#request-outcome")
        assert "Accepted" in outcome.inner_text()
        page.wait_for_function(
            "() => !document.querySelector('#request-outcome').hasAttribute('hx-get')",
            timeout=150_000,
        )
        verdict = outcome.locator(".request-verdict").inner_text()
        assert re.search(r"all \d+ passed|\d+ passed, \d+ still failing", verdict), verdict
        shot(page, f"{tag}4-leapwork-verdict")
    leapwork_run = first_new_run(page, demo)
    leapwork_id = vendor_id(page)
    # Watch it finish without reloading: the summary polls until the run is terminal.
    page.wait_for_function(
        "() => !document.querySelector('#run-summary').hasAttribute('hx-get')", timeout=120_000
    )
    assert any(word in page.locator("#run-summary").inner_text() for word in TERMINAL)
    shot(page, f"{tag}4-leapwork-rerun-finished")

    # A Conductor run: rerun it from its failed task with edited input.
    open_failed_run(page, demo, "conductor-ci", needs="textarea[name=task_input]")
    page.check("input[name=scope][value=from_task]")
    page.fill("textarea[name=task_input]", '{"retries": 2, "note": "from Runboard"}')
    send_after_preview(page)
    conductor_run = first_new_run(page, demo)
    conductor_id = vendor_id(page)
    assert "attempt" in page.locator("h1").inner_text()
    shot(page, f"{tag}5-conductor-attempt")

    # A Testsigma run: rerun only its failed iterations.
    open_failed_run(page, demo, "testsigma-web", needs="input[name=only_failed_iterations]")
    page.check("input[name=scope][value=failed]")
    page.check("input[name=only_failed_iterations]")
    send_after_preview(page)
    testsigma_run = first_new_run(page, demo)
    testsigma_id = vendor_id(page)
    shot(page, f"{tag}6-testsigma-rerun")

    # Each new run opens from its /go/ link, as pasted from a CI log.
    for name, external_id, path in [
        ("leapwork-lab", leapwork_id, leapwork_run),
        ("conductor-ci", conductor_id, conductor_run),
        ("testsigma-web", testsigma_id, testsigma_run),
    ]:
        page.goto(f"{demo.url}/go/{name}/{external_id}")
        assert page.url == demo.url + path, name
    return [
        ("leapwork-lab", leapwork_id, leapwork_run),
        ("conductor-ci", conductor_id, conductor_run),
        ("testsigma-web", testsigma_id, testsigma_run),
    ]
