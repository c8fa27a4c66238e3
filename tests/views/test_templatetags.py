"""Template helpers: humanized durations, status badges, <time> tags, query strings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace

from django.template import Context, Template
from django.test import RequestFactory

from runs.models import FailureGroup
from runs.selectors import FailureGroupSummary
from runs.templatetags.case_rows import case_result_rows, case_strip
from runs.templatetags.cause_rows import (
    cause_agent_rows,
    cause_case_rows,
    cause_examples,
    cause_schedule_rows,
)
from runs.templatetags.failures import failure_group_rows, sparkline
from runs.templatetags.run_rows import failing_schedule_rows
from runs.templatetags.runboard import (
    form_fields,
    humanize_duration,
    run_duration,
    status_badge,
    utc_time,
)


def test_it_humanizes_durations():
    assert humanize_duration(None) == ""
    assert humanize_duration(timedelta(milliseconds=850)) == "850 ms"
    assert humanize_duration(timedelta(seconds=42)) == "42 s"
    assert humanize_duration(timedelta(minutes=2, seconds=5)) == "2 min 5 s"
    assert humanize_duration(timedelta(minutes=3)) == "3 min"
    assert humanize_duration(timedelta(hours=1, minutes=3, seconds=9)) == "1 h 3 min"
    assert humanize_duration(timedelta(days=2, hours=5)) == "2 d 5 h"


def test_a_running_run_duration_is_the_time_since_it_started():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    running = SimpleNamespace(
        status="running", started_at=now - timedelta(seconds=72), duration=None
    )
    assert run_duration(running, now) == "1 min 12 s so far"
    assert (
        run_duration(SimpleNamespace(**{**vars(running), "started_at": now}), now) == "just started"
    )
    # A vendor clock a little ahead of ours never shows a negative time.
    ahead = SimpleNamespace(**{**vars(running), "started_at": now + timedelta(seconds=2)})
    assert run_duration(ahead, now) == "just started"
    done = SimpleNamespace(status="passed", started_at=now, duration=timedelta(seconds=3))
    assert run_duration(done, now) == "3 s"
    assert run_duration(SimpleNamespace(status="queued", started_at=now, duration=None), now) == "—"


def test_a_status_badge_has_an_icon_a_word_and_the_vendor_word_on_hover():
    html = status_badge("failed", "Failed")
    assert 'class="status status-failed"' in html and "✗" in html and "Failed</span>" in html
    assert 'title="Failed (vendor status)"' in html
    assert "status-unknown" in status_badge("weird")


def test_it_renders_times_in_utc_with_an_iso_datetime():
    html = utc_time(datetime(2026, 6, 1, 12, 30, 5, tzinfo=UTC))
    assert html == (
        '<time datetime="2026-06-01T12:30:05Z" title="2026-06-01 12:30:05 UTC">'
        "2026-06-01 12:30:05 UTC</time>"
    )
    # Another zone, and a fraction of a second: the same instant in UTC, to the second shown.
    paris = timezone(timedelta(hours=2))
    assert utc_time(datetime(2026, 6, 1, 14, 30, 5, 250, tzinfo=paris)) == (
        '<time datetime="2026-06-01T12:30:05.000250Z" title="2026-06-01 12:30:05 UTC">'
        "2026-06-01 12:30:05 UTC</time>"
    )
    assert utc_time(None, "never") == "never"


def test_query_replaces_parameters_and_keeps_the_others():
    request = RequestFactory().get("/runs/", {"status": "failed", "after": "1_2"})
    template = Template("{% load runboard %}{% query before='9_9' after=None %}")
    assert template.render(Context({"request": request})) == "?status=failed&amp;before=9_9"


def test_result_rows_escape_what_the_orchestrator_sent_and_fold_long_messages(db):
    from runs.status import Status
    from runs.templatetags.result_rows import result_rows
    from tests.factories import make_agent, make_result, make_run, make_test_case

    run = make_run()
    case = make_test_case(run.orchestrator, title="Cart <total>")
    agent = make_agent(run.orchestrator, title="Agent & Co")
    long = make_result(
        run, test_case=case, agent=agent, status=Status.FAILED, message="x" * 301, retry_count=2
    )
    html = result_rows([long], run, True)
    assert f'<a href="/cases/{case.pk}/?from={run.pk}">Cart &lt;total&gt;</a>' in html
    assert 'aria-label="Pick Cart &lt;total&gt; on Agent &amp; Co for a rerun"' in html
    assert '<p class="failure-message">' + "x" * 299 + "…</p>" in html
    assert "<details><summary>Log excerpt</summary><p>" + "x" * 301 in html
    assert "(2 retries)" in html
    plain = make_result(run, case_key="<b>", status=Status.PASSED, message="ok")
    html = result_rows([plain], run)
    assert "&lt;b&gt;" in html and 'name="cases"' not in html
    assert '<p class="result-message">ok</p>' in html and '<td class="nowrap">—</td>' in html


def test_a_sparkline_draws_a_bar_per_day_scaled_to_the_busiest():
    html = sparkline([0, 2, 1])
    assert html == (
        '<svg class="sparkline" width="12" height="20" viewBox="0 0 12 20" role="img" '
        'aria-label="3 failures over 3 days">'
        '<rect x="0" y="20" width="3" height="0"><title>0 failures</title></rect>'
        '<rect x="4" y="0" width="3" height="20"><title>2 failures</title></rect>'
        '<rect x="8" y="10" width="3" height="10"><title>1 failure</title></rect></svg>'
    )
    # A day with any failure shows, however busy the busiest day.
    assert '<rect x="0" y="19" width="3" height="1">' in sparkline([1, 500])
    # Given its first day, each bar says which day it is.
    dated = sparkline([0, 2], date(2026, 2, 28))
    assert 'aria-label="2 failures over 2 days since 2026-02-28"' in dated
    assert "<title>2026-02-28: 0 failures</title>" in dated
    assert "<title>2026-03-01: 2 failures</title>" in dated


def test_the_failures_page_draws_a_row_per_cause_with_its_reach_and_escapes_its_text():
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    group = FailureGroup(pk=7, normalized="<b>Timeout</b> & '" + "x" * 200, first_seen_at=at)
    reach = {"results": 12, "runs": 9, "cases": 4, "agents": 3, "orchestrators": 2}
    muted = FailureGroupSummary(
        group=group,
        **reach,
        last_at=at,
        per_day=[0, 1],
        window_start=at - timedelta(days=1),
        muted=True,
        rerun=3,
        cleared=1,
    )
    html = failure_group_rows([muted])
    assert html.startswith(
        '<tr id="failure-group-7" class="is-muted">\n'
        '  <td class="cause"><span class="badge muted-badge">muted</span> '
        '<span class="badge new">new</span> <a href="/failures/7/">'
        "<code>&lt;b&gt;Timeout&lt;/b&gt; &amp; &#x27;xxx"
    )
    # The text cut to 160 characters, as truncatechars cuts it.
    assert "x" * 139 + "…</code></a></td>\n  <td>12</td>\n  <td>9</td>\n  <td>4</td>\n" in html
    assert sparkline([0, 1], date(2026, 3, 3)) in html and html.count(utc_time(at)) == 2
    assert '<span class="badge mostly-persistent">mostly persistent</span>' in html
    assert '<span class="muted">1 of 3 passed</span>' in html
    known = FailureGroupSummary(
        group=group, **reach, last_at=None, per_day=[], window_start=at + timedelta(days=1)
    )
    html = failure_group_rows([known])
    assert html.startswith('<tr id="failure-group-7">\n  <td class="cause"><a href=')
    assert '<span class="muted">not rerun</span>' in html and "<td>—</td>\n</tr>" in html


def test_the_overviews_failing_schedules_link_their_latest_run_and_escape_their_names():
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    schedule = SimpleNamespace(
        pk=7,
        title="<b>Nightly</b> & co",
        latest_run_id=42,
        latest_status="failed",
        latest_started_at=at,
        orchestrator=SimpleNamespace(name="Leap <1>"),
    )
    html = failing_schedule_rows([schedule])
    assert html == (
        '<tr id="schedule-7">\n'
        '  <td><a href="/schedules/7/">&lt;b&gt;Nightly&lt;/b&gt; &amp; co</a></td>\n'
        f'  <td><a href="/runs/42/">{status_badge("failed")}</a></td>\n'
        f"  <td>{utc_time(at)}</td>\n"
        "  <td>Leap &lt;1&gt;</td>\n</tr>\n"
    )


def test_a_case_page_draws_its_strip_and_rows_escaped_and_marks_the_run_it_came_from():
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    run = SimpleNamespace(
        started_at=at, schedule_id=3, schedule=SimpleNamespace(title="<Nightly>"), external_id="r-1"
    )
    result = SimpleNamespace(
        pk=9,
        run_id=42,
        run=run,
        status="failed",
        vendor_status="Failed",
        in_rerun=True,
        agent_id=None,
        duration=timedelta(seconds=2),
        message="<boom>",
    )
    strip = case_strip([result], from_run=42)
    assert 'class="strip-cell status-failed is-from is-rerun" href="/runs/42/"' in strip
    assert 'title="Failed · 2026-03-04 05:06 UTC · in a rerun"' in strip
    assert '<span aria-hidden="true">F</span>' in strip
    rows = case_result_rows([result], from_run=42)
    assert '<tr id="case-result-9" data-result-id="9" class="row-failed is-from">' in rows
    assert '<a href="/runs/42/">&lt;Nightly&gt; #r-1</a>' in rows
    assert "the run you came from" in rows and '<span class="tag tag-rerun">rerun</span>' in rows
    assert "<td>—</td>" in rows and "<td>2 s</td>" in rows and "<td>&lt;boom&gt;</td>" in rows
    assert case_strip([]) == '      <li class="muted">No results yet.</li>\n'
    assert "No results yet." in case_result_rows([])


def test_a_causes_page_draws_where_it_struck_and_its_examples_escaped_with_none_muted():
    first, last = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)
    seen = {"n": 3, "first_at": first, "last_at": last}
    schedules = cause_schedule_rows(
        [
            {"run__schedule_id": 7, "run__schedule__title": "<Nightly>", **seen}
            | {"run__orchestrator__name": "Leap & co"},
            {"run__schedule_id": None, "run__schedule__title": None, **seen}
            | {"run__orchestrator__name": "TS"},
        ]
    )
    assert schedules.splitlines() == [
        '<tr><td><a href="/schedules/7/">&lt;Nightly&gt;</a></td><td>Leap &amp; co</td>'
        f"<td>3</td><td>{utc_time(first)}</td><td>{utc_time(last)}</td></tr>",
        '<tr><td><span class="muted">no schedule</span></td><td>TS</td>'
        f"<td>3</td><td>{utc_time(first)}</td><td>{utc_time(last)}</td></tr>",
    ]
    cases = cause_case_rows([{"test_case_id": 5, "test_case__title": "Log <in>", **seen}])
    assert cases.startswith('<tr><td><a href="/cases/5/">Log &lt;in&gt;</a></td><td>3</td>')
    agents = cause_agent_rows(
        [
            {"agent_id": 4, "agent__title": "win'1", "agent__orchestrator__name": "Leap", **seen},
            {"agent_id": None, "agent__title": None, "agent__orchestrator__name": None, **seen},
        ]
    )
    assert '<a href="/runs/?agent=4">win&#x27;1</a></td><td>Leap</td><td>3</td>' in agents
    assert '<span class="muted">no agent</span></td><td></td>' in agents
    result = SimpleNamespace(
        run=_TitledRun(pk=42, orchestrator=SimpleNamespace(name="<C>")),
        test_case_id=None,
        case_key="checkout<1>",
        agent_id=4,
        agent=SimpleNamespace(title="m-2"),
        started_at=first,
        message="Timeout <after> 30 s",
        log_excerpt="",
    )
    html = cause_examples([result])
    assert (
        f'<p><a href="/runs/42/">Nightly &lt;#1&gt;</a> on &lt;C&gt; · checkout&lt;1&gt; · m-2 · '
        f"{utc_time(first)}</p>" in html
    )
    assert '<p class="message">Timeout &lt;after&gt; 30 s</p>' in html and "<pre" not in html
    log = cause_examples([SimpleNamespace(**{**vars(result), "log_excerpt": "a < b"})])
    assert '<pre class="log">a &lt; b</pre>' in log
    assert cause_schedule_rows([]) == cause_examples([]) == ""


class _TitledRun(SimpleNamespace):
    def __str__(self) -> str:
        return "Nightly <#1>"


def test_form_fields_draw_each_field_labelled_with_its_help_and_its_errors_escaped():
    from django import forms

    class Form(forms.Form):
        reason = forms.CharField(label="Why <now>", help_text="For the <record>.")
        until = forms.DateField(required=False)

        def clean_reason(self):
            raise forms.ValidationError("Say <why>.")

    form = Form({"reason": "x"})
    form.is_valid()
    html = form_fields(form)
    assert html.startswith('  <p class="field field-reason">\n')
    assert '<label for="id_reason">Why &lt;now&gt;</label>' in html
    # The help and the errors its input points at (aria-describedby) are there, by those ids.
    assert 'aria-describedby="id_reason_helptext id_reason_error"' in html
    assert '<small class="help" id="id_reason_helptext">For the &lt;record&gt;.</small>' in html
    assert '<span class="error" role="alert" id="id_reason_error">Say &lt;why&gt;.</span>' in html
    assert html.count('class="help"') == 1 and html.count('role="alert"') == 1
    assert '<p class="field field-until">' in html and 'name="until"' in html
