"""The run page: summary, results failed-first with filters, lineage, live polling."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from runs.models import ExecutionResult, Run, Trigger
from runs.services.agent_counts import counts_apply
from runs.status import Status
from tests.factories import make_agent, make_result, make_run, make_schedule, make_test_case

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def failed_run(user):
    schedule = make_schedule(title="Nightly regression")
    orchestrator = schedule.orchestrator
    agent_a = make_agent(orchestrator, title="Agent Alpha")
    agent_b = make_agent(orchestrator, title="Agent Beta")
    run = make_run(
        schedule,
        external_id="f3a9c2d1-run",
        status=Status.FAILED,
        vendor_status="Finished",
        build="1.4.2",
        environment="staging",
        variables={"BROWSER": "firefox"},
        trigger=Trigger.MANUAL,
        triggered_by=user,
        duration=timedelta(minutes=2, seconds=5),
        total_count=3,
        passed_count=2,
        failed_count=1,
    )
    login = make_test_case(orchestrator, title="Login works")
    checkout = make_test_case(orchestrator, title="Checkout total")
    make_result(run, test_case=login, agent=agent_a, status=Status.PASSED, seq=1)
    make_result(
        run,
        test_case=checkout,
        agent=agent_b,
        status=Status.FAILED,
        seq=2,
        message="Expected 42.00 but saw 41.99",
        log_excerpt="Traceback: total mismatch",
    )
    make_result(run, case_key="search-flow", agent=agent_a, status=Status.PASSED, seq=3)
    return run


def test_it_shows_the_summary(viewer_client, failed_run):
    response = viewer_client.get(reverse("runs:detail", args=[failed_run.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<title>Nightly regression · run f3a9c2d1-run" in html
    assert "2 min 5 s" in html
    assert "Agent Alpha, Agent Beta" in html
    assert "1.4.2" in html and "staging" in html
    assert "BROWSER" in html and "firefox" in html
    assert f"Manual by {failed_run.triggered_by.username}" in html
    assert "status-failed" in html and "✗" in html
    assert "<progress" not in html  # only while it runs
    assert 'hx-trigger="every 3s"' not in html  # a finished run never polls


def test_it_lists_failures_first_with_message_and_log(viewer_client, failed_run):
    html = viewer_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    assert html.index("Checkout total") < html.index("Login works") < html.index("search-flow")
    assert "Expected 42.00 but saw 41.99" in html
    assert "<details><summary>Log excerpt</summary>" in html
    assert "Traceback: total mismatch" in html


def test_it_filters_results_by_status_and_agent_from_the_url(viewer_client, failed_run):
    url = reverse("runs:detail", args=[failed_run.pk])
    html = viewer_client.get(url, {"status": "failures"}).content.decode()
    assert "Checkout total" in html and "Login works" not in html
    alpha = failed_run.results.get(seq=1).agent
    html = viewer_client.get(url, {"agent": alpha.pk}).content.decode()
    assert "Login works" in html and "Checkout total" not in html
    assert f'<option value="{alpha.pk}" selected>' in html


def test_it_searches_a_runs_results_by_case_title_or_id_and_message(viewer_client, failed_run):
    url = reverse("runs:detail", args=[failed_run.pk])

    def shown(q: str) -> list[str]:
        html = viewer_client.get(url, {"q": q}).content.decode()
        cases = ("Login works", "Checkout total", "search-flow")
        return [case for case in cases if f">{case}<" in html or f">{case}\n" in html]

    assert shown("checkout") == ["Checkout total"]  # a case's title, whatever its case
    assert shown("41.99") == ["Checkout total"]  # a failure's message
    assert shown("SEARCH-") == ["search-flow"]  # a case known by its key only
    assert shown("") == ["Login works", "Checkout total", "search-flow"]
    html = viewer_client.get(url, {"q": "nothing like it"}).content.decode()
    assert "No results match these filters." in html
    assert 'type="search" name="q" value="nothing like it"' in html


def test_a_search_keeps_to_its_results_page_after_page_and_in_the_export(viewer_client):
    run = big_run(450, status=Status.FAILED)
    ExecutionResult.objects.filter(run=run, seq__in=range(0, 450, 10)).update(
        status=Status.FAILED, message="Timeout waiting for #pay"
    )
    url = reverse("runs:detail", args=[run.pk])
    html = viewer_client.get(url, {"q": "case-01"}).content.decode()  # case-0100 to case-0199
    failed = [f"case-{n:04}" for n in range(100, 200, 10)]
    assert rows(html) == failed + [f"case-{n:04}" for n in range(100, 200) if n % 10]
    assert 'rel="next"' not in html
    # More failures match than come apart: the link to all of them says it is a search.
    html = viewer_client.get(url, {"q": "#pay"}).content.decode()
    assert len(rows(html)) == 20 and "All matching failures →" in html
    (more,) = re.findall(r'<p class="more-failures"><a href="([^"]+)"', html)
    assert "q=%23pay" in more and "status=failures" in more
    # Past a page, the next one is of the search too.
    html = viewer_client.get(url, {"q": "case-0"}).content.decode()
    (next_href,) = re.findall(r'<a rel="next" href="([^"]+)"', html)
    assert "q=case-0" in next_href
    html = viewer_client.get(url + next_href.replace("&amp;", "&")).content.decode()
    passed = [f"case-{n:04}" for n in range(450) if n % 10]
    assert rows(html)[20:] == passed[100:200]  # after the failures, which come apart again
    csv = viewer_client.get(reverse("runs:results_csv", args=[run.pk]), {"q": "case-004"})
    exported = b"".join(csv.streaming_content).decode()
    lines = exported.strip().splitlines()[1:]
    assert len(lines) == 10 and all(",case-004" in line for line in lines)


def test_a_search_reads_as_many_queries_as_the_page_without_one(viewer_client, failed_run):
    url = reverse("runs:detail", args=[failed_run.pk])
    viewer_client.get(url)
    with CaptureQueriesContext(connection) as plain:
        viewer_client.get(url)
    with CaptureQueriesContext(connection) as searched:
        viewer_client.get(url, {"q": "checkout"})
    assert len(searched.captured_queries) == len(plain.captured_queries)


def test_it_answers_htmx_with_the_results_fragment_only(viewer_client, failed_run):
    url = reverse("runs:detail", args=[failed_run.pk])
    response = viewer_client.get(url, {"status": "passed"}, **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="run-results"')
    assert "<html" not in html
    assert "Login works" in html and "Checkout total" not in html


def test_it_links_cases_to_their_history_from_this_run(viewer_client, failed_run):
    html = viewer_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    case = failed_run.results.get(seq=2).test_case
    assert f'href="/cases/{case.pk}/?from={failed_run.pk}"' in html


def test_it_has_a_copy_link_that_works_without_javascript(viewer_client, failed_run):
    html = viewer_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    permalink = f"http://testserver/runs/{failed_run.pk}/"
    assert f'href="{permalink}" data-copy="{permalink}"' in html


def test_it_renders_times_in_utc_for_the_script_to_localize(viewer_client, failed_run):
    html = viewer_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    iso = failed_run.started_at.strftime("%Y-%m-%dT%H:%M:%S")
    assert f'<time datetime="{iso}' in html
    assert failed_run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC") in html


def test_it_shows_iterations_of_data_driven_cases(viewer_client, failed_run):
    make_result(
        failed_run,
        status=Status.FAILED,
        case_key="data-case",
        is_data_driven=True,
        iterations=[
            {"id": "1", "name": "row one", "status": "passed", "vendor_status": "SUCCESS"},
            {"id": "2", "name": "row two", "status": "failed", "vendor_status": "FAILURE"},
        ],
    )
    html = viewer_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    assert "2 iterations" in html and "row one" in html and "row two" in html


def test_it_shows_the_lineage_with_outcomes(viewer_client, failed_run):
    rerun = make_run(
        failed_run.schedule, rerun_of=failed_run, trigger=Trigger.RERUN, status=Status.PASSED
    )
    attempt = make_run(
        failed_run.schedule,
        external_id=failed_run.external_id,
        attempt=2,
        rerun_of=failed_run,
        status=Status.RUNNING,
    )
    html = viewer_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    assert f'href="/runs/{rerun.pk}/"' in html
    assert f'href="/runs/{attempt.pk}/">attempt 2</a>' in html
    html = viewer_client.get(reverse("runs:detail", args=[rerun.pk])).content.decode()
    assert f'class="lineage-source" href="/runs/{failed_run.pk}/"' in html


def test_a_run_neither_rerun_nor_a_rerun_reads_neither_its_lineage_nor_reruns(
    viewer_client, failed_run
):
    with CaptureQueriesContext(connection) as queries:
        html = viewer_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    selects = [q["sql"] for q in queries.captured_queries]
    # The run itself is the one read of runs (with whether any of those exist), and no request.
    assert len([sql for sql in selects if sql.startswith('SELECT "runs_run"')]) == 1
    assert not [sql for sql in selects if sql.startswith('SELECT "runs_rerunrequest"')]
    assert "This run is not a rerun and has no reruns or other attempts." in html
    assert 'aria-label="Reruns of this run"' not in html


def test_a_running_run_polls_its_summary_and_shows_progress(viewer_client):
    run = make_run(
        status=Status.RUNNING, finished_at=None, duration=None, total_count=4, passed_count=1
    )
    html = viewer_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert f'hx-get="/runs/{run.pk}/poll/" hx-trigger="every 3s"' in html
    assert '<progress max="4" value="1"' in html
    assert "1 of 4 done" in html


@pytest.mark.parametrize("page", ["runs:detail", "runs:list", "runs:overview"])
def test_progress_counts_only_finished_results_and_tells_queued_from_running(viewer_client, page):
    run = make_run(
        status=Status.RUNNING,
        finished_at=None,
        duration=None,
        total_count=72,
        passed_count=9,
        failed_count=3,
        running_count=2,
        queued_count=58,
    )
    args = [run.pk] if page == "runs:detail" else []
    html = " ".join(viewer_client.get(reverse(page, args=args)).content.decode().split())
    assert '<progress max="72" value="12"' in html
    assert '12 of 72 done, <span class="count-failed">3 failed</span>' in html
    assert "· 2 running, 58 queued" in html


def test_a_run_whose_cases_are_all_queued_shows_an_empty_bar(viewer_client):
    run = make_run(
        status=Status.QUEUED, finished_at=None, duration=None, total_count=8, queued_count=8
    )
    html = " ".join(
        viewer_client.get(reverse("runs:detail", args=[run.pk])).content.decode().split()
    )
    assert '<progress max="8" value="0"' in html and "0 of 8 done" in html and "8 queued" in html


def test_a_running_run_shows_how_long_it_has_run_so_far(viewer_client):
    started = timezone.now() - timedelta(minutes=1, seconds=12)
    run = make_run(status=Status.RUNNING, started_at=started, finished_at=None, duration=None)
    # Counted at render time; the request may take a moment on a busy machine.
    so_far = re.compile(r"1 min 1[2-5] s so far")
    page = viewer_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert so_far.search(page.split('aria-label="Summary"', 1)[1])
    poll = viewer_client.get(reverse("runs:run_poll", args=[run.pk]), **HTMX).content.decode()
    assert so_far.search(poll)
    row = viewer_client.get(reverse("runs:run_row", args=[run.pk]), **HTMX).content.decode()
    assert so_far.search(row)
    history = viewer_client.get(reverse("runs:list")).content.decode()
    assert so_far.search(history)


def test_a_queued_run_shows_no_duration_yet(viewer_client):
    run = make_run(status=Status.QUEUED, finished_at=None, duration=None)
    html = viewer_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "<dt>Duration</dt><dd>—</dd>" in html and "so far" not in html


def test_the_poll_answers_200_while_running_and_286_once_done(viewer_client):
    run = make_run(
        status=Status.RUNNING, finished_at=None, duration=None, total_count=2, passed_count=1
    )
    url = reverse("runs:run_poll", args=[run.pk])
    response = viewer_client.get(url, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="run-summary"')
    assert '<div id="run-results" hx-swap-oob="true">' in html
    assert "1 of 2 done" in html
    run.status, run.passed_count = Status.PASSED, 2
    run.save()
    response = viewer_client.get(url, **HTMX)
    assert response.status_code == 286
    html = response.content.decode()
    assert "every 3s" not in html and "status-passed" in html


def test_once_done_the_poll_refreshes_the_rerun_panel_with_the_failures(rerunner_client):
    run = make_run(status=Status.RUNNING, finished_at=None, duration=None, total_count=1)
    result = make_result(run, status=Status.RUNNING)
    url = reverse("runs:run_poll", args=[run.pk])
    assert 'id="rerun-panel"' not in rerun_client_poll(rerunner_client, url, 200)
    run.status, run.failed_count = Status.FAILED, 1
    run.save()
    result.status = Status.FAILED
    result.save()
    html = rerun_client_poll(rerunner_client, url, 286)
    assert (
        '<section id="rerun-panel" class="card rerun" aria-labelledby="rerun-title" hx-swap-oob="true">'
        in html
    )
    assert f'name="cases" value="{result.pk}" form="rerun-form"' in html


def rerun_client_poll(client, url: str, status: int) -> str:
    response = client.get(url, **HTMX)
    assert response.status_code == status
    return response.content.decode()


def test_the_poll_keeps_the_result_filters(viewer_client, failed_run):
    failed_run.status = Status.RUNNING
    failed_run.save()
    url = reverse("runs:run_poll", args=[failed_run.pk])
    html = viewer_client.get(url, {"status": "failures"}, **HTMX).content.decode()
    assert "Checkout total" in html and "Login works" not in html


def test_an_unknown_run_is_a_404(viewer_client):
    assert viewer_client.get(reverse("runs:detail", args=[999999])).status_code == 404
    assert viewer_client.get(reverse("runs:run_poll", args=[999999])).status_code == 404


def test_a_passed_result_message_is_not_styled_as_a_failure(viewer_client):
    run = make_run(status=Status.PASSED)
    make_result(run, status=Status.PASSED, message="Test case passed")
    make_result(run, status=Status.FAILED, message="Element not found")
    html = viewer_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert '<p class="result-message">Test case passed</p>' in html
    assert '<p class="failure-message">Element not found</p>' in html


def test_the_header_offers_rerun_and_the_panel_comes_before_the_results(
    rerunner_client, failed_run
):
    html = rerunner_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    assert 'href="#rerun-panel" data-open-panel="rerun-panel">Rerun…</a>' in html
    header = html.index('class="page-head"')
    assert header < html.index('href="#rerun-panel"') < html.index("</header>", header)
    assert html.index('id="rerun-panel"') < html.index('id="results-title"')


def test_a_viewer_gets_no_rerun_action(viewer_client, failed_run):
    html = viewer_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    assert "Rerun…" not in html


# A big run: paginated by key, with links that work without JavaScript ----------------------


def big_run(size: int, **fields) -> Run:
    run = make_run(**fields)
    agent = make_agent(run.orchestrator, title="Agent Gamma")
    ExecutionResult.objects.bulk_create(
        ExecutionResult(
            run=run,
            agent=agent,
            external_id=f"r{n}",
            case_key=f"case-{n:04}",
            seq=n,
            status=Status.PASSED,
        )
        for n in range(size)
    )
    return run


def rows(html: str) -> list[str]:
    return re.findall(r'<tr id="result-\d+" class="row-\w+">\s*<td>(case-\d+)', html)


def test_it_pages_a_big_run_by_key_and_keeps_the_filters_in_the_links(viewer_client):
    run = big_run(130)
    agent = run.results.first().agent
    url = reverse("runs:detail", args=[run.pk])
    html = viewer_client.get(url, {"status": "passed", "agent": agent.pk}).content.decode()
    assert rows(html) == [f"case-{n:04}" for n in range(100)]
    (next_href,) = re.findall(r'<a rel="next" href="([^"]+)"', html)
    assert "status=passed" in next_href and f"agent={agent.pk}" in next_href
    # Without JavaScript the link is a page of its own, which leads back.
    html = viewer_client.get(url + next_href.replace("&amp;", "&")).content.decode()
    assert rows(html) == [f"case-{n:04}" for n in range(100, 130)]
    assert 'rel="prev"' in html and 'rel="next"' not in html


def test_load_more_answers_only_the_next_rows(viewer_client):
    run = big_run(130)
    url = reverse("runs:detail", args=[run.pk])
    first = viewer_client.get(url).content.decode()
    (next_href,) = re.findall(r'<a rel="next" href="([^"]+)" hx-get="([^"]+)"', first)[0][:1]
    response = viewer_client.get(
        url + next_href.replace("&amp;", "&"), HTTP_HX_TARGET="results-more", **HTMX
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<tr id="result-') and "<table" not in html
    assert rows(html) == [f"case-{n:04}" for n in range(100, 130)]


def test_the_poll_of_a_big_run_in_progress_renders_one_page(viewer_client):
    run = big_run(250, status=Status.RUNNING, finished_at=None, duration=None)
    html = viewer_client.get(reverse("runs:run_poll", args=[run.pk]), **HTMX).content.decode()
    assert len(rows(html)) == 100
    assert '<div id="result-counts" class="result-counts" hx-swap-oob="true">' in html
    # While it runs, the next page replaces this one and the poll keeps it (its cursor).
    page = viewer_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'hx-include="#result-filters, .results-cursor"' in page
    (next_href,) = re.findall(r'<a rel="next" href="\?after=([^"]+)"', page)
    poll = reverse("runs:run_poll", args=[run.pk])
    html = viewer_client.get(poll, {"after": next_href}, **HTMX).content.decode()
    assert rows(html)[0] == "case-0100"
    assert f'name="after" value="{next_href}"' in html


def test_it_shows_counts_by_status_and_agent_and_links_all_failures(viewer_client, failed_run):
    for n in range(25):
        make_result(failed_run, status=Status.FAILED, case_key=f"broken-{n}", seq=10 + n)
    html = viewer_client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    assert '<a href="?status=failed">' in html and "26</a>" in html
    beta = failed_run.results.get(seq=2).agent
    assert f'<a href="?agent={beta.pk}">Agent Beta</a>' in html
    assert html.count("broken-") == 19  # with Checkout total, the first 20 failures
    assert '<a href="?status=failures">All 26 failures →</a>' in html


def counts_of(html: str) -> str:
    return html[html.index('<div id="result-counts"') : html.index("</table>")]


def test_a_run_whose_counts_sync_keeps_draws_them_without_grouping_its_results(
    viewer_client, failed_run
):
    url = reverse("runs:detail", args=[failed_run.pk])
    counted = viewer_client.get(url).content.decode()
    # Kept as sync keeps them (runs.services.agent_counts), then the same page again.
    counts_apply(run_pks=[failed_run.pk], before={})
    assert Run.objects.get(pk=failed_run.pk).result_counts
    with CaptureQueriesContext(connection) as queries:
        kept = viewer_client.get(url).content.decode()
    assert counts_of(kept) == counts_of(counted)
    assert "Agent Alpha</a></td><td>2</td>" in counts_of(kept)
    grouped = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    assert not [sql for sql in grouped if "runs_executionresult" in sql], grouped
