"""The newcomer's journey, in real Chromium, against the demo stack that `make run` starts.

The demo runs as its own process (`manage.py demo`) on free ports with its own embedded SQLite
database, exactly as a newcomer starts it; the browser only sees what they would see.
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[Demo]:
    """`manage.py demo` on free ports with a quarter of the history, stopped afterwards."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DEBUG="1",
        RUNBOARD_DATA_DIR=str(tmp_path_factory.mktemp("demo")),
        RUNBOARD_SYNC_INTERVAL="10",
        RUNBOARD_POLL_INTERVAL="2",
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "demo",
            "--port",
            str(port),
            "--emulator-ports",
            "0,0,0",
            "--scale",
            "0.25",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    password, lines = "", []
    deadline = time.monotonic() + 120
    try:
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if found := re.search(r"password: (\S+)", line):
                password = found.group(1)
            if "Runboard at" in line:
                break
        assert password, "the demo prints the first admin's password:\n" + "".join(lines)
        yield Demo(url=f"http://127.0.0.1:{port}", password=password, process=process)
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
    """Send the previewed rerun and land on what it made (the page changes)."""
    source = page.url
    page.get_by_role("button", name="Send rerun").click()
    page.wait_for_url(lambda url: url != source and re.search(r"/(runs|reruns)/\d+/$", url))


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


def test_the_rerun_journey_against_the_demo(demo, page):
    # Log in with the printed password, land on the overview.
    page.goto(demo.url + "/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", demo.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(demo.url + "/")
    assert page.get_by_role("heading", name="What needs attention").is_visible()
    shot(page, "1-overview")

    # A failed Leapwork run: rerun its failures on another agent with a changed variable.
    open_failed_run(page, demo, "leapwork-lab", needs="input[name=agents]:not(:checked)")
    shot(page, "2-failed-leapwork-run")
    page.check("input[name=scope][value=failed]")
    checked = page.locator("input[name=agents]:checked")
    for _ in range(checked.count()):
        checked.first.uncheck()
    other_id = page.locator("input[name=agents]:not(:checked)").first.get_attribute("id")
    page.check(f"#{other_id}")
    agent_name = page.locator(f"label[for='{other_id}']").inner_text().strip()
    page.locator("input[name=var_name]").first.fill("Browser")
    page.locator("input[name=var_value]").first.fill("firefox")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#rerun-preview")
    preview.wait_for()
    assert "Browser=firefox" in preview.inner_text()
    assert agent_name in preview.inner_text()
    shot(page, "3-leapwork-preview")
    send(page)
    leapwork_run = first_new_run(page, demo)
    leapwork_id = vendor_id(page)
    # Watch it finish without reloading: the summary polls until the run is terminal.
    page.wait_for_function(
        "!document.querySelector('#run-summary').hasAttribute('hx-get')", timeout=120_000
    )
    assert any(word in page.locator("#run-summary").inner_text() for word in TERMINAL)
    shot(page, "4-leapwork-rerun-finished")

    # A Conductor run: rerun it from its failed task with edited input.
    open_failed_run(page, demo, "conductor-ci", needs="textarea[name=task_input]")
    page.check("input[name=scope][value=from_task]")
    page.fill("textarea[name=task_input]", '{"retries": 2, "note": "from Runboard"}')
    send_after_preview(page)
    conductor_run = first_new_run(page, demo)
    conductor_id = vendor_id(page)
    assert "attempt" in page.locator("h1").inner_text()
    shot(page, "5-conductor-attempt")

    # A Testsigma run: rerun only its failed iterations.
    open_failed_run(page, demo, "testsigma-web", needs="input[name=only_failed_iterations]")
    page.check("input[name=scope][value=failed]")
    page.check("input[name=only_failed_iterations]")
    send_after_preview(page)
    testsigma_run = first_new_run(page, demo)
    testsigma_id = vendor_id(page)
    shot(page, "6-testsigma-rerun")

    # Each new run opens from its /go/ link, as pasted from a CI log.
    for name, external_id, path in [
        ("leapwork-lab", leapwork_id, leapwork_run),
        ("conductor-ci", conductor_id, conductor_run),
        ("testsigma-web", testsigma_id, testsigma_run),
    ]:
        page.goto(f"{demo.url}/go/{name}/{external_id}")
        assert page.url == demo.url + path, name
