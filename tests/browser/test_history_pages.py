"""The schedule and test case pages in real Chromium: a trend of original runs on a dated
axis, a case history whose strip and table agree, colours that follow meaning."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from playwright.sync_api import expect

from runs.models import Trigger
from runs.status import Status
from tests.browser.conftest import browser_db
from tests.factories import make_agent, make_result, make_run, make_schedule, make_test_case

pytestmark = [pytest.mark.browser, browser_db]

BASE = datetime(2026, 5, 1, 7, 15, tzinfo=UTC)
PASSED_RGB = "rgb(26, 127, 55)"  # --passed
FAILED_RGB = "rgb(180, 35, 24)"  # --failed

# Reads an element's screenshot back through a canvas: which colours did Chromium paint?
COUNT_COLOURS = """async (src) => {
  const image = new Image();
  image.src = src;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let green = 0, red = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    if (g > r + 40 && g > b + 20) green++;
    if (r > g + 60 && r > b + 40) red++;
  }
  return {green, red};
}"""


def painted(page, locator) -> dict[str, int]:
    png = base64.b64encode(locator.screenshot()).decode()
    return page.evaluate(COUNT_COLOURS, f"data:image/png;base64,{png}")


@pytest.fixture
def history():
    """A nightly schedule over 25 days: a case that always fails on one agent and passes on
    the other; day 20's two failures were rerun (one run per case, Leapwork's way) and passed,
    and day 22 was retried in place (a second attempt)."""
    nightly = make_schedule(title="Nightly regression")
    orchestrator = nightly.orchestrator
    red, green = (
        make_agent(orchestrator, title="Agent Red"),
        make_agent(orchestrator, title="Agent Green"),
    )
    checkout = make_test_case(orchestrator, title="Checkout total")
    login = make_test_case(orchestrator, title="Login works")
    originals, reruns = [], []
    for day in range(25):
        failing = day % 2 == 0
        run = make_run(
            nightly,
            external_id=f"nightly-{day}",
            started_at=BASE + timedelta(days=day),
            status=Status.FAILED if failing else Status.PASSED,
            total_count=2,
            passed_count=0 if failing else 2,
            failed_count=2 if failing else 0,
        )
        agent = red if failing else green
        status = Status.FAILED if failing else Status.PASSED
        make_result(
            run, test_case=checkout, agent=agent, status=status, message="boom" if failing else ""
        )
        make_result(run, test_case=login, agent=agent, status=status)
        originals.append(run)
    for case in (checkout, login):
        rerun = make_run(
            nightly,
            external_id=f"nightly-20-{case.pk}",
            started_at=BASE + timedelta(days=20, hours=1),
            trigger=Trigger.RERUN,
            rerun_of=originals[20],
            total_count=1,
            passed_count=1,
        )
        make_result(rerun, test_case=case, agent=green, status=Status.PASSED)
        reruns.append(rerun)
    retry = make_run(
        nightly,
        external_id="nightly-22",
        attempt=2,
        started_at=BASE + timedelta(days=22, hours=1),
        trigger=Trigger.RERUN,
        rerun_of=originals[22],
        status=Status.FAILED,
        total_count=2,
        passed_count=1,
        failed_count=1,
    )
    make_result(retry, test_case=checkout, agent=red, status=Status.FAILED)
    make_result(retry, test_case=login, agent=green, status=Status.PASSED)
    reruns.append(retry)
    return {
        "schedule": nightly,
        "originals": originals,
        "reruns": reruns,
        "checkout": checkout,
    }


def test_the_schedule_trend_has_a_dated_point_per_original_run_and_none_for_reruns(
    page, live_server, user, log_in, history, screenshot
):
    log_in(user)
    page.goto(f"{live_server.url}/schedules/{history['schedule'].pk}/")
    trend = page.locator("svg.trend")
    expect(trend).to_be_visible()
    points = trend.locator("a.point")
    expect(points).to_have_count(len(history["originals"]))
    for rerun in history["reruns"]:
        expect(trend.locator(f'a.point[data-run-id="{rerun.pk}"]')).to_have_count(0)
        # Still listed in the table below, marked as what it is.
        expect(page.locator(f"#run-{rerun.pk}")).to_contain_text("Rerun")
    screenshot("schedule-trend")
    # The day the two failures passed on their reruns: 0% as run, 100% after its reruns.
    day_20 = trend.locator(f'a.point[data-run-id="{history["originals"][20].pk}"] title')
    expect(day_20).to_have_text("2026-05-21 07:15 UTC · 0% passed · failed · 100% after 2 reruns")
    expect(trend.locator("circle.dot.after-reruns")).to_have_count(2)
    # Dates under the points, newest included, readable: big enough and never overlapping.
    dates = trend.locator("text.date")
    texts = dates.all_text_contents()
    assert 4 <= len(texts) <= 7 and texts[-1] == "May 25", texts
    assert all(re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", text) for text in texts), texts
    boxes = [dates.nth(i).bounding_box() for i in range(len(texts))]
    assert all(box["height"] >= 9 for box in boxes), boxes
    assert all(a["x"] + a["width"] < b["x"] for a, b in pairwise(boxes))
    expect(trend.locator("text.time").first).to_have_text("07:15")


def test_the_case_page_from_a_run_shows_a_window_that_strip_and_table_agree_on(
    page, live_server, user, log_in, history, screenshot
):
    log_in(user)
    originals, checkout = history["originals"], history["checkout"]
    came_from = originals[12]
    page.goto(f"{live_server.url}/runs/{came_from.pk}/")
    page.locator("#run-results").get_by_role("link", name="Checkout total").click()
    expect(page).to_have_url(f"{live_server.url}/cases/{checkout.pk}/?from={came_from.pk}")
    rows = page.locator("#case-results tbody tr")
    highlighted = page.locator("#case-results tr.is-from")
    expect(highlighted).to_have_count(1)
    expect(highlighted).to_contain_text("the run you came from")
    row_ids = [row.get_attribute("data-result-id") for row in rows.all()]
    strip_ids = [cell.get_attribute("data-result-id") for cell in page.locator(".strip-cell").all()]
    assert strip_ids == row_ids
    position = row_ids.index(highlighted.get_attribute("data-result-id"))
    # 10 newer results above (day 20's rerun among them), 10 older below.
    assert (position, len(row_ids) - position - 1) == (10, 10)
    expect(page.locator(".strip-cell.is-from")).to_have_count(1)
    expect(page.locator("#case-results tbody tr .tag-rerun")).to_have_count(1)
    screenshot("test-case-from-run")
    # Every count is of results, and they add up.
    expect(page.locator(".case-summary")).to_contain_text(
        "27 results: a result is one execution of this case in a run. "
        "25 in original runs, 2 in reruns and later attempts; 14 failed or errored"
    )
    # Agent Red fails every time: red, in its text and in its meter, never the passing colour.
    red_row = page.locator(".agent-rates tbody tr", has_text="Agent Red")
    expect(red_row.locator(".rate-value")).to_have_text("100%")
    expect(red_row.locator(".rate-value")).to_have_css("color", FAILED_RGB)
    colours = painted(page, red_row.locator("meter"))
    assert colours["green"] == 0 and colours["red"] > 0, colours
    green_row = page.locator(".agent-rates tbody tr", has_text="Agent Green")
    expect(green_row.locator(".rate-value")).to_have_text("0%")
    expect(green_row.locator(".rate-value")).to_have_css("color", PASSED_RGB)
    # Flakiness: 1 of 25 results in original runs failed and then passed on a rerun.
    expect(page.locator("#flaky-title + p")).to_have_text("4%")
    expect(page.locator("#flaky-title + p")).not_to_have_css("color", PASSED_RGB)
    # Paging moves the strip with the table.
    page.get_by_role("link", name="Next page →").click()
    expect(highlighted).to_have_count(0)
    expect(rows).to_have_count(2)  # days 1 and 0
    strip_ids = [cell.get_attribute("data-result-id") for cell in page.locator(".strip-cell").all()]
    assert strip_ids == [row.get_attribute("data-result-id") for row in rows.all()]
